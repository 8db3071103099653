#!/usr/bin/env bash
# Annealed Langevin against annealed Ozaki on one noise-conditional image model (README, "Sampling
# images"): both samplers over the same grid of steps per level T and NCSN step sizes eps, from the same
# seed; MMD² against held-out test images in pixel space and the class-balance TV of the samples'
# nearest training images, against total steps and against the sampler's seconds; then a markdown table
# of each sampler at its best step size (lowest MMD²) for each T, and the whole grid.
#
#   bench/sample_images.sh MODEL DATA_DIR OUT
#
# MODEL: a checkpoint of `tweedie train --arch unet --sigmas HI:LO:N --model s1s2 --s2 lowrank:R` (or
# --s2 diag); DATA_DIR holds its data set (e.g. mnist/); OUT receives one JSON per run and PNG grids.
# Environment: TWEEDIE (the binary, default tweedie on PATH), THREADS (1), CHAINS (64), REFERENCE (2000
# test images), STEPS_PER_LEVEL ("2 5 10"), STEP_SIZES ("1e-5 3e-5 1e-4 3e-4"). A run whose JSON is already
# in OUT is reused, so an interrupted measurement resumes. At 1 thread the default grid (24 runs) on the
# MNIST U-Net of the README (channels 16,32, lowrank:20) took 13 minutes with CHAINS=32 on the 2-core
# machine shared with a training run (516 s in the samplers, about 10 s per run loading data and the
# metrics); with 64 chains the sampler seconds double, about 22 minutes.
set -euo pipefail
MODEL=${1:?usage: sample_images.sh MODEL DATA_DIR OUT}
DATA=${2:?usage: sample_images.sh MODEL DATA_DIR OUT}
OUT=${3:?usage: sample_images.sh MODEL DATA_DIR OUT}
TWEEDIE=${TWEEDIE:-tweedie}
THREADS=${THREADS:-1}
CHAINS=${CHAINS:-64}
REFERENCE=${REFERENCE:-2000}
STEPS_PER_LEVEL=${STEPS_PER_LEVEL:-2 5 10}
STEP_SIZES=${STEP_SIZES:-1e-5 3e-5 1e-4 3e-4}
mkdir -p "$OUT"

# Interleaved: for each T and eps, ULA then Ozaki, so both see the same machine load.
for t in $STEPS_PER_LEVEL; do
  for eps in $STEP_SIZES; do
    for sampler in annealed-ula annealed-ozaki; do
      name="$OUT/$sampler-T$t-eps$eps"
      [ -s "$name.json" ] && continue
      "$TWEEDIE" --threads "$THREADS" sample --model "$MODEL" --data-dir "$DATA" --sampler "$sampler" \
        --chains "$CHAINS" --steps-per-level "$t" --step-size "$eps" --reference "$REFERENCE" --seed 0 \
        --plot "$name.png" --json > "$name.json.part"
      mv "$name.json.part" "$name.json"
      echo "$sampler T=$t eps=$eps: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("MMD2 %.4f, class TV %.3f, %.1f s" % (r["mmd2"], r["class_tv"], r["seconds"]))' "$name.json")" >&2
    done
  done
done

python3 - "$OUT" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, "annealed-*-T*-eps*.json")))]
name = {"annealed-ula": "annealed ULA", "annealed-ozaki": "annealed Ozaki"}
fmt = lambda v, f: "n/a" if v is None else format(v, f)
first = runs[0]
print(f"{first['chains']} chains, {first['levels']} levels sigma {first['sigma_max']:g} -> {first['sigma_min']:g}, "
      f"MMD² against {first['reference']} (RBF bandwidth {first['mmd2_bandwidth']:.3g}); class TV of "
      f"{first['chains']} held-out images themselves: {first['class_tv_reference']:.3f}\n")
print("Each sampler at its best step size (lowest MMD²) of the grid, per steps per level T:\n")
print("| sampler | T | total steps | best eps | MMD² | class TV | sampler seconds | diverged |")
print("|---|---|---|---|---|---|---|---|")
for sampler in ["annealed-ula", "annealed-ozaki"]:
    for t in sorted({r["steps_per_level"] for r in runs}):
        cell = [r for r in runs if r["sampler"] == sampler and r["steps_per_level"] == t and r["mmd2"] is not None]
        if not cell:
            continue
        best = min(cell, key=lambda r: r["mmd2"])
        print(f"| {name[sampler]} | {t} | {best['steps']} | {best['step_size']:g} | {best['mmd2']:.4f} | "
              f"{fmt(best['class_tv'], '.3f')} | {best['seconds']:.1f} | {best['diverged']} |")
print("\nThe whole grid (MMD², class TV, sampler seconds):\n")
print("| T | eps | ULA MMD² | ULA class TV | ULA s | Ozaki MMD² | Ozaki class TV | Ozaki s |")
print("|---|---|---|---|---|---|---|---|")
for t in sorted({r["steps_per_level"] for r in runs}):
    for eps in sorted({r["step_size"] for r in runs}):
        pair = {r["sampler"]: r for r in runs if r["steps_per_level"] == t and r["step_size"] == eps}
        cells = []
        for sampler in ["annealed-ula", "annealed-ozaki"]:
            r = pair.get(sampler)
            cells += ["-"] * 3 if r is None else [fmt(r["mmd2"], ".4f"), fmt(r["class_tv"], ".3f"), f"{r['seconds']:.1f}"]
        print(f"| {t} | {eps:g} | " + " | ".join(cells) + " |")
EOF

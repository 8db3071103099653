#!/usr/bin/env bash
# The implicit-distribution experiment on MNIST (docs/implicit.md): for each latent size, a VAE per
# encoder/entropy row and a WAE per entropy estimator, then AIS on the first test images with per-image
# values, printed as a markdown table with the paired per-image differences SSM-VR minus Stein and
# SSM-VR minus SSGE (mean and standard error of the difference on the same images).
#
#   bench/implicit_mnist.sh DATA OUT [LATENTS] [STEPS]
#
# DATA holds mnist/ (the four IDX files); OUT receives checkpoints, JSON and the WAE sample grids.
# LATENTS defaults to "8 32", STEPS to 500. TWEEDIE names the binary (default: tweedie on PATH). A
# checkpoint already in OUT is reused, so an interrupted run resumes. Every command runs under nice -n 10.
set -euo pipefail
DATA=${1:?usage: implicit_mnist.sh DATA OUT [LATENTS] [STEPS]}
OUT=${2:?usage: implicit_mnist.sh DATA OUT [LATENTS] [STEPS]}
LATENTS=${3:-8 32}
STEPS=${4:-500}
TWEEDIE=${TWEEDIE:-tweedie}
AIS=(--ais --chains 4 --intermediate 100 --leapfrog-steps 5 --images 100 --per-image --json)
mkdir -p "$OUT"
run() { nice -n 10 "$TWEEDIE" "$@"; }

for latent in $LATENTS; do
  for row in "gaussian ssm-vr" "implicit ssm-vr" "implicit stein" "implicit ssge"; do
    set -- $row
    name="$OUT/vae-l$latent-s$STEPS-$1-$2"
    [ -f "$name.safetensors" ] || run vae --data-dir "$DATA" --target mnist --encoder "$1" --entropy "$2" \
      --latent "$latent" --steps "$STEPS" --batch 128 --particles 4 --seed 1 --out "$name.safetensors" >/dev/null
    [ -f "$name.json" ] || run eval --data-dir "$DATA" --model "$name.safetensors" "${AIS[@]}" > "$name.json"
  done
  for entropy in ssm-vr stein ssge; do
    name="$OUT/wae-l$latent-s$STEPS-$entropy"
    [ -f "$name.safetensors" ] || run wae --data-dir "$DATA" --target mnist --entropy "$entropy" \
      --latent "$latent" --steps "$STEPS" --batch 128 --seed 1 --out "$name.safetensors" >/dev/null
    [ -f "$name.json" ] || run eval --data-dir "$DATA" --model "$name.safetensors" --images 500 \
      --png "$name.png" --json > "$name.json"
  done
done

python3 - "$OUT" "$STEPS" $LATENTS <<'PY'
import json, math, sys
out, steps, latents = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(name):
    with open(f"{out}/{name}.json") as f:
        return json.load(f)
def paired(a, b):
    d = [x - y for x, y in zip(a["ais_nll_per_image"], b["ais_nll_per_image"])]
    m = sum(d) / len(d)
    se = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d))
    return f"{m:+.2f} ± {se:.2f}"
print("| latent | encoder | entropy | AIS NLL | std. err. over images | AIS MC std. err. | recon. | s / step |")
print("|---|---|---|---|---|---|---|---|")
for latent in latents:
    rows = {}
    for enc, ent in [("gaussian", "ssm-vr"), ("implicit", "ssm-vr"), ("implicit", "stein"), ("implicit", "ssge")]:
        r = rows[(enc, ent)] = load(f"vae-l{latent}-s{steps}-{enc}-{ent}")
        label = "analytic KL" if enc == "gaussian" else ent
        print(f"| {latent} | {enc} | {label} | {r['ais_nll']:.2f} | {r['ais_nll_std_err']:.2f} | "
              f"{r['ais_nll_mc_std_err']:.2f} | {r['recon_error']:.2f} | {r['seconds_per_step']:.3f} |")
    ssm = rows[("implicit", "ssm-vr")]
    print(f"| {latent} | paired | SSM-VR − Stein | {paired(ssm, rows[('implicit', 'stein')])} | | | | |")
    print(f"| {latent} | paired | SSM-VR − SSGE | {paired(ssm, rows[('implicit', 'ssge')])} | | | | |")
print()
print("| latent | WAE entropy | latent MMD² (500 test codes) | squared recon. error | s / step |")
print("|---|---|---|---|---|")
for latent in latents:
    for ent in ["ssm-vr", "stein", "ssge"]:
        r = load(f"wae-l{latent}-s{steps}-{ent}")
        print(f"| {latent} | {ent} | {r['latent_mmd2']:.4f} | {r['recon_error']:.2f} | {r['seconds_per_step']:.3f} |")
PY

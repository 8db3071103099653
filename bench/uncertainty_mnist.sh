#!/usr/bin/env bash
# The uncertainty of denoising on MNIST at sigma = 0.5 (docs/uncertainty.md): U-Nets with a low-rank +
# diagonal second-order head, one per head objective (form B, the Frobenius fit of D2SM, and nll, the
# likelihood fit of docs/math.md §4.7; both train the same s1 by DSM from the same seed), then
# `tweedie denoise` on the first test images by the learned route of each (two network calls) and by the
# autodiff route of the first model (Jacobian diagonal by Hutchinson probes, principal directions by
# subspace iteration with N = 10 and N = 50), printed as a markdown table, with the principal angles
# between the learned and the iterated directions and a picture of each route.
#
#   bench/uncertainty_mnist.sh DATA OUT [STEPS] [IMAGES] [FORMS]
#
# DATA holds mnist/ (the four IDX files); OUT receives the checkpoints, the JSON reports, the arrays and
# the PNGs. STEPS (default 2000) is the training length, IMAGES (default 200) the test images, FORMS
# (default "b nll nll-pcs5") the head objectives: a, b, nll, or nll-pcsK (nll with --head-pcs K). TWEEDIE names the binary (default: tweedie on PATH). A checkpoint
# or report already in OUT is reused, so an interrupted run resumes; training resumes from its last
# checkpoint.
set -euo pipefail
DATA=${1:?usage: uncertainty_mnist.sh DATA OUT [STEPS] [IMAGES] [FORMS]}
OUT=${2:?usage: uncertainty_mnist.sh DATA OUT [STEPS] [IMAGES] [FORMS]}
STEPS=${3:-2000}
IMAGES=${4:-200}
read -r -a FORMS <<< "${5:-b nll nll-pcs5}"
TWEEDIE=${TWEEDIE:-tweedie}
mkdir -p "$OUT"
model() { echo "$OUT/unet-lowrank50-$1-s$STEPS.safetensors"; }
form_flags() { case $1 in nll-pcs*) echo "--form nll --head-pcs ${1#nll-pcs}" ;; *) echo "--form $1" ;; esac; }
for form in "${FORMS[@]}"; do
  if [ ! -f "$OUT/train-$form-s$STEPS.json" ]; then
    resume=(); [ -f "$(model "$form")" ] && resume=(--resume)
    "$TWEEDIE" train --data-dir "$DATA" --target mnist --arch unet --channels 16,32 --s2 lowrank:50 \
      $(form_flags "$form") --sigma 0.5 --batch 64 --steps "$STEPS" --lr-schedule cosine --checkpoint-every 250 \
      --seed 0 --out "$(model "$form")" "${resume[@]}" --json > "$OUT/train-$form-s$STEPS.json"
  fi
done
route() {  # name, model, extra flags
  local name=$1 checkpoint=$2; shift 2
  [ -f "$OUT/$name.json" ] || "$TWEEDIE" denoise --data-dir "$DATA" --model "$checkpoint" --input mnist:test \
    --images "$IMAGES" --pcs 5 --seed 1 --out "$OUT/$name" --png "$OUT/$name.png" --json "$@" > "$OUT/$name.json"
}
for form in "${FORMS[@]}"; do
  route "learned-$form" "$(model "$form")"
done
route autodiff-n10 "$(model "${FORMS[0]}")" --autodiff --iterations 10 --probes 16
route autodiff-n50 "$(model "${FORMS[0]}")" --autodiff --iterations 50 --probes 16

python3 - "$OUT" "$IMAGES" "${FORMS[@]}" <<'PY'
import json, math, struct, sys

out, images, forms = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def read_npy(path):
    """A little-endian f64 C-order NPY file as (shape, flat list)."""
    with open(path, "rb") as f:
        data = f.read()
    header_len = struct.unpack("<H", data[8:10])[0] if data[6] == 1 else struct.unpack("<I", data[8:12])[0]
    start = 10 + header_len if data[6] == 1 else 12 + header_len
    header = data[start - header_len:start].decode("latin1")
    assert "'<f8'" in header and "'fortran_order': False" in header, header
    shape = tuple(int(s) for s in header.split("(")[1].split(")")[0].split(",") if s.strip())
    count = 1
    for s in shape:
        count *= s
    return shape, list(struct.unpack(f"<{count}d", data[start:start + 8 * count]))

def sym_eigenvalues(m):
    """Eigenvalues of a small symmetric matrix (list of rows) by cyclic Jacobi rotations."""
    n = len(m)
    a = [row[:] for row in m]
    for _ in range(100):
        off = sum(a[i][j] ** 2 for i in range(n) for j in range(n) if i != j)
        if off < 1e-22:
            break
        for p in range(n):
            for q in range(p + 1, n):
                if abs(a[p][q]) < 1e-300:
                    continue
                theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                t = math.copysign(1.0, theta) / (abs(theta) + math.sqrt(theta * theta + 1))
                c = 1 / math.sqrt(t * t + 1)
                s = t * c
                for k in range(n):
                    akp, akq = a[k][p], a[k][q]
                    a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
                for k in range(n):
                    apk, aqk = a[p][k], a[q][k]
                    a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
    return [a[i][i] for i in range(n)]

def principal_angles(a, b, k, d):
    """Angles (degrees, ascending) between the spans of the k orthonormal rows of a and of b."""
    m = [[sum(a[i * d + t] * b[j * d + t] for t in range(d)) for j in range(k)] for i in range(k)]
    mmt = [[sum(m[i][t] * m[j][t] for t in range(k)) for j in range(k)] for i in range(k)]
    cos = sorted((math.sqrt(max(0.0, min(1.0, e))) for e in sym_eigenvalues(mmt)), reverse=True)
    return [math.degrees(math.acos(c)) for c in cos]

learned_rows = [f"learned-{form}" for form in forms]
rows = {}
for name in learned_rows + ["autodiff-n10", "autodiff-n50"]:
    with open(f"{out}/{name}.json") as f:
        rows[name] = json.load(f)

def angles(learned, name):
    (n, k, d), a = read_npy(f"{out}/{learned}/pcs.npy")
    _, b = read_npy(f"{out}/{name}/pcs.npy")
    per = [principal_angles(a[i * k * d:(i + 1) * k * d], b[i * k * d:(i + 1) * k * d], k, d) for i in range(n)]
    return [sum(p[j] for p in per) / n for j in range(k)]

def f(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"

print(f"MNIST test images 1-{images}, sigma = 0.5 on [0, 1] pixels, K = 5 principal directions; "
      f"NLL in nats per pixel against the clean image. learned-b: head fitted by D2SM form B; learned-nll: "
      f"by the likelihood (--form nll); the autodiff rows differentiate the s1 of the first model.\n")
print("| route | network calls / image | ms / image | NLL iso | NLL best scalar | NLL diag | NLL low-rank "
      "| Mahalanobis² / D | coverage 68 / 90 / 95 | conformal 90 (width) | REM5 | error energy in top 5 "
      "| PSD clip / image |")
print("|" + "---|" * 13)
for name, r in rows.items():
    m = r["metrics"]
    conf = m.get("conformal", {})
    cov = " / ".join(f(m.get(f"coverage_{c}")) for c in (68, 90, 95))
    print(f"| {name} | {r['network_calls']} | {f(r['ms_per_point'], 1)} | {f(m['nll_isotropic'])} "
          f"| {f(m['nll_scalar'])} | {f(m.get('nll_diag'))} | {f(m.get('nll_lowrank'))} "
          f"| {f(m.get('mahalanobis_per_dim'))} | {cov} | {f(conf.get('coverage'))} ({f(conf.get('mean_width'))}) "
          f"| {f(m.get('rem5'))} | {f(m.get('captured_error_energy'))} | {f(r['psd_clipped'], 2)} |")
n50 = rows["autodiff-n50"]
for name in learned_rows:
    learned = rows[name]
    print(f"\n{name}: REM5 / subspace iteration (N = 50) REM5: "
          f"{learned['metrics']['rem5'] / n50['metrics']['rem5']:.3f}, with "
          f"{n50['network_calls'] / learned['network_calls']:.0f}x fewer network calls.")
    for other in ("autodiff-n10", "autodiff-n50"):
        print(f"Principal angles {name} vs {other} (mean over images, degrees, k = 1..5): "
              + ", ".join(f"{a:.1f}" for a in angles(name, other)))
    ratios = learned["metrics"].get("pc_variance_ratio")
    if ratios:
        print(f"{name} per-direction variance calibration E[(v_k^T e)^2] / lambda_k: "
              + ", ".join(f"{r:.3f}" for r in ratios))
PY

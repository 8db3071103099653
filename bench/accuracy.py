#!/usr/bin/env python3
"""Accuracy of learned second-order scores against the autodiff Jacobian of s1, on the random-GMM family.

For every dim x D2SM form x head x seed: `tweedie --threads 1 train` on gmm:dim=D,components=4,seed=S (the training
seed is S too), then `tweedie eval --json` on 4000 fresh points from q_sigma. Prints (and writes) a
Markdown table of mean +- std over seeds of rel_err(s1), rel_err(s2) of the learned head, and rel_err of
(J + J^T)/2 of the same s1, plus the cost ratio s2_autodiff_ms / s2_learned_ms at dims 2, 16, 64.

    python3 bench/accuracy.py                      # the full grid of issue 2 (about 40 min on 2 cores)
    python3 bench/accuracy.py --dims 2 --seeds 11 --steps 2000 --jobs 1    # a quick look
    python3 bench/accuracy.py --timing-only        # only the cost table (three 200-step runs), printed

Every row also reports the ensemble w S2 + (1 - w) (J + J^T)/2 that `tweedie eval` fits on other points.
The dim-2 levers of the README (one training run at a time, one thread each):

    python3 bench/accuracy.py --forms b --heads full --seeds 911,912,913 --steps 3000 --jobs 1 --timing-dims ''
    python3 bench/accuracy.py --dims 2 --forms b --heads full --seeds 911,912,913 --steps 3000 --jobs 1 \
        --timing-dims '' --train-flags='--couple 1'        # and '--width 256', or --steps 10000
"""
import argparse, json, os, statistics, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--tweedie", default="target/release/tweedie")
ap.add_argument("--dims", default="2,8,32")
ap.add_argument("--forms", default="a,b,avr", help="D2SM forms: a, b, avr (= a with --vr)")
ap.add_argument("--seeds", default="11,12,13", help="target and training seeds (not tuned on)")
ap.add_argument("--steps", type=int, default=10000)
ap.add_argument("--sigma", type=float, default=0.3)
ap.add_argument("--jobs", type=int, default=2)
ap.add_argument("--heads", default="", help="second-order heads at every dim (default: full, diag; lowrank:4 from dim 8)")
ap.add_argument("--train-flags", default="", help="extra flags of every `tweedie train`, e.g. '--couple 1'")
ap.add_argument("--timing-dims", default="2,16,64", help="dims of the autodiff/learned cost ratio ('' skips)")
ap.add_argument("--timing-only", action="store_true", help="print only the cost table (writes no files)")
ap.add_argument("--out", default="bench/results/accuracy.md")
ap.add_argument("--json", default="bench/results/accuracy.json")
a = ap.parse_args()
if a.timing_only:
    a.dims, a.out, a.json = "", None, None

def heads(dim):
    if a.heads:
        return a.heads.split(",")
    return ["full", "diag"] if dim < 8 else ["full", "lowrank:4", "diag"]

def run(job):
    dim, form, head, seed, steps = job
    target = f"gmm:dim={dim},components=4,seed={seed}"
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "m.safetensors")
        flags = ["--form", "a", "--vr"] if form == "avr" else ["--form", form]
        train = [a.tweedie, "--threads", "1", "train", "--target", target, "--model", "s1s2", "--s2", head, *flags,
                 "--sigma", str(a.sigma), "--steps", str(steps), "--seed", str(seed), "--out", model, "--json",
                 *a.train_flags.split()]
        t = json.loads(subprocess.run(train, check=True, capture_output=True, text=True).stdout)
        e = subprocess.run([a.tweedie, "--threads", "1", "eval", "--model", model, "--json"], check=True, capture_output=True, text=True)
        r = json.loads(e.stdout)
    r.update(dim=dim, form=form, head=head, seed=seed, train_seconds=t["seconds"])
    print(f"  dim {dim} form {form} head {head} seed {seed}: s2 {r['s2_rel_err']:.4f} "
          f"autodiff {r['s2_autodiff_rel_err']:.4f} ensemble {r['s2_ensemble_rel_err'] or float('nan'):.4f} ({t['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return r

dims = [int(d) for d in a.dims.split(",") if d]
seeds = [int(s) for s in a.seeds.split(",")]
jobs = [(d, f, h, s, a.steps) for d in dims for f in a.forms.split(",") for h in heads(d) for s in seeds]
print(f"{len(jobs)} training runs of {a.steps} steps, {a.jobs} at a time", file=sys.stderr)
with ThreadPoolExecutor(a.jobs) as pool:
    results = list(pool.map(run, jobs))

def stat(values):
    m = statistics.mean(values)
    return f"{m:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{m:.4f}"

def ensemble(rs, key):
    return "-" if rs[0][key] is None else stat([r[key] for r in rs])

lines = [f"Learned s2 vs autodiff (J + J^T)/2 of the same s1: relative errors on 4000 points of q_sigma, "
         f"sigma = {a.sigma}, {a.steps} steps, batch 512, width 128, softplus, Adam 1e-3, EMA 0.999"
         f"{', train flags ' + a.train_flags if a.train_flags else ''}; "
         f"targets gmm:dim=D,components=4,seed=S for S in {a.seeds}; mean ± std over seeds. Diagonal heads are "
         f"scored on the diagonal only, against the diagonal of the autodiff Jacobian. Ensemble: w S2 + (1 - w) "
         f"(J + J^T)/2 with w fitted on 4000 other points of q_sigma (full and low-rank heads).", "",
         "| dim | form | head | rel_err(s1) | learned s2 | autodiff s2 | learned / autodiff | better | ensemble | w |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for d in dims:
    for f in a.forms.split(","):
        for h in heads(d):
            rs = [r for r in results if (r["dim"], r["form"], r["head"]) == (d, f, h)]
            learned = [r["s2_rel_err"] for r in rs]
            key = "s2_autodiff_diag_rel_err" if h == "diag" else "s2_autodiff_rel_err"
            auto = [r[key] for r in rs]
            ratio = statistics.mean(learned) / statistics.mean(auto)
            lines.append(f"| {d} | {f.upper() if f != 'avr' else 'A-VR'} | {h} | {stat([r['s1_rel_err'] for r in rs])} | "
                         f"{stat(learned)} | {stat(auto)} | {ratio:.2f} | {'learned' if ratio < 1 else 'autodiff'} | "
                         f"{ensemble(rs, 's2_ensemble_rel_err')} | {ensemble(rs, 's2_ensemble_weight')} |")
lines.append("")
lines.append("Best learned head per dimension (lowest mean error over forms and heads, full-matrix heads only):")
lines.append("")
for d in dims:
    best = None
    for f in a.forms.split(","):
        for h in heads(d):
            if h == "diag":
                continue
            rs = [r for r in results if (r["dim"], r["form"], r["head"]) == (d, f, h)]
            m, auto = statistics.mean(r["s2_rel_err"] for r in rs), statistics.mean(r["s2_autodiff_rel_err"] for r in rs)
            if best is None or m < best[0]:
                best = (m, auto, f, h)
    lines.append(f"- dim {d}: {best[3]} head, form {best[2]}: {best[0]:.4f} vs autodiff {best[1]:.4f} "
                 f"(ratio {best[0] / best[1]:.2f})")

timing = []
if a.timing_only:
    lines = []
if a.timing_dims:
    lines += ["", "Cost of s2 on 4000 points, one thread (`tweedie eval`): learned head (one forward pass; full "
              "head assembled as dense matrices, low-rank as factors) vs autodiff (D tangent passes).", "",
              "| dim | head | learned ms | autodiff ms | autodiff / learned |", "|---|---|---|---|---|"]
    for d in [int(x) for x in a.timing_dims.split(",")]:
        head = "full" if d <= 16 else "lowrank:10"
        r = run((d, "b", head, 1, 200))
        timing.append(r)
        lines.append(f"| {d} | {head} | {r['s2_learned_ms']:.2f} | {r['s2_autodiff_ms']:.2f} | "
                     f"{r['s2_autodiff_ms'] / r['s2_learned_ms']:.1f} |")
text = "\n".join(lines) + "\n"
print(text)
if a.out:
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write(text)
if a.json:
    json.dump({"runs": results, "timing": timing}, open(a.json, "w"), indent=1)

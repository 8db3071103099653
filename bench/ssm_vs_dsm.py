#!/usr/bin/env python3
"""Score networks trained by DSM, DSM-VR, SSM, SSM-VR, ESM and FD-SSM at the same noise level and budget.

For every seed x sigma x objective: `tweedie train --model s1 --objective O` on gmm:dim=8,components=4,seed=S
(fresh samples every step, all objectives on x + sigma z, so all target grad log q_sigma), then
`tweedie eval --json`: s1_rel_err against the exact score of q_sigma on 4000 fresh points. The kernel estimators
(`tweedie estimate --estimator stein|ssge`, no training) report theirs at --kernel-samples samples of q_sigma.
Prints (and writes) the errors and each one's ratio to DSM's.

    python3 bench/ssm_vs_dsm.py                                   # the README's table (about 15 min on 2 cores)
    python3 bench/ssm_vs_dsm.py --seeds 21 --sigmas 0.5 --steps 2000    # a quick look
"""
import argparse, json, os, statistics, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--tweedie", default="target/release/tweedie")
ap.add_argument("--seeds", default="21,22,23", help="target and training seeds (not tuned on)")
ap.add_argument("--sigmas", default="0.1,0.5")
ap.add_argument("--objectives", default="dsm,dsm-vr,ssm,ssm-vr,esm,fd-ssm")
ap.add_argument("--projections", type=int, default=1)
ap.add_argument("--steps", type=int, default=10000)
ap.add_argument("--batch", type=int, default=512)
ap.add_argument("--lr-schedule", default="constant", help="learning-rate schedule of every run: constant or cosine")
ap.add_argument("--kernel-samples", type=int, default=1000, help="samples given to Stein and SSGE (0: skip them)")
ap.add_argument("--jobs", type=int, default=2)
ap.add_argument("--out", default="bench/results/ssm_vs_dsm.md")
ap.add_argument("--json", default="bench/results/ssm_vs_dsm.json")
a = ap.parse_args()


def run(job):
    seed, sigma, objective = job
    target = f"gmm:dim=8,components=4,seed={seed}"
    if objective in ("stein", "ssge"):
        cmd = [a.tweedie, "estimate", "--estimator", objective, "--target", target, "--samples",
               str(a.kernel_samples), "--sigma", str(sigma), "--seed", str(seed), "--json"]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                      env=dict(os.environ, RAYON_NUM_THREADS="1")).stdout)
        r.update(seed=seed, sigma=sigma, objective=objective)
        print(f"  seed {seed} sigma {sigma} {objective}: s1_rel_err {r['s1_rel_err']:.4f}", file=sys.stderr, flush=True)
        return r
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "m.safetensors")
        train = [a.tweedie, "train", "--target", target, "--model", "s1", "--objective", objective,
                 "--projections", str(a.projections), "--sigma", str(sigma), "--steps", str(a.steps),
                 "--batch", str(a.batch), "--lr-schedule", a.lr_schedule, "--seed", str(seed), "--out", model, "--json"]
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        t = json.loads(subprocess.run(train, check=True, capture_output=True, text=True, env=env).stdout)
        e = subprocess.run([a.tweedie, "eval", "--model", model, "--json"], check=True, capture_output=True,
                           text=True, env=env)
        r = json.loads(e.stdout)
    r.update(seed=seed, sigma=sigma, objective=objective, train_seconds=t["seconds"])
    print(f"  seed {seed} sigma {sigma} {objective}: s1_rel_err {r['s1_rel_err']:.4f} ({t['seconds']:.0f} s)",
          file=sys.stderr, flush=True)
    return r


seeds = [int(s) for s in a.seeds.split(",")]
sigmas = [float(s) for s in a.sigmas.split(",")]
objectives = a.objectives.split(",") + (["stein", "ssge"] if a.kernel_samples > 0 else [])
jobs = [(s, g, o) for s in seeds for g in sigmas for o in objectives]
with ThreadPoolExecutor(a.jobs) as pool:
    results = list(pool.map(run, jobs))
err = {(r["seed"], r["sigma"], r["objective"]): r["s1_rel_err"] for r in results}

command = "python3 bench/ssm_vs_dsm.py" + "".join(
    f" --{k.replace('_', '-')} {v}" for k, v in vars(a).items()
    if k in ("seeds", "sigmas", "objectives", "projections", "steps", "batch", "lr_schedule", "kernel_samples")
    and v != ap.get_default(k))
lines = [
    "# Score networks: SSM and SSM-VR versus DSM at the same noise level and budget", "",
    f"Command: `{command}` (each run at one thread).", "",
    f"`s1_rel_err` on 4000 fresh points of q_sigma of gmm:dim=8,components=4,seed=S (S = the training seed); "
    f"MLP 8 -> 128 -> 128 -> 8 (softplus), Adam 1e-3 ({a.lr_schedule} schedule), batch {a.batch}, {a.steps} steps, "
    "EMA 0.999; every "
    f"objective trains on x + sigma z; SSM/SSM-VR with M = {a.projections} Rademacher projection(s). "
    f"Stein and SSGE (RBF kernel, median bandwidth; no training) get {a.kernel_samples} samples of q_sigma and are "
    "evaluated at those samples (`tweedie estimate`). In brackets: the ratio to DSM's error at the same seed and "
    "sigma.", "",
    "| seed | sigma | " + " | ".join(objectives) + " |",
    "|---|---|" + "---|" * len(objectives),
]
for s in seeds:
    for g in sigmas:
        dsm = err.get((s, g, "dsm"))
        cells = [f"{err[(s, g, o)]:.4f}" + (f" ({err[(s, g, o)] / dsm:.2f})" if dsm and o != "dsm" else "")
                 for o in objectives]
        lines.append(f"| {s} | {g} | " + " | ".join(cells) + " |")
if "dsm" in objectives:
    lines += ["", "Worst ratio to DSM over seeds, per sigma:", "",
              "| sigma | " + " | ".join(o for o in objectives if o != "dsm") + " |",
              "|---|" + "---|" * (len(objectives) - 1)]
    for g in sigmas:
        worst = [max(err[(s, g, o)] / err[(s, g, "dsm")] for s in seeds) for o in objectives if o != "dsm"]
        lines.append(f"| {g} | " + " | ".join(f"{w:.2f}" for w in worst) + " |")
text = "\n".join(lines) + "\n"
print(text)
if a.out:
    with open(a.out, "w") as f:
        f.write(text)
if a.json:
    with open(a.json, "w") as f:
        json.dump(results, f, indent=1)

#!/usr/bin/env python3
"""Mixing experiment with LEARNED scores: samplers driven by a trained s1 + s2 model (`tweedie sample --model`).

One documented command (from the repository root):

    cargo build --release && python3 bench/mixing_learned.py

It trains (`tweedie train --json`, unless the checkpoint is already there) one model with a full second-order
head, D2SM form b, sigma 0.3, on each target, into bench/results/models/ (git-ignored), then runs
`tweedie sample --model ... --json` for every (target, sampler, step size) of the grid of the analytic
experiment (bench/mixing.py, whose selection rule and table it reuses), and writes

    bench/results/mixing_learned.md          the tables (learned rows, and the analytic rows for comparison)
    bench/results/mixing_learned.jsonl.gz    every run's JSON report (traces included), training summaries
    bench/results/mixing_learned_<target>.png  MMD² against step of each learned sampler at its best step

Options: --retrain (train even if the checkpoint exists), --quick (short training, a smaller grid: a smoke
test), --bin PATH, --out-dir DIR, --analytic FILE (the analytic experiment's reports, default
bench/results/mixing_analytic.jsonl.gz), --threads N (rayon threads of every train and sample run,
default 1), --reuse (rebuild the tables and figures from mixing_learned.jsonl.gz without sampling).
Only the Python standard library is needed.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from mixing import (COMMON, GRID, QUICK, TABLE_HEADER, best, first_step_below, fmt, load_runs, plot_best,
                    run, save_runs, selection_lines, short_name, stable, sweep, table_row)

# (target, training steps)
MODELS = [("gmm2d", 12000), ("gmm:dim=8,components=4,seed=1", 10000)]
QUICK_TRAIN_STEPS = 500
TRAIN = {"model": "s1s2", "s2": "full", "form": "b", "sigma": 0.3}
# Samplers that a single-sigma score + Hessian model can drive. ozaki-lowrank is left out: with a full head it
# computes the same step as ozaki (Lanczos on the same matrix; identical rows in the analytic table) at 2-4x
# the cost; it is meant for low-rank heads in high dimension.
SAMPLERS = ["ula", "ozaki", "ozaki-diag"]
# Samplers a single-sigma score model cannot drive, and why (the CLI's own error is quoted in the output).
NOT_APPLICABLE = {
    "mala": "the Metropolis-Hastings ratio needs log p (up to a constant), and a score model gives only its "
            "gradient s1 = grad log q_sigma, not log q_sigma itself",
    "annealed-ula": "annealing runs Langevin at a decreasing sequence of noise levels sigma_i, which needs a "
                    "noise-conditional model s(x, sigma); this checkpoint is trained at the single sigma 0.3",
    "annealed-ozaki": "same as annealed-ula, with s2(x, sigma) as well",
}


def model_path(models_dir, target, steps):
    s = TRAIN
    return os.path.join(models_dir, f"{short_name(target)}_{s['model']}{s['s2']}_form{s['form']}_sigma{s['sigma']}"
                                    f"_{steps}steps.safetensors")


def train(binary, target, steps, path, threads, retrain):
    """Trains the model into path unless it exists (or retrain); returns the training summary (None when the
    checkpoint was reused and no summary was saved with it)."""
    summary_path = path.replace(".safetensors", ".train.json")
    if os.path.exists(path) and not retrain:
        print(f"reusing {path}", file=sys.stderr)
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                return json.load(f)
        return None
    cmd = [binary, "train", "--target", target, "--steps", str(steps), "--out", path, "--json",
           "--checkpoint-every", str(steps)]
    for k, v in TRAIN.items():
        cmd += ["--" + k, str(v)]
    print("training: " + " ".join(cmd), file=sys.stderr)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"training failed: {out.stderr.strip()}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["command"] = " ".join(cmd)
    with open(summary_path, "w") as f:
        json.dump(summary, f)
    return summary


def evaluate(binary, path):
    """`tweedie eval --json` of the checkpoint: s1 and s2 relative errors against q_sigma's exact ones."""
    out = subprocess.run([binary, "eval", "--model", path, "--json"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()}


def refusal(binary, target, path, sampler):
    """The one-line error `tweedie sample --model` gives for a sampler the model cannot drive."""
    r = run(binary, target, sampler, 0.1, {"model": path, "steps": 10, "chains": 2, "reference": 2})
    return r.get("error", "(no error: the sampler ran)").splitlines()[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--bin", default="target/release/tweedie")
    ap.add_argument("--out-dir", default="bench/results")
    ap.add_argument("--analytic", default="bench/results/mixing_analytic.jsonl.gz")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    opts = dict(QUICK if args.quick else COMMON, threads=args.threads)
    grid = [0.01, 0.1, 1.0] if args.quick else GRID
    tol = opts["tol"]
    models_dir = os.path.join(args.out_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    jsonl = os.path.join(args.out_dir, "mixing_learned.jsonl.gz")
    t0 = time.time()
    if args.reuse:
        runs, meta = load_runs(jsonl)
    else:
        meta = {"options": opts, "grid": grid, "train": TRAIN, "models": {}, "refusals": {}}
        runs = []
        for target, steps in MODELS:
            steps = QUICK_TRAIN_STEPS if args.quick else steps
            path = model_path(models_dir, target, steps)
            summary = train(args.bin, target, steps, path, args.threads, args.retrain)
            meta["models"][target] = {"path": os.path.relpath(path, args.out_dir), "steps": steps,
                                      "train": summary, "eval": evaluate(args.bin, path)}
            meta["refusals"][target] = {s: refusal(args.bin, target, path, s) for s in NOT_APPLICABLE}
            runs += sweep(args.bin, [target], SAMPLERS, grid, dict(opts, model=path), label="learned ")
        meta["elapsed_s"] = round(time.time() - t0)
        save_runs(jsonl, runs, meta)
    try:
        analytic, analytic_meta = load_runs(args.analytic)
    except OSError:
        analytic, analytic_meta = [], {}
    a_opts = analytic_meta.get("options", {})
    a_tol = a_opts.get("tol", tol)
    same = all(a_opts.get(k) == v for k, v in opts.items() if k != "threads")

    elapsed = meta.get("elapsed_s")
    first = next(iter(meta["models"].values()))
    lines = [
        "# Mixing with learned scores: samplers driven by a trained s1 + s2 model",
        "",
        "Produced by `cargo build --release && python3 bench/mixing_learned.py" + (" --quick`" if args.quick else "`")
        + (f" ({elapsed:.0f} s on a shared 2-core machine, training included; " if elapsed else " (")
        + "raw reports in `mixing_learned.jsonl.gz`). Checkpoints go to `bench/results/models/` (git-ignored) and "
        "are re-used when present (`--retrain` trains again).",
        "",
        f"- Models: `tweedie train --model {TRAIN['model']} --s2 {TRAIN['s2']} --form {TRAIN['form']} "
        f"--sigma {TRAIN['sigma']}` with the other settings at their defaults (MLP width 128, depth 2, softplus, "
        "batch 512, Adam 1e-3, EMA 0.999, seed 0); steps per target below. A model trained at sigma samples the "
        "noisy marginal q_sigma = p * N(0, sigma² I), so MMD², KSD² and mode TV of the learned rows are "
        "measured against q_sigma (fresh exact draws, its exact score, its mixture weights).",
        f"- Every sampling run: `tweedie sample --model FILE --json --threads {opts['threads']}` with "
        f"{opts['chains']} chains started at N(0, 3² I), {opts['steps']} steps, seed {opts['seed']}, MMD² "
        f"(RBF kernel, median-heuristic bandwidth of the reference) against {opts['reference']} fresh draws, "
        f"traced every {opts['trace']} steps" + ("; the same settings as the analytic experiment" if same else "")
        + ". Ozaki samplers "
        "clip the learned curvature's eigenvalues at l_max = 0 (`clipped`: the fraction clipped).",
        "- Samplers: `ula` (learned s1), `ozaki` (learned s1 and full s2, eigen-decomposition per chain), "
        "`ozaki-diag` (learned s1 and the diagonal of s2). `ozaki-lowrank` is left out: with a full head it "
        "takes the same step as `ozaki` (Lanczos on the same matrix; its rows equal ozaki's in the analytic "
        "table) at 2-4x the cost. Not applicable to a single-sigma score model:",
    ]
    refusals = next(iter(meta["refusals"].values()), {})
    for s, why in NOT_APPLICABLE.items():
        lines.append(f"  - `{s}`: {why}. `tweedie sample --model` says: `{refusals.get(s, '-')}`")
    lines += [
        "- Analytic rows for comparison: `tweedie sample` has no option to sample q_sigma with its analytic "
        "scores (`--target` takes p; only `--model` switches the reference to q_sigma), so the analytic rows are "
        f"those of `mixing_analytic.jsonl.gz` (scores of p, reference p, {a_opts.get('chains', '?')} chains, "
        f"{a_opts.get('steps', '?')} steps, tol {a_tol:g}, the rayon pool of all cores). Their MMD² is against p, the learned "
        "rows' against q_sigma: compare steps to tolerance and stability, not MMD² levels across the two.",
        "- Seconds: single-threaded for the learned rows (network forward pass, and its Hessian for Ozaki, "
        "per chain and step), all cores for the analytic rows.",
    ] + selection_lines(grid, tol) + [""]

    for target, _ in MODELS:
        m = meta["models"].get(target)
        if m is None:
            continue
        tr, ev = m.get("train") or {}, m.get("eval") or {}
        lines += [
            f"## `{target}`",
            "",
            f"Model: {m['steps']} training steps"
            + (f" ({tr['seconds']:.0f} s, final loss {tr['loss']:.4g})" if "seconds" in tr else " (re-used checkpoint)")
            + f"; `tweedie eval` on {ev.get('points', '?')} draws of q_sigma: s1 relative error "
            f"{fmt(ev.get('s1_rel_err'), '{:.3f}')}, s2 relative error {fmt(ev.get('s2_rel_err'), '{:.3f}')}.",
            "",
        ] + TABLE_HEADER
        mine = [r for r in runs if r["spec"] == target]
        for s in SAMPLERS:
            lines.append(table_row(f"{s}, learned", [r for r in mine if r["sampler"] == s], tol))
        for s in SAMPLERS:
            rs = [r for r in analytic if r["spec"] == target and r["sampler"] == s]
            if rs:
                lines.append(table_row(f"{s}, analytic p", rs, a_tol))
        lines.append("")
        # Ozaki with learned s2 against ULA with learned s1: each at its best h, and each against the other's level.
        ula_runs = [r for r in mine if r["sampler"] == "ula"]
        oz_runs = [r for r in mine if r["sampler"] == "ozaki"]
        ula, oz = best(ula_runs, tol), best(oz_runs, tol)
        if ula and oz:
            def fastest(runs, level):
                hits = [(first_step_below(r, level), r["step_size"]) for r in runs
                        if stable(r) and r["mmd2_stationary"] <= level]
                hits = [x for x in hits if x[0] is not None]
                return "none (no stable run settles there)" if not hits else "step {} (h = {:g})".format(*min(hits))
            lines += [
                f"Ozaki (learned s1 + s2) at its best h = {oz['step_size']:g}: {fmt(oz['steps_to_tol'], '{}')} steps "
                f"to tolerance of its stationary MMD² {oz['mmd2_stationary']:.1e}; ULA (learned s1) at its best "
                f"h = {ula['step_size']:g}: {fmt(ula['steps_to_tol'], '{}')} steps to tolerance of "
                f"{ula['mmd2_stationary']:.1e}. Against each other's level, over the stable runs of the grid whose "
                "stationary MMD² is within tol of it: Ozaki first reaches ULA's level + tol at "
                f"{fastest(oz_runs, ula['mmd2_stationary'] + tol)}, ULA Ozaki's level + tol at "
                f"{fastest(ula_runs, oz['mmd2_stationary'] + tol)}. Stable step sizes: Ozaki "
                f"{sum(map(stable, oz_runs))}/{len(oz_runs)}, ULA {sum(map(stable, ula_runs))}/{len(ula_runs)}.",
                "",
            ]
        best_runs = [best([r for r in mine if r["sampler"] == s], tol) for s in SAMPLERS]
        lines += plot_best(args.bin, [r for r in best_runs if r is not None], args.out_dir,
                           f"mixing_learned_{short_name(target)}.png",
                           f"MMD^2 to q_sigma, learned scores, {target.split(',')[0]}",
                           f"MMD² against step on {target}, learned scores")

    path = os.path.join(args.out_dir, "mixing_learned.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

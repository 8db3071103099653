#!/usr/bin/env python3
"""Mixing experiment: Ozaki (which uses the Hessian s2) against Langevin samplers, with analytic scores.

One documented command (from the repository root):

    cargo build --release && python3 bench/mixing.py

It runs `tweedie sample --json` for every (target, sampler, step size) of a fixed grid (the same grid for
every sampler), picks each sampler's best stable step size, and writes

    bench/results/mixing_analytic.md     the table, the selection rule and the Ozaki-vs-ULA check
    bench/results/mixing_analytic.jsonl.gz  every run's JSON report (traces included)
    bench/results/mixing_<target>.png    MMD² against step of each sampler at its best step size

Options: --quick (a smaller grid, for a smoke test), --bin PATH (default target/release/tweedie),
--out-dir DIR, --reuse (rebuild the table and figures from an existing mixing_analytic.jsonl without
sampling again). Only the Python standard library is needed.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time

TARGETS = ["gauss:dim=16,cond=100", "gmm2d", "gmm:dim=8,components=4,seed=1"]
SAMPLERS = ["ula", "mala", "ozaki", "ozaki-diag", "ozaki-lowrank", "annealed-ula", "annealed-ozaki"]
GRID = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
COMMON = {"steps": 1000, "chains": 500, "trace": 10, "seed": 0, "reference": 1000, "tol": 0.002}
QUICK = {"steps": 200, "chains": 200, "trace": 10, "seed": 0, "reference": 400, "tol": 0.005}


def run(binary, target, sampler, h, opts):
    cmd = [binary, "sample", "--target", target, "--sampler", sampler, "--step-size", str(h), "--json"]
    for k, v in opts.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"spec": target, "sampler": sampler, "step_size": h, "error": out.stderr.strip()}
    r = json.loads(out.stdout)
    r["spec"] = target
    return r


def stable(r):
    """No chain diverged (NaN/inf), and the chains did not end farther from the target than they started
    (stationary MMD^2 below the initial one): catches runs that blow up without overflowing yet."""
    if "error" in r or r["diverged"] != 0 or r["mmd2_stationary"] is None:
        return False
    initial = r["trace"][0][1]
    return initial is None or r["mmd2_stationary"] < initial


def best(runs, tol):
    """The best stable step size: among runs without a diverged chain, those whose stationary MMD^2 is
    within tol of the lowest; of these, the fewest steps to tolerance, then the smaller step size."""
    ok = [r for r in runs if stable(r)]
    if not ok:
        return None
    floor = min(r["mmd2_stationary"] for r in ok)
    near = [r for r in ok if r["mmd2_stationary"] <= floor + tol]
    big = float("inf")
    return min(near, key=lambda r: (r["steps_to_tol"] if r["steps_to_tol"] is not None else big, r["step_size"]))


def first_step_below(r, threshold):
    for step, v in r["trace"]:
        if v is not None and v <= threshold:
            return step
    return None


def to_tol_seconds(r):
    """Sampler seconds up to the step at which MMD^2 came within tol: seconds * steps_to_tol / steps."""
    if r["steps_to_tol"] is None:
        return None
    return r["seconds"] * r["steps_to_tol"] / r["steps"]


def fmt(v, spec="{:.2g}"):
    return "-" if v is None else spec.format(v)


def sweep(binary, targets, samplers, grid, opts, label=""):
    """Every (target, sampler, step size) of the grid; progress on stderr."""
    runs = []
    for target in targets:
        for sampler in samplers:
            for h in grid:
                r = run(binary, target, sampler, h, opts)
                runs.append(r)
                status = r.get("error") or "mmd2_stat {} steps_to_tol {} diverged {}".format(
                    fmt(r["mmd2_stationary"], "{:.2e}"), r["steps_to_tol"], r["diverged"])
                print(f"{label}{target:32s} {sampler:15s} h={h:<6g} {status}", file=sys.stderr)
    return runs


def save_runs(path, runs, meta):
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"meta": meta}) + "\n")
        for r in runs:
            f.write(json.dumps(r) + "\n")


def load_runs(path):
    """(runs, meta) of a file written by save_runs."""
    with gzip.open(path, "rt") as f:
        records = [json.loads(line) for line in f if line.strip()]
    meta = next((r["meta"] for r in records if "meta" in r), {})
    return [r for r in records if "meta" not in r], meta


def selection_lines(grid, tol):
    """The step-size grid, the selection rule and the column definitions, as Markdown bullets."""
    return [
        f"- Step-size grid, the same for every sampler: {', '.join(f'{h:g}' for h in grid)}.",
        "- Stable: no chain diverged (NaN/inf) and the stationary MMD² is below the initial one (a run that "
        "blows up without overflowing yet counts as unstable). Best stable step size: among stable step sizes, those whose "
        f"stationary MMD² is within tol = {tol:g} of the sampler's lowest; of these, the one with the fewest "
        "steps to tolerance (ties: the smaller step).",
        "- Stationary MMD²: mean of the last quarter of the trace. Final MMD²: at the last step. Steps to "
        "tolerance: first traced step with MMD² <= stationary MMD² + tol (resolution: the tracing interval). "
        "ESS: min over the first 256 chains and 16 coordinates of Geyer's initial-monotone-sequence ESS over "
        "the second half of the run (annealed: the second half of the last level). Mode TV: total variation "
        "between mixture weights and the fraction of chains nearest each component (exact draws give the "
        "value in parentheses). KSD²: U-statistic with the IMQ kernel (c = 1, beta = -1/2) and the true score "
        "(unbiased, so slightly negative when the sample is exact). Seconds: time inside the sampler's steps "
        "for the whole run (scores and Hessians included, metrics excluded); seconds to tol: the share of it up "
        "to the steps-to-tolerance step.",
    ]


TABLE_HEADER = [
    "| sampler | best h | stable h in grid | steps to tol | final MMD² | stationary MMD² | KSD² | mode TV "
    "| ESS min | clipped | accept | seconds | seconds to tol |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def table_row(label, rs, tol):
    """One row of the table: the best stable run among rs (one sampler's runs over the grid)."""
    n_stable = sum(stable(r) for r in rs)
    b = best(rs, tol)
    if b is None:
        return f"| {label} | none stable | 0/{len(rs)} | | | | | | | | | | |"
    tv = "-" if b["mode_tv"] is None else f"{b['mode_tv']:.3f} ({b['mode_tv_reference']:.3f})"
    return (
        f"| {label} | {b['step_size']:g} | {n_stable}/{len(rs)} | {fmt(b['steps_to_tol'], '{}')} | "
        f"{fmt(b['mmd2'], '{:.1e}')} | {fmt(b['mmd2_stationary'], '{:.1e}')} | {fmt(b['ksd2'], '{:.1e}')} | "
        f"{tv} | {fmt(b['ess_min'], '{:.0f}')} | {b['clipped_fraction']:.3f} | "
        f"{b['acceptance_rate']:.2f} | {b['seconds']:.3g} | {fmt(to_tol_seconds(b), '{:.2g}')} |")


def short_name(target):
    """gmm:dim=8,components=4,seed=1 -> gmmdim8 (for file names)."""
    return target.split(",")[0].replace(":", "").replace("=", "")


def plot_best(binary, best_runs, out_dir, name, title, alt):
    """Draws MMD² against step of best_runs on one figure (`tweedie plot-traces`, which labels each series
    by its report's `sampler` and `step_size`); returns the Markdown lines that show it (none on failure)."""
    if not best_runs:
        return []
    traces = os.path.join(out_dir, "best_traces.jsonl")
    with open(traces, "w") as f:
        for r in best_runs:
            f.write(json.dumps(r) + "\n")
    ok = subprocess.run([binary, "plot-traces", traces, "--out", os.path.join(out_dir, name),
                         "--title", title]).returncode == 0
    os.remove(traces)
    return [f"![{alt}]({name})", ""] if ok else []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bin", default="target/release/tweedie")
    ap.add_argument("--out-dir", default="bench/results")
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    opts = QUICK if args.quick else COMMON
    grid = [0.01, 0.1, 1.0] if args.quick else GRID
    os.makedirs(args.out_dir, exist_ok=True)
    jsonl = os.path.join(args.out_dir, "mixing_analytic.jsonl.gz")
    t0 = time.time()
    if args.reuse:
        runs, meta = load_runs(jsonl)
        elapsed = meta.get("elapsed_s")
    else:
        runs = sweep(args.bin, TARGETS, SAMPLERS, grid, opts)
        elapsed = time.time() - t0
        save_runs(jsonl, runs, {"elapsed_s": round(elapsed), "options": opts, "grid": grid})

    tol = opts["tol"]
    lines = [
        "# Mixing with analytic scores: steps to tolerance and MMD² at each sampler's best stable step size",
        "",
        "Produced by `cargo build --release && python3 bench/mixing.py`" + (" --quick" if args.quick else "")
        + (f" ({elapsed:.0f} s on a shared 2-core machine; " if elapsed else " (")
        + "raw reports in `mixing_analytic.jsonl.gz`).",
        "",
        f"- Every run: `tweedie sample --json` with {opts['chains']} chains started at N(0, 3² I), "
        f"{opts['steps']} steps, seed {opts['seed']}, MMD² (RBF kernel, median-heuristic bandwidth of the "
        f"reference) against {opts['reference']} fresh target draws, traced every {opts['trace']} steps. "
        "Ozaki samplers clip curvature eigenvalues at l_max = 0; ozaki-lowrank runs Lanczos (32 iterations) "
        "on the analytic Hessian's matrix-vector products. Annealed samplers use 10 geometric levels "
        "from sigma = 5 to 0.01, step h sigma_i² at level i, and a final Tweedie denoising step.",
    ] + selection_lines(grid, tol) + [""]
    for target in TARGETS:
        lines += [f"## `{target}`", ""] + TABLE_HEADER
        for sampler in SAMPLERS:
            lines.append(table_row(sampler, [r for r in runs if r["spec"] == target and r["sampler"] == sampler], tol))
        lines.append("")

    # The check on the ill-conditioned Gaussian.
    target = TARGETS[0]
    ula_runs = [r for r in runs if r["spec"] == target and r["sampler"] == "ula"]
    ula = best(ula_runs, tol)
    oz_runs = [r for r in runs if r["spec"] == target and r["sampler"] == "ozaki" and stable(r)]
    if ula and oz_runs:
        ula_unstable = [r["step_size"] for r in ula_runs if not stable(r)]
        m_u, s_u = ula["mmd2_stationary"], ula["steps_to_tol"]
        lines += [f"## Ozaki against ULA on `{target}`", "",
                  f"ULA's best: h = {ula['step_size']:g}, stationary MMD² {m_u:.2e}, reached (within tol) "
                  f"after {s_u} steps. ULA is unstable at h in {{{', '.join(f'{h:g}' for h in ula_unstable)}}} "
                  "(stability needs h < 2 / l_max = 0.02).", "",
                  "| Ozaki h | ULA at this h | first step with MMD² <= ULA's best | ... <= ULA's best + tol "
                  "| at most a third of ULA's steps? |",
                  "|---|---|---|---|---|"]
        for r in sorted(oz_runs, key=lambda r: r["step_size"]):
            h = r["step_size"]
            ula_h = next((u for u in ula_runs if u["step_size"] == h), None)
            state = "unstable" if ula_h is None or not stable(ula_h) else f"stationary MMD² {ula_h['mmd2_stationary']:.1e}"
            if h <= ula["step_size"]:
                continue
            strict, loose = first_step_below(r, m_u), first_step_below(r, m_u + tol)
            ok = strict is not None and s_u is not None and strict <= s_u / 3
            lines.append(f"| {h:g} | {state} | {fmt(strict, '{}')} | {fmt(loose, '{}')} | {'yes' if ok else 'no'} |")
        lines.append("")
    # MMD^2 against step of every sampler at its best step size, one figure per target.
    for target in TARGETS:
        best_runs = [best([r for r in runs if r["spec"] == target and r["sampler"] == s], tol) for s in SAMPLERS]
        lines += plot_best(args.bin, [r for r in best_runs if r is not None], args.out_dir,
                           f"mixing_{short_name(target)}.png", f"MMD^2 against step, {target}",
                           f"MMD² against step on {target}")

    path = os.path.join(args.out_dir, "mixing_analytic.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

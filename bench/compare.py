#!/usr/bin/env python3
"""Driver of the peer benchmarks (docs/benchmarks.md): runs tweedie and each available peer
alternately, round by round, and prints the median over rounds of each one's per-round median, and the ratio
peer/tweedie (> 1: tweedie is faster).

    python3 bench/compare.py [--tweedie target/release/tweedie] [--rounds 5] [--reps 20] [--threads 1]
                             [--workloads dsm_step,...] [--dims 2,16] [--json [PATH]] [--check] [--profile]

Each run is `<tweedie> bench --workloads W --dims D --reps R --threads T` and
`.venv-peers/bin/python bench/peers/{jax,torch}_peer.py` with the same flags; each prints one JSON line per
(workload, dim): {"impl":..,"workload":..,"dim":..,"median_ms":..,"reps":..,"threads":..}.
A missing tweedie binary, a missing venv or a peer that fails to import is reported as skipped, never as a
failure. --threads 1,2 prints one table per thread count. Each run is pinned to T CPUs
(sched_setaffinity): thread flags alone do not hold every runtime to T cores (XLA's CPU client runs
independent ops on extra threads even with intra_op_parallelism_threads=1); --no-pin turns pinning off. --check runs the peers' cross-check instead
(same losses/outputs from the same seed and weights) and exits non-zero when they disagree.
Standard library only.
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ("jax", "torch")
IMPLS = ("tweedie",) + PEERS
WORKLOADS = ("dsm_step", "d2sm_step", "ssm_step", "hessian_learned", "hessian_autodiff")
# Workloads only tweedie implements (the peers have no third-order head): timed on the tweedie side alone,
# the peers' cells read "—"; run them with --workloads hessian3_learned,hessian3_autodiff.
TWEEDIE_ONLY = ("hessian3_learned", "hessian3_autodiff")
UNET_WORKLOADS = ("unet_step", "unet_lowrank_step")   # opt-in: --workloads unet_step,unet_lowrank_step
KNOWN = WORKLOADS + UNET_WORKLOADS + TWEEDIE_ONLY
STEP_DIMS = (2, 16, 100, 784)
HESS_DIMS = (2, 16, 64, 256)
DEFAULT_DIMS = {"dsm_step": STEP_DIMS, "d2sm_step": STEP_DIMS, "ssm_step": STEP_DIMS,
                "hessian_learned": HESS_DIMS, "hessian_autodiff": HESS_DIMS,
                "hessian3_learned": HESS_DIMS, "hessian3_autodiff": HESS_DIMS,
                "unet_step": (784,), "unet_lowrank_step": (784,)}
PEER_IMPORTS = {"jax": "import jax, optax, numpy", "torch": "import torch, torch.func, numpy"}


def log(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def csv(s):
    return [t.strip() for t in s.split(",") if t.strip()]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tweedie", default="target/release/tweedie",
                    help="tweedie binary, or a command line (split like a shell); relative to the repo root")
    ap.add_argument("--venv", default=".venv-peers", help="peers' virtual environment (relative to the repo root)")
    ap.add_argument("--peers", default=",".join(PEERS), help="peers to run (jax,torch)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20, help="timed calls per (workload, dim) in each run")
    ap.add_argument("--threads", default="1", help="thread count, or a list (1,2): one table each")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--dims", default=None, help="dims for every workload (default: per workload, docs/benchmarks.md)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin each run to --threads CPUs")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed to one run of one impl")
    ap.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                    help="dump the raw per-round data as JSON to PATH (or stdout without PATH)")
    ap.add_argument("--profile", action="store_true",
                    help="also tally tweedie's GEMMs (tweedie bench --profile) and print their FLOPs, rate and time share")
    ap.add_argument("--check", action="store_true",
                    help="cross-check the peers (same losses from the same seed) instead of timing")
    a = ap.parse_args()
    a.workloads = csv(a.workloads)
    for w in a.workloads:
        if w not in KNOWN:
            ap.error(f"unknown workload {w!r}; known: {', '.join(KNOWN)}")
    a.dims = None if a.dims is None else [int(d) for d in csv(a.dims)]
    a.threads = [int(t) for t in csv(a.threads)]
    a.peers = csv(a.peers)
    for p in a.peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}")
    return a


def groups(workloads, dims):
    """Workloads that share one dim list run in one invocation: [(workloads, dims)]."""
    out = {}
    for w in workloads:
        out.setdefault(tuple(dims or DEFAULT_DIMS[w]), []).append(w)
    return [(ws, ds) for ds, ws in out.items()]


def env_for(threads):
    env = dict(os.environ)
    for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    return env


def resolve_impls(a):
    """{impl: argv prefix} for the impls that can run, and {impl: reason} for the skipped ones."""
    cmds, skipped = {}, {}
    tw = shlex.split(a.tweedie)
    if len(tw) == 1:   # a path to the binary
        exe = tw[0] if os.path.isabs(tw[0]) else os.path.join(ROOT, tw[0])
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            cmds["tweedie"] = [exe, "bench"]
        else:
            skipped["tweedie"] = f"no executable at {exe} (cargo build --release)"
    elif tw and shutil.which(tw[0]):   # a command line, e.g. "python3 bench/fake_tweedie.py"
        cmds["tweedie"] = tw + ["bench"]
    else:
        skipped["tweedie"] = f"cannot run {a.tweedie!r}"
    py = os.path.join(ROOT, a.venv, "bin", "python")
    for p in PEERS:
        if p not in a.peers:
            continue
        if not os.path.exists(py):
            skipped[p] = f"no venv at {os.path.join(ROOT, a.venv)} (bash bench/setup_peers.sh)"
            continue
        r = subprocess.run([py, "-c", PEER_IMPORTS[p]], capture_output=True, text=True, env=env_for(1))
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            skipped[p] = f"import failed: {last}"
            continue
        cmds[p] = [py, os.path.join(ROOT, "bench", "peers", f"{p}_peer.py")]
    return cmds, skipped


PIN = True


def pin_to(threads):
    """A preexec_fn pinning the child to the first `threads` CPUs this process may use (None: no pinning)."""
    cpus = sorted(os.sched_getaffinity(0))[:max(threads, 1)]
    return (lambda: os.sched_setaffinity(0, cpus)) if PIN else None


def run_once(impl, prefix, workloads, dims, reps, threads, timeout, extra=()):
    """One invocation; returns the JSON records it printed (dicts), [] on failure."""
    argv = prefix + ["--workloads", ",".join(workloads), "--dims", ",".join(map(str, dims)),
                     "--reps", str(reps), "--threads", str(threads), *extra]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env_for(threads), cwd=ROOT, timeout=timeout,
                           preexec_fn=pin_to(threads))
    except subprocess.TimeoutExpired:
        log(f"{impl}: timed out after {timeout:.0f} s: {shlex.join(argv)}")
        return []
    except OSError as e:
        log(f"{impl}: could not run {shlex.join(argv)}: {e}")
        return []
    recs = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    if r.returncode != 0:
        tail = "\n".join(r.stderr.strip().splitlines()[-5:])
        log(f"{impl}: exit {r.returncode}: {shlex.join(argv)}\n{tail}")
    got = {(rec.get("workload"), rec.get("dim")) for rec in recs}
    missing = [f"{w} d={d}" for w in workloads for d in dims if (w, d) not in got]
    if missing and "--check" not in extra:
        log(f"{impl}: printed no result for {', '.join(missing)}")
    for rec in recs:
        if rec.get("error"):
            log(f"{impl}: {rec.get('workload')} d={rec.get('dim')}: {rec['error']}")
    return recs


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def fmt_ratio(a, b):
    if a is None or b is None or b <= 0:
        return "—"
    return f"{a / b:.2f}"


def bench(a, cmds, skipped):
    raw = []   # one dict per (round, impl, workload, dim)
    tables = []
    params = {}   # (workload, impl) -> parameter counts reported by the U-Net workloads
    for threads in a.threads:
        per = {}  # (impl, workload, dim) -> [per-round medians]
        prof = {}  # (workload, dim) -> tweedie's --profile records, one per round
        order = [i for i in IMPLS if i in cmds]
        grp = groups(a.workloads, a.dims)
        t0 = time.time()
        for rnd in range(a.rounds):
            rot = order[rnd % len(order):] + order[:rnd % len(order)] if order else []
            for impl in rot:   # alternate who goes first, round by round
                for ws, ds in grp:
                    ws = [w for w in ws if impl == "tweedie" or w not in TWEEDIE_ONLY]
                    if not ws:
                        continue
                    extra = ("--profile",) if a.profile and impl == "tweedie" else ()
                    for rec in run_once(impl, cmds[impl], ws, ds, a.reps, threads, a.timeout, extra):
                        if "gemm_share" in rec:
                            prof.setdefault((rec.get("workload"), rec.get("dim")), []).append(rec)
                        if "params" in rec:
                            params.setdefault((rec.get("workload"), impl), set()).add(rec["params"])
                        ms = rec.get("median_ms")
                        raw.append({"round": rnd, "threads": threads, "impl": impl, "workload": rec.get("workload"),
                                    "dim": rec.get("dim"), "median_ms": ms, "reps": rec.get("reps"),
                                    **({"error": rec["error"]} if rec.get("error") else {})})
                        if isinstance(ms, (int, float)):
                            per.setdefault((impl, rec.get("workload"), rec.get("dim")), []).append(float(ms))
            log(f"threads={threads}: round {rnd + 1}/{a.rounds} done ({time.time() - t0:.0f} s)")
        tables.append((threads, table(a, per, cmds, skipped, threads)))
        if prof:
            tables.append((threads, profile_table(a, prof, threads)))
    return raw, tables, params


def same_architecture(params):
    """Lines stating each U-Net workload's parameter count per impl; False if any two differ."""
    lines, ok = [], True
    for w in UNET_WORKLOADS:
        counts = {impl: sorted(v) for (wl, impl), v in params.items() if wl == w}
        if not counts:
            continue
        distinct = {c for v in counts.values() for c in v}
        ok &= len(distinct) == 1
        said = ", ".join(f"{impl} {'/'.join(map(str, v))}" for impl, v in sorted(counts.items()))
        lines.append(f"- {w} parameters: {said} ({'equal' if len(distinct) == 1 else 'MISMATCH'})")
    return lines, ok


def table(a, per, cmds, skipped, threads):
    med = {k: statistics.median(v) for k, v in per.items()}
    head = ["workload", "d", "tweedie ms"] + [f"{p} ms" for p in PEERS] + [f"{p}/tweedie" for p in PEERS]
    lines = [f"### threads = {threads} (median of {a.rounds} rounds, each the median of {a.reps} calls)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(impl, w, d):
        if impl in skipped or impl not in cmds:
            return "skipped"
        return fmt_ms(med.get((impl, w, d)))

    for w in a.workloads:
        for d in (a.dims or DEFAULT_DIMS[w]):
            tw = med.get(("tweedie", w, d))
            row = [w, str(d), cell("tweedie", w, d)] + [cell(p, w, d) for p in PEERS]
            row += [fmt_ratio(med.get((p, w, d)), tw) for p in PEERS]
            lines.append("| " + " | ".join(row) + " |")
    if "hessian_learned" in a.workloads and "hessian_autodiff" in a.workloads:
        lines += ["", "hessian_autodiff / hessian_learned (the learned s2's speed-up; should grow with d):", "",
                  "| d | " + " | ".join(IMPLS) + " |", "|" + "---|" * (len(IMPLS) + 1)]
        for d in (a.dims or DEFAULT_DIMS["hessian_learned"]):
            row = [str(d)] + [fmt_ratio(med.get((i, "hessian_autodiff", d)), med.get((i, "hessian_learned", d)))
                              for i in IMPLS]
            lines.append("| " + " | ".join(row) + " |")
    if "hessian3_learned" in a.workloads and "hessian3_autodiff" in a.workloads:
        lines += ["", "hessian3_autodiff / hessian3_learned (s3[v,v,v]: a second-order jet of s1 vs a cp:4 head; "
                  "tweedie only):", "", "| d | tweedie |", "|---|---|"]
        for d in (a.dims or DEFAULT_DIMS["hessian3_learned"]):
            ratio = fmt_ratio(med.get(("tweedie", "hessian3_autodiff", d)), med.get(("tweedie", "hessian3_learned", d)))
            lines.append(f"| {d} | {ratio} |")
    if skipped:
        lines += [""] + [f"- {i}: skipped ({why})" for i, why in skipped.items()]
    return "\n".join(lines)


def scaling_table(a, raw):
    """With several thread counts: tweedie's time at each, its speed-up over the first count, and the
    faster peer's time over tweedie's at each (medians over rounds, as in the per-thread tables)."""
    per = {}
    for r in raw:
        if isinstance(r.get("median_ms"), (int, float)):
            per.setdefault((r["threads"], r["impl"], r["workload"], r["dim"]), []).append(float(r["median_ms"]))
    med = {k: statistics.median(v) for k, v in per.items()}
    ts = a.threads
    head = (["workload", "d"] + [f"tweedie ms, {t} thr" for t in ts]
            + [f"speed-up {t} thr / {ts[0]}" for t in ts[1:]] + [f"faster peer / tweedie, {t} thr" for t in ts])
    lines = [f"### tweedie at {', '.join(map(str, ts))} threads", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def against_peers(t, w, d):
        times = {p: med[(t, p, w, d)] for p in PEERS if (t, p, w, d) in med}
        if not times:
            return "—"
        best = min(times, key=times.get)
        return f"{fmt_ratio(times[best], med.get((t, 'tweedie', w, d)))} ({best})"

    for w in a.workloads:
        for d in (a.dims or DEFAULT_DIMS[w]):
            tw = [med.get((t, "tweedie", w, d)) for t in ts]
            row = [w, str(d)] + [fmt_ms(v) for v in tw] + [fmt_ratio(tw[0], v) for v in tw[1:]]
            row += [against_peers(t, w, d) for t in ts]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def profile_table(a, prof, threads):
    """tweedie's GEMM profile (--profile): medians over rounds of each field of its JSON lines."""
    cols = [("gemm_gflop", "GEMM GFLOP per call", "{:.3g}"), ("gflops", "step GFLOP/s", "{:.0f}"),
            ("gemm_gflops", "GEMM GFLOP/s", "{:.0f}"), ("gemm_share", "GEMM share", "{:.0%}"),
            ("peak_gflops", "1024^3 product GFLOP/s", "{:.0f}")]
    lines = [f"### tweedie's GEMMs, threads = {threads} (median of {a.rounds} rounds; GEMM FLOPs counted as "
             "2 m k n per product; GEMM GFLOP/s and share by the threads' on-CPU clocks, share = time inside "
             "the GEMMs / on-CPU time of all threads; from as many calls again as the timed ones; "
             "docs/benchmarks.md section 6)", "",
             "| workload | d | " + " | ".join(c[1] for c in cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for w in a.workloads:
        for d in (a.dims or DEFAULT_DIMS[w]):
            recs = prof.get((w, d))
            if not recs:
                continue
            row = [w, str(d)] + [fmt.format(statistics.median(r[k] for r in recs)) for k, _, fmt in cols]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def check(a, cmds, skipped, tol=1e-3):
    """Runs each peer's --check and compares their values (relative to the row's largest magnitude)."""
    peers = [p for p in PEERS if p in cmds]
    if len(peers) < 2:
        log(f"--check needs both peers; skipped: {skipped}")
        return 0
    vals = {}
    for p in peers:
        for ws, ds in groups(a.workloads, a.dims):
            for rec in run_once(p, cmds[p], ws, ds, 1, a.threads[0], a.timeout, extra=("--check",)):
                if "check" in rec:
                    vals[(p, rec["check"], rec["dim"])] = rec
    bad = 0
    print("| workload | d | jax values | torch values | max rel diff | |\n|---|---|---|---|---|---|")
    for w in a.workloads:
        for d in (a.dims or DEFAULT_DIMS[w]):
            j, t = vals.get(("jax", w, d)), vals.get(("torch", w, d))
            if not j or not t or len(j["values"]) != len(t["values"]):
                print(f"| {w} | {d} | missing | | | FAIL |")
                bad += 1
                continue
            jv, tv = j["values"], t["values"]
            scale = max(max(abs(v) for v in jv + tv), 1e-12)
            rel = max(abs(x - y) / max(abs(x), abs(y), 1e-3 * scale) for x, y in zip(jv, tv))
            ok = rel <= tol and j.get("closed_vs_dense_rel", 0.0) <= tol
            bad += not ok
            note = f" (closed form vs dense: {j['closed_vs_dense_rel']:.1e})" if "closed_vs_dense_rel" in j else ""
            print(f"| {w} | {d} | {', '.join(f'{v:.7g}' for v in jv)} | {', '.join(f'{v:.7g}' for v in tv)} "
                  f"| {rel:.1e}{note} | {'ok' if ok else 'FAIL'} |")
    print(f"\n{'all agree' if not bad else f'{bad} disagree'} (tolerance {tol:g} relative, float32)")
    return 1 if bad else 0


def main():
    global PIN
    a = parse_args()
    PIN = not a.no_pin
    cmds, skipped = resolve_impls(a)
    for impl, why in skipped.items():
        log(f"{impl}: skipped ({why})")
    if a.check:
        sys.exit(check(a, cmds, skipped))
    if not cmds:
        log("nothing to run")
        sys.exit(0)
    raw, tables, params = bench(a, cmds, skipped)
    print("\n\n".join(t for _, t in tables))
    if len(a.threads) > 1:
        print("\n" + scaling_table(a, raw))
    arch_lines, same = same_architecture(params)
    if arch_lines:
        print("\n" + "\n".join(arch_lines))
    if a.json is not None:
        doc = {"rounds": a.rounds, "reps": a.reps, "threads": a.threads, "workloads": a.workloads,
               "commands": {k: v for k, v in cmds.items()}, "skipped": skipped, "runs": raw}
        if a.json == "-":
            print(json.dumps(doc, indent=1))
        else:
            with open(a.json, "w") as f:
                json.dump(doc, f, indent=1)
            log(f"raw data written to {a.json}")
    if not same:
        log("the implementations' U-Nets differ in parameter count: their timings do not compare")
        sys.exit(1)


if __name__ == "__main__":
    main()

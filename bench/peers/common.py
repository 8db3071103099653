"""Shared pieces of the peer benchmarks (bench/peers/jax_peer.py, bench/peers/torch_peer.py).

Everything that must be identical between the peers lives here: the CLI, the workload constants
(docs/benchmarks.md), the numpy-generated data and initial weights (so that both peers start from the very same
numbers), the timing loop and the JSON output line. This module imports neither jax nor torch, so that each
peer can set its thread environment before importing its framework.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

STEP_WORKLOADS = ("dsm_step", "d2sm_step", "ssm_step")
HESS_WORKLOADS = ("hessian_learned", "hessian_autodiff")
WORKLOADS = STEP_WORKLOADS + HESS_WORKLOADS
DEFAULT_DIMS = {w: (2, 16, 100, 784) for w in STEP_WORKLOADS}
DEFAULT_DIMS.update({w: (2, 16, 64, 256) for w in HESS_WORKLOADS})

BATCH = 512          # step workloads
N_POINTS = 1024      # hessian workloads
SIGMA = 0.1
LR = 1e-3
RANK = 10            # low-rank s2 head
WARMUP = 3           # untimed calls after the first (compile) call


def width(d):
    """Hidden width W of every MLP: 128, or 256 for d = 784."""
    return 256 if d == 784 else 128


def d2sm_head(d):
    """Form of the s2 head in d2sm_step: diagonal for d < 100, low-rank r = 10 for d >= 100.
    Returns (form, out_dim, w), w the weight of the first-order term."""
    if d < 100:
        return "diag", d, 1.0
    return "lowrank", d * RANK + d, 10.0


def hess_head(d):
    """Form of the learned s2 head in hessian_learned: full for d <= 16, else low-rank r = 10."""
    if d <= 16:
        return "full", d * (d + 1) // 2
    return "lowrank", d * RANK + d


def init_mlp(rng, sizes):
    """[(W (fan_in x fan_out), b)] with W ~ N(0,1)/sqrt(fan_in), b = 0, float32 (same layout as the JAX
    reference: a = h @ W + b)."""
    ps = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        ps.append(((rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32), np.zeros(o, np.float32)))
    return ps


def make_case(workload, d, seed=0):
    """Data and initial weights of one (workload, d), generated with numpy outside any timed region.
    x ~ N(0, I), z ~ N(0, I), v Rademacher; fixed per (seed, workload, d)."""
    key = WORKLOADS.index(workload) * 100003 + d
    rng = np.random.default_rng([seed, key])
    W = width(d)
    c = {"d": d, "W": W}
    if workload in STEP_WORKLOADS:
        n = BATCH
        c["x"] = rng.standard_normal((n, d)).astype(np.float32)
        c["z"] = rng.standard_normal((n, d)).astype(np.float32)
        c["v"] = (rng.integers(0, 2, (n, d)) * 2 - 1).astype(np.float32)
        c["s1"] = init_mlp(rng, [d, W, W, d])
        if workload == "d2sm_step":
            form, out, w = d2sm_head(d)
            c["form"], c["w"] = form, w
            c["s2"] = init_mlp(rng, [d, W, W, out])
    else:
        c["x"] = rng.standard_normal((N_POINTS, d)).astype(np.float32)
        if workload == "hessian_learned":
            form, out = hess_head(d)
            c["form"] = form
            c["s2"] = init_mlp(rng, [d, W, W, out])
        else:
            c["s1"] = init_mlp(rng, [d, W, W, d])
    return c


def parse_args(impl):
    ap = argparse.ArgumentParser(description=f"{impl} peer benchmark of tweedie's workloads (docs/benchmarks.md)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of " + ",".join(WORKLOADS))
    ap.add_argument("--dims", default=None,
                    help="comma-separated dims for every workload given (default: per workload, "
                         "steps 2,16,100,784, hessians 2,16,64,256)")
    ap.add_argument("--reps", type=int, default=30, help="timed calls per (workload, dim)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true",
                    help="print losses/checksums for the fixed seed instead of timing (cross-peer check)")
    a = ap.parse_args()
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
    a.dims = None if a.dims is None else [int(s) for s in a.dims.split(",") if s.strip()]
    return a


def set_thread_env(threads):
    """Environment for BLAS/OpenMP pools; call before importing the framework."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[k] = str(threads)


def time_calls(call, sync, reps, warmup=WARMUP):
    """Median wall time (ms) per call. The first call (compile for JAX) and `warmup` more are untimed.
    `call()` runs one call; `sync(result)` waits for its result (block_until_ready for JAX)."""
    sync(call())
    for _ in range(warmup):
        sync(call())
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sync(call())
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def emit(impl, workload, d, median_ms, reps, threads, error=None):
    rec = {"impl": impl, "workload": workload, "dim": d,
           "median_ms": None if median_ms is None else round(median_ms, 4), "reps": reps, "threads": threads}
    if error is not None:
        rec["error"] = error
    print(json.dumps(rec), flush=True)


def run(impl, args, build):
    """For each (workload, dim): build(workload, case) -> (call, sync); time it and print one JSON line."""
    for w in args.workloads:
        for d in (args.dims or DEFAULT_DIMS[w]):
            try:
                call, sync = build(w, make_case(w, d, args.seed))
                ms = time_calls(call, sync, args.reps)
                emit(impl, w, d, ms, args.reps, args.threads)
            except Exception as e:  # report and go on with the next case
                print(f"[{impl}] {w} d={d} failed: {type(e).__name__}: {e}", file=sys.stderr)
                emit(impl, w, d, None, args.reps, args.threads, error=f"{type(e).__name__}: {e}"[:300])

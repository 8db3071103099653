#!/usr/bin/env python3
"""Stand-in for `tweedie bench` to test bench/compare.py before the Rust side exists:
    python3 bench/compare.py --tweedie bench/fake_tweedie.py --rounds 2 --reps 5 [--profile]
Prints plausible JSON lines (made-up times, no work done) in the format the driver expects; unet_step
reports the U-Net's parameter count, or FAKE_UNET_PARAMS (to see the driver refuse a mismatch)."""
import argparse, json, os, random, sys

ap = argparse.ArgumentParser()
ap.add_argument("cmd", choices=["bench"])
ap.add_argument("--workloads", required=True); ap.add_argument("--dims", required=True)
ap.add_argument("--reps", type=int, default=20); ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--profile", action="store_true")
a = ap.parse_args()
base = {"dsm_step": 0.3, "d2sm_step": 0.7, "ssm_step": 0.6, "hessian_learned": 0.25, "hessian_autodiff": 0.4,
        "unet_step": 5.0}
for w in a.workloads.split(","):
    if w not in base:
        print(f"unknown workload {w}", file=sys.stderr); sys.exit(2)
    for d in map(int, a.dims.split(",")):
        grow = d ** 2 / 64 if w == "hessian_autodiff" else d / 50
        ms = base[w] * (1 + grow) * random.uniform(0.95, 1.05) / a.threads ** 0.8
        rec = {"impl": "tweedie", "workload": w, "dim": d, "median_ms": round(ms, 4), "reps": a.reps,
               "threads": a.threads}
        if w == "unet_step":
            rec["params"] = int(os.environ.get("FAKE_UNET_PARAMS", 807617))
        if a.profile:   # made-up GEMM profile fields in the format of `tweedie bench --profile`
            rec.update({"gemm_gflop": 1e-3 * d, "gflops": 1e-3 * d / ms * 1e3, "gemm_gflops": 120.0,
                        "gemm_share": 0.7, "peak_gflops": 150.0})
        print(json.dumps(rec), flush=True)

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
UNET_WORKLOADS = ("unet_step", "unet_lowrank_step")
WORKLOADS = STEP_WORKLOADS + HESS_WORKLOADS + UNET_WORKLOADS
DEFAULT_DIMS = {w: (2, 16, 100, 784) for w in STEP_WORKLOADS}
DEFAULT_DIMS.update({w: (2, 16, 64, 256) for w in HESS_WORKLOADS})
DEFAULT_DIMS.update({w: (784,) for w in UNET_WORKLOADS})

BATCH = 512          # step workloads
N_POINTS = 1024      # hessian workloads
SIGMA = 0.1
LR = 1e-3
RANK = 10            # low-rank s2 head
WARMUP = 3           # untimed calls after the first (compile) call

# The U-Net workloads (docs/benchmarks.md): tweedie's MNIST U-Net (src/nn/graph/unet.rs), batch 64,
# sigma = 0.5, pixels in [0, 1].
UNET_IMAGE = (28, 28, 1)                 # height, width, channels
UNET_CHANNELS = (32, 64, 128)
UNET_BLOCKS = 1
UNET_GROUPS = 8
UNET_FREQUENCIES = 4                     # Fourier frequencies of log sigma (src/models/unet_settings.rs)
UNET_BATCH = 64
UNET_SIGMA = 0.5
UNET_RANK = 20                           # unet_lowrank_step: low-rank + diagonal s2 of rank R
UNET_LOWRANK_WEIGHT = 10.0               # w of the joint objective for a low-rank head (docs/math.md §4.4)
GN_EPS = 1e-5                            # group norm (src/nn/graph/group_norm.rs)


def unet_out_maps(workload):
    """Output maps per pixel (one image channel): s1, then R factor columns and the diagonal of s2."""
    return 1 if workload == "unet_step" else 1 + UNET_RANK + 1


def unet_tensors(out_maps, image=UNET_IMAGE, channels=UNET_CHANNELS, blocks=UNET_BLOCKS,
                 frequencies=UNET_FREQUENCIES):
    """[(name, shape)] of tweedie's U-Net in its order and layout (UNetConfig::build): a k x k
    convolution's weight is (k k C_in) x C_out, rows ordered (ky, kx, c_in); an embedding's weight is
    2K x C. Residual block `name` on h (c_in channels) to c channels:
    h + conv2(act(norm2(embed(conv1(act(norm1(h))))))), the h term through a 1x1 `skip` when c_in != c."""
    out = []

    def conv(name, cin, cout, k):
        out.extend([(f"{name}.weight", (k * k * cin, cout)), (f"{name}.bias", (cout,))])

    def norm(name, c):
        out.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,))])

    def block(name, cin, c):
        norm(f"{name}.norm1", cin)
        conv(f"{name}.conv1", cin, c, 3)
        out.extend([(f"{name}.embed.weight", (2 * frequencies, c)), (f"{name}.embed.bias", (c,))])
        norm(f"{name}.norm2", c)
        conv(f"{name}.conv2", c, c, 3)
        if cin != c:
            conv(f"{name}.skip", cin, c, 1)

    conv("stem", image[2], channels[0], 3)
    h = channels[0]
    for level, c in enumerate(channels):
        for b in range(blocks):
            block(f"down.{level}.{b}", h, c)
            h = c
    block("mid", h, channels[-1])
    for level in reversed(range(len(channels) - 1)):
        h += channels[level]   # concat(upsampled, skip)
        for b in range(blocks):
            block(f"up.{level}.{b}", h, channels[level])
            h = channels[level]
    norm("out.norm", h)
    conv("out.conv", h, image[2] * out_maps, 3)
    return out


def unet_param_count(out_maps, channels=UNET_CHANNELS):
    return sum(int(np.prod(shape)) for _, shape in unet_tensors(out_maps, channels=channels))


def init_unet(rng, out_maps, channels=UNET_CHANNELS):
    """{name: float32 array in tweedie's layout}, initialised as tweedie's GraphBuilder does:
    convolution and embedding weights N(0, 1 / fan_in) (fan_in = rows of the weight), biases and norm
    shifts 0, norm scales 1."""
    ps = {}
    for name, shape in unet_tensors(out_maps, channels=channels):
        if name.endswith(".weight") and len(shape) == 2:
            ps[name] = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        elif name.endswith(".weight") and ".norm" in name:
            ps[name] = np.ones(shape, np.float32)
        else:
            ps[name] = np.zeros(shape, np.float32)
    return ps


def fourier_features(log_sigma, frequencies=UNET_FREQUENCIES):
    """[sin(omega_k l), cos(omega_k l)]_k with omega_k = 2^(k - 2) (src/nn/graph/noise_embedding.rs);
    log_sigma: (n,) -> (n, 2K) float32."""
    omega = 2.0 ** (np.arange(frequencies) - 2.0)
    a = np.asarray(log_sigma, np.float64)[:, None] * omega[None, :]
    return np.concatenate([np.sin(a), np.cos(a)], axis=1).astype(np.float32)


def lowrank_l2a(lib, out, s, z, rank, sigma):
    """Form-A D2SM loss per sample for S2 = U U^T + diag(d) (docs/math.md §5.4), in any array library
    `lib` (torch or jax.numpy: einsum and sum); out: (n, D, rank + 1) the head's maps per pixel (U's
    rows, then d), s, z: (n, D)."""
    U, dg = out[..., :rank], out[..., rank]
    G = lib.einsum("nir,nis->nrs", U, U)
    un2 = (U * U).sum(-1)
    uts = lib.einsum("nir,ni->nr", U, s)
    utz = lib.einsum("nir,ni->nr", U, z)
    ss, sz = (s * s).sum(-1), (s * z).sum(-1)
    fro = ((G * G).sum((-1, -2)) + (dg * dg).sum(-1) + ss * ss + 2 * (dg * un2).sum(-1)
           + 2 * (uts * uts).sum(-1) + 2 * (dg * s * s).sum(-1))
    tr = un2.sum(-1) + dg.sum(-1) + ss
    zhz = (utz * utz).sum(-1) + (dg * z * z).sum(-1) + sz * sz
    return 0.5 * (fro + (2 / sigma**2) * (tr - zhz))


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
    if workload in UNET_WORKLOADS and d != int(np.prod(UNET_IMAGE)):
        raise ValueError(f"--dims {d} ({workload}): expected 784, the 28x28 MNIST image")
    if workload in UNET_WORKLOADS:
        n, D = UNET_BATCH, int(np.prod(UNET_IMAGE))
        c["x"] = rng.random((n, D)).astype(np.float32)    # pixels in [0, 1]
        c["z"] = rng.standard_normal((n, D)).astype(np.float32)
        c["unet"] = init_unet(rng, unet_out_maps(workload))
    elif workload in STEP_WORKLOADS:
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


def emit(impl, workload, d, median_ms, reps, threads, error=None, params=None):
    rec = {"impl": impl, "workload": workload, "dim": d,
           "median_ms": None if median_ms is None else round(median_ms, 4), "reps": reps, "threads": threads}
    if params is not None:
        rec["params"] = params
    if error is not None:
        rec["error"] = error
    print(json.dumps(rec), flush=True)


def run(impl, args, build):
    """For each (workload, dim): build(workload, case) -> (call, sync); time it and print one JSON line
    (with the model's parameter count for the U-Net workloads, which `build` has checked against
    unet_param_count)."""
    for w in args.workloads:
        for d in (args.dims or DEFAULT_DIMS[w]):
            try:
                call, sync = build(w, make_case(w, d, args.seed))
                ms = time_calls(call, sync, args.reps)
                params = unet_param_count(unet_out_maps(w)) if w in UNET_WORKLOADS else None
                emit(impl, w, d, ms, args.reps, args.threads, params=params)
            except Exception as e:  # report and go on with the next case
                print(f"[{impl}] {w} d={d} failed: {type(e).__name__}: {e}", file=sys.stderr)
                emit(impl, w, d, None, args.reps, args.threads, error=f"{type(e).__name__}: {e}"[:300])

"""JAX peer (jit, CPU) of tweedie's benchmark workloads; shared definitions in docs/benchmarks.md §2.

    .venv-peers/bin/python bench/peers/jax_peer.py --workloads dsm_step,hessian_autodiff --dims 2,16 --reps 30 --threads 1

Prints one JSON line per (workload, dim): {"impl":"jax","workload":...,"dim":...,"median_ms":...,"reps":...,"threads":...}.
The first (compile) call and a few warm-up calls are excluded; every timed call ends in block_until_ready.
--check prints loss values / checksums for the fixed seed instead (bench/compare.py --check compares peers).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

args = C.parse_args("jax")
C.set_thread_env(args.threads)
if args.threads == 1:  # must be set before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import unet_jax  # noqa: E402

SIG = C.SIGMA


def to_params(ps):
    return [(jnp.asarray(w), jnp.asarray(b)) for w, b in ps]


def mlp(ps, x):
    for w, b in ps[:-1]:
        x = jax.nn.softplus(x @ w + b)
    w, b = ps[-1]
    return x @ w + b


def tosym(v, D):
    iu = np.triu_indices(D)
    M = jnp.zeros(v.shape[:-1] + (D, D), v.dtype).at[..., iu[0], iu[1]].set(v)
    return M + jnp.swapaxes(M, -1, -2) - jnp.einsum("...ii->...i", M)[..., None] * jnp.eye(D, dtype=v.dtype)


# ---------------------------------------------------------------- losses (per batch, mean over samples)
def dsm_loss(p, x, z):
    return jnp.mean(jnp.sum((mlp(p, x + SIG * z) + z / SIG) ** 2, -1))


def l2a_closed(form, out, s, z, D):
    """Form-A D2SM loss per sample by the closed forms of docs/math.md §5.3-§5.4 (no D x D matrix);
    h = S2 + s s^T, L2A = 0.5 (||h||_F^2 + (2/sigma^2)(tr h - z^T h z))."""
    ss = jnp.sum(s * s, -1)
    sz = jnp.sum(s * z, -1)
    if form == "diag":
        dg = out
        fro = jnp.sum(dg**2, -1) + 2 * jnp.sum(dg * s**2, -1) + ss**2
        tr = jnp.sum(dg, -1) + ss
        zhz = jnp.sum(dg * z**2, -1) + sz**2
    else:
        n = out.shape[0]
        U = out[:, : D * C.RANK].reshape(n, D, C.RANK)   # row-major U (D x r), then dg
        dg = out[:, D * C.RANK:]
        G = jnp.einsum("nir,nis->nrs", U, U)
        un2 = jnp.sum(U**2, -1)
        uts = jnp.einsum("nir,ni->nr", U, s)
        utz = jnp.einsum("nir,ni->nr", U, z)
        fro = (jnp.sum(G**2, (-1, -2)) + jnp.sum(dg**2, -1) + ss**2 + 2 * jnp.sum(dg * un2, -1)
               + 2 * jnp.sum(uts**2, -1) + 2 * jnp.sum(dg * s**2, -1))
        tr = jnp.sum(un2, -1) + jnp.sum(dg, -1) + ss
        zhz = jnp.sum(utz**2, -1) + jnp.sum(dg * z**2, -1) + sz**2
    return 0.5 * (fro + (2 / SIG**2) * (tr - zhz))


def d2sm_loss(form, w, params, x, z):
    D = x.shape[-1]
    xt = x + SIG * z
    s = mlp(params["s1"], xt)            # NOT detached: L2A trains s1 too (reference form A)
    sc = mlp(params["s1"], x)            # control variate at the clean x
    l1 = jnp.sum((s + z / SIG) ** 2, -1) - 2 * jnp.sum(sc * z, -1) / SIG - jnp.sum(z**2, -1) / SIG**2
    l2 = l2a_closed(form, mlp(params["s2"], xt), s, z, D)
    return jnp.mean(w * l1 / SIG**2 + l2)


def ssm_loss(p, x, v):
    """SSM-VR, M = 1: mean [v^T (grad_x s) v + 0.5 ||s||^2], v^T (grad s) v by one forward-mode JVP."""
    s, sdot = jax.jvp(lambda xx: mlp(p, xx), (x,), (v,))
    return jnp.mean(jnp.sum(v * sdot, -1) + 0.5 * jnp.sum(s * s, -1))


def unet_loss(workload, p, x, z):
    """unet_step: DSM, mean_i ||s1(x~_i) + z_i / sigma||^2. unet_lowrank_step: tweedie's image step
    with a shared low-rank head, mean_i [(w / sigma^2) L1_i + L2A_i] (w = 10): plain DSM (no control
    variate) and D2SM form A, s1 and the low-rank + diagonal s2 as the R + 2 maps of one network."""
    n, (h, wd, ch) = x.shape[0], C.UNET_IMAGE
    sig = C.UNET_SIGMA
    log_sigma = jnp.full((n,), np.log(sig), jnp.float32)
    xt = x + sig * z
    out = unet_jax.unet(p, xt.reshape(n, h, wd, ch), log_sigma).reshape(n, h * wd, -1)
    s = out[..., 0]
    if workload == "unet_step":
        return jnp.mean(jnp.sum((s + z / sig) ** 2, -1))
    l1 = jnp.sum((s + z / sig) ** 2, -1)
    l2 = C.lowrank_l2a(jnp, out[..., 1:], s, z, C.UNET_RANK, sig)
    return jnp.mean(C.UNET_LOWRANK_WEIGHT * l1 / sig**2 + l2)


# ---------------------------------------------------------------- workloads
def make_step(loss):
    opt = optax.adam(C.LR)

    def step(params, st, *data):
        l, g = jax.value_and_grad(loss)(params, *data)
        u, st = opt.update(g, st, params)
        return optax.apply_updates(params, u), st, l

    return opt, jax.jit(step, donate_argnums=(0, 1))


def build(workload, c):
    D = c["d"]
    x = jnp.asarray(c["x"])
    if workload in C.UNET_WORKLOADS:
        params = unet_jax.to_params(c["unet"])
        assert unet_jax.param_count(params) == C.unet_param_count(C.unet_out_maps(workload))
        opt, step = make_step(lambda p, xx, zz: unet_loss(workload, p, xx, zz))
        state = {"p": params, "st": opt.init(params)}
        data = (x, jnp.asarray(c["z"]))

        def call():
            state["p"], state["st"], l = step(state["p"], state["st"], *data)
            return state["p"], state["st"], l

        return call, jax.block_until_ready
    if workload in C.STEP_WORKLOADS:
        z, v = jnp.asarray(c["z"]), jnp.asarray(c["v"])
        if workload == "dsm_step":
            params, loss, data = to_params(c["s1"]), dsm_loss, (x, z)
        elif workload == "d2sm_step":
            form, w = c["form"], c["w"]
            params = {"s1": to_params(c["s1"]), "s2": to_params(c["s2"])}
            loss, data = (lambda p, xx, zz: d2sm_loss(form, w, p, xx, zz)), (x, z)
        else:
            params, loss, data = to_params(c["s1"]), ssm_loss, (x, v)
        opt, step = make_step(loss)
        state = {"p": params, "st": opt.init(params)}

        def call():
            state["p"], state["st"], l = step(state["p"], state["st"], *data)
            return state["p"], state["st"], l

        return call, jax.block_until_ready

    if workload == "hessian_learned":
        p2, form = to_params(c["s2"]), c["form"]
        if form == "full":
            f = jax.jit(lambda p, xx: tosym(mlp(p, xx), D))
        else:
            def f(p, xx):
                out = mlp(p, xx)
                return out[:, : D * C.RANK].reshape(xx.shape[0], D, C.RANK), out[:, D * C.RANK:]
            f = jax.jit(f)
        return (lambda: f(p2, x)), jax.block_until_ready

    p1 = to_params(c["s1"])   # hessian_autodiff

    def jac(p, xx):
        J = jax.vmap(jax.jacfwd(lambda v: mlp(p, v)))(xx)
        return (J + jnp.swapaxes(J, -1, -2)) / 2

    f = jax.jit(jac)
    return (lambda: f(p1, x)), jax.block_until_ready


# ---------------------------------------------------------------- cross-peer check
def dense_l2a(form, out, s, z, D):
    """The same L2A with the d x d matrix built (check of the closed forms only)."""
    n = out.shape[0]
    if form == "diag":
        S2 = jax.vmap(jnp.diag)(out)
    else:
        U = out[:, : D * C.RANK].reshape(n, D, C.RANK)
        S2 = jnp.einsum("nir,njr->nij", U, U) + jax.vmap(jnp.diag)(out[:, D * C.RANK:])
    h = S2 + jnp.einsum("ni,nj->nij", s, s)
    diff = (jnp.eye(D) - jnp.einsum("ni,nj->nij", z, z)) / SIG**2
    return 0.5 * jnp.sum(h**2 + 2 * diff * h, (-1, -2))


def check(workload, c):
    """Values that the torch peer must reproduce: for steps, the loss of 3 successive steps (so gradients
    and Adam are compared too); for hessians, checksums of the output."""
    D = c["d"]
    if workload in C.STEP_WORKLOADS + C.UNET_WORKLOADS:
        call, sync = build(workload, c)
        vals = [float(sync(call())[2]) for _ in range(3)]
        extra = {}
        if workload == "d2sm_step":
            x, z = jnp.asarray(c["x"])[:64], jnp.asarray(c["z"])[:64]
            p = {"s1": to_params(c["s1"]), "s2": to_params(c["s2"])}
            s = mlp(p["s1"], x + SIG * z)
            out = mlp(p["s2"], x + SIG * z)
            a, b = l2a_closed(c["form"], out, s, z, D), dense_l2a(c["form"], out, s, z, D)
            extra["closed_vs_dense_rel"] = float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
        return vals, extra
    call, sync = build(workload, c)
    out = sync(call())
    outs = out if isinstance(out, tuple) else (out,)
    return [float(jnp.sum(jnp.abs(o))) for o in outs] + [float(jnp.sum(o)) for o in outs], {}


if __name__ == "__main__":
    if args.check:
        for wl in args.workloads:
            for d in (args.dims or C.DEFAULT_DIMS[wl]):
                vals, extra = check(wl, C.make_case(wl, d, args.seed))
                print(json.dumps({"impl": "jax", "check": wl, "dim": d, "values": vals, **extra}), flush=True)
    else:
        C.run("jax", args, build)

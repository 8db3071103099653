"""PyTorch peer (eager, CPU) of tweedie's benchmark workloads; same definitions as jax_peer.py.

    .venv-peers/bin/python bench/peers/torch_peer.py --workloads dsm_step,hessian_autodiff --dims 2,16 --reps 30 --threads 1

Prints one JSON line per (workload, dim): {"impl":"torch","workload":...,"dim":...,"median_ms":...,"reps":...,"threads":...}.
Idiomatic eager code: nn.Linear/nn.Softplus, loss.backward(), torch.optim.Adam (default settings), torch.func for
the JVP (ssm_step) and the Jacobian (hessian_autodiff). A few warm-up calls are excluded.
--check prints loss values / checksums for the fixed seed instead (bench/compare.py --check compares peers).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

args = C.parse_args("torch")
C.set_thread_env(args.threads)

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.")  # torch.jit.script notice from torch.func
import torch.nn as nn  # noqa: E402

import unet_torch  # noqa: E402

torch.set_num_threads(args.threads)
SIG = C.SIGMA


def make_mlp(ps):
    """nn.Sequential(Linear, Softplus, Linear, Softplus, Linear) loaded with the numpy weights
    (W is fan_in x fan_out as in the JAX reference; nn.Linear stores its transpose)."""
    layers = []
    for i, (w, b) in enumerate(ps):
        lin = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(ps) - 1:
            layers.append(nn.Softplus())
    return nn.Sequential(*layers)


def tosym(v, D):
    iu = torch.triu_indices(D, D)
    M = torch.zeros(v.shape[:-1] + (D, D), dtype=v.dtype)
    M[..., iu[0], iu[1]] = v
    return M + M.transpose(-1, -2) - torch.diag_embed(torch.diagonal(M, dim1=-2, dim2=-1))


# ---------------------------------------------------------------- losses (per batch, mean over samples)
def l2a_closed(form, out, s, z, D):
    """Form-A D2SM loss per sample by the closed forms of docs/math.md §5.3-§5.4 (no D x D matrix)."""
    ss = (s * s).sum(-1)
    sz = (s * z).sum(-1)
    if form == "diag":
        dg = out
        fro = (dg**2).sum(-1) + 2 * (dg * s**2).sum(-1) + ss**2
        tr = dg.sum(-1) + ss
        zhz = (dg * z**2).sum(-1) + sz**2
    else:
        n = out.shape[0]
        U = out[:, : D * C.RANK].reshape(n, D, C.RANK)   # row-major U (D x r), then dg
        dg = out[:, D * C.RANK:]
        G = torch.bmm(U.transpose(1, 2), U)
        un2 = (U**2).sum(-1)
        uts = torch.bmm(s.unsqueeze(1), U).squeeze(1)
        utz = torch.bmm(z.unsqueeze(1), U).squeeze(1)
        fro = ((G**2).sum((-1, -2)) + (dg**2).sum(-1) + ss**2 + 2 * (dg * un2).sum(-1)
               + 2 * (uts**2).sum(-1) + 2 * (dg * s**2).sum(-1))
        tr = un2.sum(-1) + dg.sum(-1) + ss
        zhz = (utz**2).sum(-1) + (dg * z**2).sum(-1) + sz**2
    return 0.5 * (fro + (2 / SIG**2) * (tr - zhz))


# ---------------------------------------------------------------- workloads
def unet_loss_fn(workload, net, x, z):
    """unet_step: DSM, mean_i ||s1(x~_i) + z_i / sigma||^2. unet_lowrank_step: tweedie's image step
    with a shared low-rank head, mean_i [(w / sigma^2) L1_i + L2A_i] (w = 10): plain DSM (no control
    variate) and D2SM form A, s1 and the low-rank + diagonal s2 as the R + 2 maps of one network."""
    n, (h, wd, ch) = x.shape[0], C.UNET_IMAGE
    sig = C.UNET_SIGMA
    log_sigma = torch.full((n,), float(np.log(sig)))
    img = lambda v: v.reshape(n, h, wd, ch).permute(0, 3, 1, 2)   # noqa: E731 (rows are channels-last)
    xt = x + sig * z
    if workload == "unet_step":
        def loss_fn():
            s = net(img(xt), log_sigma)[:, 0].reshape(n, -1)
            return ((s + z / sig) ** 2).sum(-1).mean()
        return loss_fn

    def loss_fn():
        out = net(img(xt), log_sigma)
        s = out[:, 0].reshape(n, -1)
        head = out[:, 1:].permute(0, 2, 3, 1).reshape(n, h * wd, C.UNET_RANK + 1)
        l1 = ((s + z / sig) ** 2).sum(-1)
        l2 = C.lowrank_l2a(torch, head, s, z, C.UNET_RANK, sig)
        return (C.UNET_LOWRANK_WEIGHT * l1 / sig**2 + l2).mean()
    return loss_fn


def adam_step(params, loss_fn):
    """One timed call: an Adam step of `params` on `loss_fn()`; returns the loss."""
    opt = torch.optim.Adam(params, lr=C.LR)

    def call():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.detach()

    return call


def build(workload, c):
    D = c["d"]
    x = torch.from_numpy(c["x"])
    if workload in C.UNET_WORKLOADS:
        net = unet_torch.build(C.unet_out_maps(workload), c["unet"])
        loss_fn = unet_loss_fn(workload, net, x, torch.from_numpy(c["z"]))
        return adam_step(net.parameters(), loss_fn), (lambda r: r)
    if workload in C.STEP_WORKLOADS:
        z, v = torch.from_numpy(c["z"]), torch.from_numpy(c["v"])
        s1 = make_mlp(c["s1"])
        if workload == "dsm_step":
            params = list(s1.parameters())

            def loss_fn():
                return ((s1(x + SIG * z) + z / SIG) ** 2).sum(-1).mean()
        elif workload == "d2sm_step":
            s2 = make_mlp(c["s2"])
            form, w = c["form"], c["w"]
            params = list(s1.parameters()) + list(s2.parameters())

            def loss_fn():
                xt = x + SIG * z
                s = s1(xt)                      # NOT detached (reference form A)
                sc = s1(x)                      # control variate at the clean x
                l1 = ((s + z / SIG) ** 2).sum(-1) - 2 * (sc * z).sum(-1) / SIG - (z**2).sum(-1) / SIG**2
                return (w * l1 / SIG**2 + l2a_closed(form, s2(xt), s, z, D)).mean()
        else:  # ssm_step: v^T (grad s) v by one forward-mode JVP, then an ordinary backward
            params = list(s1.parameters())

            def loss_fn():
                s, sdot = torch.func.jvp(s1, (x,), (v,))
                return ((v * sdot).sum(-1) + 0.5 * (s * s).sum(-1)).mean()

        return adam_step(params, loss_fn), (lambda r: r)

    if workload == "hessian_learned":
        s2, form = make_mlp(c["s2"]), c["form"]

        def call():
            with torch.inference_mode():
                out = s2(x)
                if form == "full":
                    return tosym(out, D)
                return out[:, : D * C.RANK].reshape(x.shape[0], D, C.RANK), out[:, D * C.RANK:]

        return call, (lambda r: r)

    s1 = make_mlp(c["s1"])   # hessian_autodiff
    for p in s1.parameters():
        p.requires_grad_(False)
    jac = torch.func.vmap(torch.func.jacfwd(s1))

    def call():
        with torch.no_grad():
            J = jac(x)
            return (J + J.transpose(-1, -2)) / 2

    return call, (lambda r: r)


def check(workload, c):
    call, _ = build(workload, c)
    if workload in C.STEP_WORKLOADS + C.UNET_WORKLOADS:
        return [float(call()) for _ in range(3)]
    out = call()
    outs = out if isinstance(out, tuple) else (out,)
    return [float(o.abs().sum()) for o in outs] + [float(o.sum()) for o in outs]


if __name__ == "__main__":
    if args.check:
        for wl in args.workloads:
            for d in (args.dims or C.DEFAULT_DIMS[wl]):
                vals = check(wl, C.make_case(wl, d, args.seed))
                print(json.dumps({"impl": "torch", "check": wl, "dim": d, "values": vals}), flush=True)
    else:
        C.run("torch", args, build)

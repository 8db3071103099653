#!/usr/bin/env python3
"""Trains tweedie's MNIST U-Net (bench/peers/unet_torch.py) in PyTorch the way
`tweedie train --target mnist --arch unet ...` does, and reports the held-out PSNRs as `tweedie eval` does.

    .venv-peers/bin/python bench/unet_mnist_torch.py --data-dir DIR [--channels 32,64] [--sigma 0.5]
        [--batch 64] [--steps 300] [--learning-rate 0.001] [--ema 0.999] [--seed 0] [--threads 1]
        [--tweedie-checkpoint unet.safetensors [--no-train]] [--json out.json]

The same as tweedie's run (src/train/trainer.rs, src/train/image_step.rs, src/cli/eval.rs):
- data: the MNIST training split (IDX files in DIR, optionally .gz), pixels / 255 in [0, 1]; the
  held-out points are the whole test split;
- model: the same U-Net (s1 alone, conditioned on log sigma), initialised from the same distributions
  (convolution and embedding weights N(0, 1 / fan_in), biases 0, norm scales 1), not the same numbers;
- step: a batch of `batch` training images drawn uniformly with replacement, z ~ N(0, I), the DSM loss
  mean_i ||s1(x_i + sigma z_i) + z_i / sigma||^2, Adam (beta 0.9, 0.999, eps 1e-8, constant rate), then
  the weight average shadow <- r_t shadow + (1 - r_t) theta, r_t = min(ema, (1 + t) / (10 + t));
- evaluation: the averaged weights in float64 on the test split with fresh noise (seed `--eval-seed`);
  psnr_denoised = -10 log10(mse) of the Tweedie mean x~ + sigma^2 s1(x~) (unclipped) against the clean
  pixels, i.e. mse = sigma^4 L_dsm / D; psnr_noisy = -10 log10(sigma^2), as tweedie reports it.
The random streams differ (numpy / torch instead of ChaCha8), so batches and noise are not tweedie's.

--tweedie-checkpoint also checks that the torch U-Net's tensors are the checkpoint's (names and sizes,
`s1.*`) and evaluates the checkpoint's averaged weights (`ema.shadow`) with this script's torch forward,
which checks the forward pass and the PSNR definition against `tweedie eval --json`.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import common as C  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files (optionally .gz)")
    ap.add_argument("--channels", default="32,64")
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-seed", type=int, default=1)
    ap.add_argument("--eval-batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tweedie-checkpoint", default=None, help="a tweedie U-Net checkpoint to check against")
    ap.add_argument("--no-train", action="store_true", help="only the --tweedie-checkpoint check")
    ap.add_argument("--json", default=None, help="write the report to this file as JSON")
    a = ap.parse_args()
    a.channels = tuple(int(c) for c in a.channels.split(","))
    return a


args = parse_args()
C.set_thread_env(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import unet_torch  # noqa: E402

torch.set_num_threads(args.threads)


def read_idx(data_dir, split):
    """The IDX image file of `split` (train, t10k; `-idx3-` or `.idx3-` in the name, optionally .gz) in
    data_dir as float64 rows of pixels / 255."""
    stems = [f"{split}-images-idx3-ubyte", f"{split}-images.idx3-ubyte"]
    for name in [s + ext for s in stems for ext in ("", ".gz")]:
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
                raw = f.read()
            magic, n, h, w = struct.unpack(">IIII", raw[:16])
            if magic != 2051:
                sys.exit(f"{path}: IDX magic {magic}, expected 2051 (images)")
            return np.frombuffer(raw, np.uint8, n * h * w, 16).reshape(n, h * w) / 255.0
    sys.exit(f"--data-dir {data_dir}: no {stems[0]}[.gz], expected the MNIST IDX files")


def read_safetensors(path):
    """{name: float32 array} of a safetensors file (F32 tensors only)."""
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw, np.float32, (b - a) // 4, 8 + size + a).reshape(t["shape"])
    return out


def shadow_tensors(flat, channels):
    """Splits tweedie's flat parameter vector (the weight average) into named tensors, in graph order."""
    out, k = {}, 0
    for name, shape in C.unet_tensors(1, channels=channels):
        n = int(np.prod(shape))
        out[name] = flat[k:k + n].reshape(shape)
        k += n
    if k != flat.size:
        sys.exit(f"ema.shadow holds {flat.size} values, the U-Net {k}")
    return out


def psnr(mse):
    return -10.0 * np.log10(mse)


def evaluate(model, test, sigma, seed, batch):
    """Held-out DSM loss and PSNRs (float64, as tweedie eval: Tweedie mean, unclipped)."""
    model = model.double().eval()
    rng = np.random.default_rng(seed)
    n, (h, w, c) = test.shape[0], C.UNET_IMAGE
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, batch):
            x = torch.from_numpy(test[start:start + batch])
            z = torch.from_numpy(rng.standard_normal(x.shape))
            xt = x + sigma * z
            s = model(xt.reshape(-1, c, h, w), torch.full((x.shape[0],), np.log(sigma), dtype=torch.float64))
            total += float(((s.reshape(x.shape) + z / sigma) ** 2).sum())
    dsm = total / n
    mse = sigma**4 * dsm / test.shape[1]
    return {"held_out_points": n, "held_out_dsm_loss": dsm, "psnr_noisy": psnr(sigma**2),
            "psnr_denoised": psnr(mse)}


def train(train_x, a):
    """Trains from a's seed; returns the weight-averaged model and the final batch loss."""
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = unet_torch.build(1, channels=a.channels, seed=a.seed)
    opt = torch.optim.Adam(model.parameters(), lr=a.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    shadow = [p.detach().clone() for p in model.parameters()]
    n, (h, w, c) = train_x.shape[0], C.UNET_IMAGE
    log_sigma = torch.full((a.batch,), float(np.log(a.sigma)))
    loss = float("nan")
    for t in range(a.steps):
        x = torch.from_numpy(train_x[rng.integers(0, n, a.batch)].astype(np.float32))
        z = torch.randn(x.shape)
        s = model((x + a.sigma * z).reshape(-1, c, h, w), log_sigma).reshape(x.shape)
        batch_loss = ((s + z / a.sigma) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        opt.step()
        r = min(a.ema, (1 + t) / (10 + t)) if a.ema > 0 else 0.0
        with torch.no_grad():
            for m, p in zip(shadow, model.parameters()):
                m.mul_(r).add_(p, alpha=1 - r)
        loss = float(batch_loss.detach())
    with torch.no_grad():
        for m, p in zip(shadow, model.parameters()):
            p.copy_(m)
    return model, loss


def main():
    a = args
    train_x = read_idx(a.data_dir, "train")
    test = read_idx(a.data_dir, "t10k")
    report = {"impl": "torch", "torch": torch.__version__, "threads": a.threads, "channels": list(a.channels),
              "sigma": a.sigma, "batch": a.batch, "steps": a.steps, "learning_rate": a.learning_rate,
              "ema": a.ema, "seed": a.seed, "eval_seed": a.eval_seed,
              "params": C.unet_param_count(1, a.channels)}
    if a.tweedie_checkpoint:
        store = read_safetensors(a.tweedie_checkpoint)
        s1 = {k[3:]: v for k, v in store.items() if k.startswith("s1.")}
        want = {n: tuple(s) for n, s in C.unet_tensors(1, channels=a.channels)}
        got = {n: tuple(v.shape) for n, v in s1.items()}
        if got != want:
            sys.exit(f"{a.tweedie_checkpoint}: its s1 tensors differ from this U-Net's "
                     f"(only there: {sorted(set(got) - set(want))[:4]}, only here: {sorted(set(want) - set(got))[:4]})")
        flat = store.get("ema.shadow")
        tensors = shadow_tensors(flat, a.channels) if flat is not None else s1
        ours = unet_torch.build(1, tensors=tensors, channels=a.channels)
        report["tweedie_checkpoint"] = {"same_tensors": True, "params": sum(v.size for v in s1.values()),
                                        "weights": "ema.shadow" if flat is not None else "s1",
                                        **evaluate(ours, test, a.sigma, a.eval_seed, a.eval_batch)}
    if a.no_train:
        return finish(report, a.json)
    t0 = time.time()
    model, loss = train(train_x, a)
    report["train_seconds"] = time.time() - t0
    report["final_batch_loss"] = loss
    report.update(evaluate(model, test, a.sigma, a.eval_seed, a.eval_batch))
    finish(report, a.json)


def finish(report, path):
    line = json.dumps(report)
    print(line)
    if path:
        with open(path, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()

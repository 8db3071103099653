"""tweedie's noise-conditional U-Net (src/nn/graph/unet.rs) as a pure JAX function (NHWC, jit-able).

Parameters are the dict of common.init_unet: tweedie's tensor names, a convolution's weight reshaped to
HWIO (k, k, C_in, C_out), which is tweedie's (k k C_in) x C_out layout with the same element order.
Imported after the thread environment is set (jax is imported here).
"""
import jax
import jax.numpy as jnp
import numpy as np

import common as C


def to_params(tensors):
    """{name: jnp array}: convolution weights as HWIO (every convolution is 3x3 but the 1x1 `skip`s),
    everything else as stored."""
    out = {}
    for name, w in tensors.items():
        w = np.asarray(w, np.float32)
        if name.endswith(".weight") and w.ndim == 2 and ".embed." not in name:
            k = 1 if name.endswith(".skip.weight") else 3
            w = w.reshape(k, k, w.shape[0] // (k * k), w.shape[1])
        out[name] = jnp.asarray(w)
    return out


def conv(p, name, h):
    w = p[f"{name}.weight"]
    y = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + p[f"{name}.bias"]


def group_norm(p, name, h, groups=C.UNET_GROUPS):
    n, hh, ww, c = h.shape
    g = h.reshape(n, hh, ww, groups, c // groups)
    mu = g.mean((1, 2, 4), keepdims=True)
    var = ((g - mu) ** 2).mean((1, 2, 4), keepdims=True)
    g = ((g - mu) / jnp.sqrt(var + C.GN_EPS)).reshape(h.shape)
    return g * p[f"{name}.weight"] + p[f"{name}.bias"]


def res_block(p, name, h, phi):
    a = conv(p, f"{name}.conv1", jax.nn.silu(group_norm(p, f"{name}.norm1", h)))
    a = a + (phi @ p[f"{name}.embed.weight"] + p[f"{name}.embed.bias"])[:, None, None, :]
    a = conv(p, f"{name}.conv2", jax.nn.silu(group_norm(p, f"{name}.norm2", a)))
    return a + (conv(p, f"{name}.skip", h) if f"{name}.skip.weight" in p else h)


def unet(p, x, log_sigma, channels=C.UNET_CHANNELS, blocks=C.UNET_BLOCKS, frequencies=C.UNET_FREQUENCIES):
    """x (n, H, W, C) channels-last, log_sigma (n,) -> (n, H, W, C maps)."""
    omega = 2.0 ** (jnp.arange(frequencies, dtype=jnp.float32) - 2.0)
    a = log_sigma[:, None] * omega[None, :]
    phi = jnp.concatenate([jnp.sin(a), jnp.cos(a)], 1)
    h = conv(p, "stem", x)
    skips = []
    for level in range(len(channels)):
        for b in range(blocks):
            h = res_block(p, f"down.{level}.{b}", h, phi)
        if level < len(channels) - 1:
            skips.append(h)
            n, hh, ww, c = h.shape
            h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).mean((2, 4))
    h = res_block(p, "mid", h, phi)
    for level in reversed(range(len(channels) - 1)):
        up = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
        h = jnp.concatenate([up, skips[level]], -1)
        for b in range(blocks):
            h = res_block(p, f"up.{level}.{b}", h, phi)
    return conv(p, "out.conv", jax.nn.silu(group_norm(p, "out.norm", h)))


def param_count(p):
    return sum(int(v.size) for v in p.values())

"""tweedie's noise-conditional U-Net (src/nn/graph/unet.rs) in idiomatic PyTorch (eager, NCHW).

Module and parameter names are tweedie's tensor paths (`down.1.0.conv1.weight`), so a tweedie
checkpoint's `s1.*` tensors map one to one; only the layouts differ (tweedie_layout / load_tweedie).
Imported after the thread environment is set (torch is imported here).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C


class ResBlock(nn.Module):
    """h + conv2(silu(norm2(embed(conv1(silu(norm1(h))))))), h through a 1x1 `skip` when c_in != c."""

    def __init__(self, cin, c, groups, frequencies):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=C.GN_EPS)
        self.conv1 = nn.Conv2d(cin, c, 3, padding=1)
        self.embed = nn.Linear(2 * frequencies, c)
        self.norm2 = nn.GroupNorm(groups, c, eps=C.GN_EPS)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.skip = nn.Conv2d(cin, c, 1) if cin != c else None

    def forward(self, h, phi):
        a = self.conv1(F.silu(self.norm1(h)))
        a = a + self.embed(phi)[:, :, None, None]
        a = self.conv2(F.silu(self.norm2(a)))
        return a + (h if self.skip is None else self.skip(h))


class Out(nn.Module):
    def __init__(self, c, maps, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=C.GN_EPS)
        self.conv = nn.Conv2d(c, maps, 3, padding=1)


class UNet(nn.Module):
    """stem; per level `blocks` ResBlocks, then (above the bottom) keep the skip and 2x2 average-pool;
    mid block; up: 2x nearest upsampling, cat([up, skip]), `blocks` ResBlocks; norm, SiLU, 3x3 conv to
    `out_maps` maps per image channel. forward(x (n, C, H, W), log_sigma (n,)) -> (n, C maps, H, W)."""

    def __init__(self, out_maps, image=C.UNET_IMAGE, channels=C.UNET_CHANNELS, blocks=C.UNET_BLOCKS,
                 groups=C.UNET_GROUPS, frequencies=C.UNET_FREQUENCIES):
        super().__init__()
        self.frequencies = frequencies
        self.stem = nn.Conv2d(image[2], channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        h = channels[0]
        for c in channels:
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(h, c, groups, frequencies))
                h = c
            self.down.append(level)
        self.mid = ResBlock(h, channels[-1], groups, frequencies)
        self.up = nn.ModuleList([nn.ModuleList() for _ in channels[:-1]])
        for level in reversed(range(len(channels) - 1)):
            h += channels[level]
            for _ in range(blocks):
                self.up[level].append(ResBlock(h, channels[level], groups, frequencies))
                h = channels[level]
        self.out = Out(h, image[2] * out_maps, groups)
        self.register_buffer("omega", 2.0 ** (torch.arange(frequencies, dtype=torch.float32) - 2.0))

    def forward(self, x, log_sigma):
        a = log_sigma[:, None] * self.omega[None, :]
        phi = torch.cat([torch.sin(a), torch.cos(a)], 1)
        h = self.stem(x)
        skips = []
        for level, blocks in enumerate(self.down):
            for b in blocks:
                h = b(h, phi)
            if level < len(self.down) - 1:
                skips.append(h)
                h = F.avg_pool2d(h, 2)
        h = self.mid(h, phi)
        for level in reversed(range(len(self.up))):
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skips[level]], 1)
            for b in self.up[level]:
                h = b(h, phi)
        return self.out.conv(F.silu(self.out.norm(h)))


def tweedie_layout(name, t):
    """A torch parameter as tweedie stores it: conv (C_out, C_in, k, k) -> (k k C_in, C_out) rows
    ordered (ky, kx, c_in); Linear (C, 2K) -> (2K, C); vectors unchanged."""
    t = t.detach().cpu().numpy()
    if t.ndim == 4:
        return np.ascontiguousarray(t.transpose(2, 3, 1, 0).reshape(-1, t.shape[0]))
    if t.ndim == 2:
        return np.ascontiguousarray(t.T)
    return t


def load_tweedie(model, tensors):
    """Copies {name: array in tweedie's layout} into the model; names and sizes must match exactly."""
    own = dict(model.named_parameters())
    if set(own) != set(tensors):
        missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        raise ValueError(f"U-Net tensors differ: torch only {missing[:5]}, tweedie only {extra[:5]}")
    with torch.no_grad():
        for name, p in own.items():
            w = np.array(tensors[name], np.float32)   # a copy: safetensors arrays are read-only
            if p.ndim == 4:
                co, ci, k, _ = p.shape
                if w.shape != (k * k * ci, co):
                    raise ValueError(f"{name}: tweedie shape {w.shape}, expected {(k * k * ci, co)}")
                w = w.reshape(k, k, ci, co).transpose(3, 2, 0, 1)
            elif p.ndim == 2:
                if w.shape != tuple(p.shape[::-1]):
                    raise ValueError(f"{name}: tweedie shape {w.shape}, expected {tuple(p.shape[::-1])}")
                w = w.T
            elif w.shape != tuple(p.shape):
                raise ValueError(f"{name}: tweedie shape {w.shape}, expected {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)))


def build(out_maps, tensors=None, channels=C.UNET_CHANNELS, seed=0):
    """The U-Net with tweedie's initialisation (common.init_unet from `seed`) or the given tensors;
    asserts that its tensors are exactly tweedie's, name by name and size by size."""
    model = UNet(out_maps, channels=channels)
    spec = dict(C.unet_tensors(out_maps, channels=channels))
    got = {n: tweedie_layout(n, p).shape for n, p in model.named_parameters()}
    assert got == {n: tuple(s) for n, s in spec.items()}, "torch U-Net tensors differ from tweedie's"
    assert sum(p.numel() for p in model.parameters()) == C.unet_param_count(out_maps, channels)
    if tensors is None:
        tensors = C.init_unet(np.random.default_rng(seed), out_maps, channels)
    load_tweedie(model, tensors)
    return model

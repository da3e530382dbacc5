"""How far a network looks: the LR receptive-field radius of an image-to-image network, and whether cutting
its input into tiles changes its output at all.

Two steps, both cheap:

1. :func:`conv_reach_bound` walks the modules and sums each convolution's reach in LR pixels. Every path from
   an input pixel to an output pixel passes each module at most once, so the sum bounds the radius of any
   network built from stride-1 convolutions and pointwise operations (activations, residual adds, channel
   concatenations, PixelShuffle, nearest upsampling) — exactly, for a plain chain. It is an upper bound
   rather than an impulse probe of the trained weights because a probe can miss a path whose ReLUs happen
   to be off for the probe input but on for a real image.
2. The walk cannot see what runs outside modules (a global mean, attention over whole rows, a pooling
   whose grid depends on where the image starts, an interpolation), so :func:`tiles_exactly` checks the
   claim on the network itself: a window cut from a larger probe image, run alone, must give the same
   output as the whole probe wherever the window kept ``halo`` LR pixels of context. The probe runs a
   float64 copy on the CPU, so that a pass means "the same function", not "the same up to this device's
   rounding" (a GPU's TF32 convolutions would blur the two).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

#: float64 difference above which a window's output is "not the same": float64 rounding of the same
#: arithmetic in another order is ~1e-15; any real dependence on outside pixels is orders of magnitude larger.
PROBE_ATOL = 1e-9
#: Output pixels (in LR pixels) compared per axis in the probe, away from the window's cut edges.
PROBE_CORE_PX = (8, 7)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_reach(m: nn.Conv2d) -> int | None:
    """Input pixels an output pixel of ``m`` reaches on either side; None for a strided conv (it would
    multiply the reach of every later layer, which the sum does not model)."""
    if any(s != 1 for s in _pair(m.stride)):
        return None
    k, d = _pair(m.kernel_size), _pair(m.dilation)
    if isinstance(m.padding, str):  # "same" centres the kernel, "valid" starts at the output pixel
        pad = [d[i] * (k[i] - 1) // 2 if m.padding == "same" else 0 for i in range(2)]
    else:
        pad = list(_pair(m.padding))
    return max(max(pad[i], d[i] * (k[i] - 1) - pad[i]) for i in range(2))


def _deconv_reach(m: nn.ConvTranspose2d) -> int:
    """A transposed conv of stride s: output pixel ``s*q + j`` reads inputs ``i`` with
    ``q - ceil((d(k-1) - p) / s) <= i <= q + floor((s - 1 + p) / s)``; the reach is measured in input pixels."""
    k, d, s, p = _pair(m.kernel_size), _pair(m.dilation), _pair(m.stride), _pair(m.padding)
    return max(max((s[i] - 1 + p[i]) // s[i], math.ceil((d[i] * (k[i] - 1) - p[i]) / s[i])) for i in range(2))


def conv_reach_bound(model: nn.Module) -> int | None:
    """Upper bound on the LR receptive-field radius (pixels on each side) of ``model`` as a stack of its
    convolutions; None when it has a strided convolution. Convolutions at HR count their HR reach, which is
    at least their reach in LR pixels. A module of another class with a 4-D ``weight`` (a fixed kernel
    applied with ``F.conv2d``, as the zoo's bicubic) counts as a centred kernel; :func:`tiles_exactly`
    checks that assumption."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            total += _deconv_reach(m)
        elif isinstance(m, nn.Conv2d):
            reach = _conv_reach(m)
            if reach is None:
                return None
            total += reach
        elif isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4:
            total += math.ceil((max(m.weight.shape[-2:]) - 1) / 2)
    return total


@torch.no_grad()
def tiles_exactly(model: nn.Module, halo: int, scale: int) -> bool:
    """Whether ``model`` run on a window of an image gives the whole image's output (float64, within
    :data:`PROBE_ATOL`) at every pixel with at least ``halo`` LR pixels of context inside the window.

    The window starts at an offset that is odd and not a multiple of 3 (a pooling grid or a strided layer
    would then fall differently), and the image around it differs in brightness and contrast from the window
    (whole-image statistics, as a channel attention's mean, then differ too)."""
    probe = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    origin = 6 * (halo // 6) + 7  # >= halo + 1, = 1 mod 6
    core_h, core_w = PROBE_CORE_PX
    win_h, win_w = core_h + 2 * halo, core_w + 2 * halo
    gen = torch.Generator().manual_seed(0)
    full = 0.8 + 0.2 * torch.rand(1, 3, win_h + 2 * origin, win_w + 2 * origin, generator=gen, dtype=torch.float64)
    window = torch.rand(1, 3, win_h, win_w, generator=gen, dtype=torch.float64)
    full[:, :, origin : origin + win_h, origin : origin + win_w] = window
    try:
        y_full, y_win = probe(full), probe(window)
    except RuntimeError:  # an op without float64 support: no claim can be checked
        return False
    s, y0, x0 = scale, origin + halo, origin + halo
    want = y_full[:, :, y0 * s : (y0 + core_h) * s, x0 * s : (x0 + core_w) * s]
    got = y_win[:, :, halo * s : (halo + core_h) * s, halo * s : (halo + core_w) * s]
    return want.shape == got.shape and bool((want - got).abs().max() <= PROBE_ATOL)

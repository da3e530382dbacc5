"""MATLAB-style bicubic resizing (``imresize(..., 'bicubic')``), modcrop and LR generation.

This follows evaluation.md §5.1 exactly:

* Keys cubic kernel with a = -0.5;
* output index x (1-based) maps to input coordinate ``u = x/scale + 0.5*(1 - 1/scale)``;
* when downscaling with antialiasing the kernel is stretched to width ``4/scale`` and the weight for an
  offset d is ``scale * k(scale * d)``;
* ``ceil(width) + 2`` taps starting at ``floor(u - width/2)``, weights normalised to sum to 1;
* out-of-range taps are mirrored symmetrically with the edge sample repeated;
* separable passes, the axis with the smaller scale first (rows first on a tie);
* everything in float64, no rounding (``bicubic_downscale`` rounds once, at the end).

Each axis gets one dense weight matrix which is applied with ``numpy.einsum``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trisr.errors import ImageError

__all__ = ["imresize", "modcrop", "bicubic_downscale", "bicubic_upscale", "quantize_uint8"]

_KERNEL_WIDTH = 4.0


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return inner + outer


def _weight_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """Dense ``out_len x in_len`` float64 matrix of MATLAB ``contributions`` for one axis."""
    if scale < 1.0 and antialias:
        width = _KERNEL_WIDTH / scale

        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * d)

    else:
        width = _KERNEL_WIDTH
        kernel = _cubic

    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based positions
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Symmetric mirroring with the edge sample repeated: aux = [1..n, n..1].
    idx = indices.astype(np.int64) - 1  # 0-based
    period = 2 * in_len
    idx = np.mod(idx, period)
    idx = np.where(idx < in_len, idx, period - 1 - idx)

    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], idx.shape)
    np.add.at(matrix, (rows, idx), weights)  # all-zero tap columns contribute nothing
    return matrix


def _pair(value: float | Sequence[float], what: str) -> tuple[float, float]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        pair = (float(value), float(value))
    else:
        items = tuple(value)
        if len(items) != 2:
            raise ValueError(f"{what} must be a number or a pair (rows, cols), got {value!r}")
        pair = (float(items[0]), float(items[1]))
    return pair


def imresize(
    img: np.ndarray,
    scale: float | Sequence[float] | None = None,
    output_shape: Sequence[int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Resize like MATLAB ``imresize(img, scale, 'bicubic')`` and return float64, unrounded.

    Args:
        img: ``H x W`` or ``H x W x C`` array of any numeric dtype. Values are used as they are (a uint8
            image stays on the 0..255 scale); nothing is clipped or rounded.
        scale: one factor for both axes, or ``(scale_rows, scale_cols)``. When only ``scale`` is given the
            output size is ``ceil(h * scale) x ceil(w * scale)``.
        output_shape: ``(out_h, out_w)``. When only ``output_shape`` is given the per-axis scale is
            ``out / in``. When both are given (as MATLAB allows) the kernel uses ``scale`` and the output
            has ``output_shape``.
        antialias: stretch the kernel when downscaling (MATLAB's default ``'Antialiasing', true``).

    Returns:
        float64 array of shape ``(out_h, out_w)`` or ``(out_h, out_w, C)``.
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"imresize expects an HxW or HxWxC array, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"imresize got an empty image of shape {arr.shape}")
    if scale is None and output_shape is None:
        raise ValueError("imresize needs scale or output_shape")
    arr = arr.astype(np.float64, copy=False)
    in_h, in_w = arr.shape[:2]

    if scale is not None:
        sy, sx = _pair(scale, "scale")
        if not (sy > 0 and sx > 0 and math.isfinite(sy) and math.isfinite(sx)):
            raise ValueError(f"scale must be positive and finite, got {scale!r}")
    if output_shape is not None:
        shape = tuple(int(v) for v in output_shape)
        if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"output_shape must be two positive integers (h, w), got {output_shape!r}")
        out_h, out_w = shape
        if scale is None:
            sy, sx = out_h / in_h, out_w / in_w
    else:
        out_h, out_w = int(math.ceil(in_h * sy)), int(math.ceil(in_w * sx))

    # MATLAB: [~, order] = sort(scale) -- stable, so rows first on a tie.
    order = (0, 1) if sy <= sx else (1, 0)
    out = arr
    for axis in order:
        if axis == 0:
            matrix = _weight_matrix(in_h, out_h, sy, antialias)
            out = np.einsum("oh,hw...->ow...", matrix, out, optimize=True)
        else:
            matrix = _weight_matrix(in_w, out_w, sx, antialias)
            out = np.einsum("ow,hw...->ho...", matrix, out, optimize=True)
    return np.ascontiguousarray(out, dtype=np.float64)


def modcrop(img: np.ndarray, s: int) -> np.ndarray:
    """Keep the first ``h - h mod s`` rows and ``w - w mod s`` columns (BasicSR ``mod_crop``).

    Removes the remainder at the bottom and right. Works on HxW and HxWxC arrays; returns a view.
    """
    s = int(s)
    if s < 1:
        raise ValueError(f"modcrop factor must be a positive integer, got {s}")
    arr = np.asarray(img)
    h, w = arr.shape[:2]
    return arr[: h - h % s, : w - w % s, ...]


def quantize_uint8(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and round half up to uint8 (MATLAB ``im2uint8``/``imwrite`` rounding)."""
    arr = np.asarray(img, dtype=np.float64)
    return np.floor(np.clip(arr, 0.0, 255.0) + 0.5).astype(np.uint8)


def _check_scale(s: int) -> int:
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or int(s) < 1:
        raise ValueError(f"scale must be a positive integer, got {s!r}")
    return int(s)


def bicubic_downscale(hr: np.ndarray, s: int) -> np.ndarray:
    """Make an LR image the way benchmark LR is made (evaluation.md §4).

    Modcrop ``hr`` to a multiple of ``s``, resize by ``1/s`` with MATLAB-style antialiased bicubic in
    float64, then round once to uint8. ``hr`` is a uint8 (0..255) HxW or HxWxC image; the result has shape
    ``(h // s, w // s[, C])``.
    """
    s = _check_scale(s)
    arr = np.asarray(hr)
    if arr.ndim not in (2, 3):
        raise ImageError(f"cannot downscale image of shape {arr.shape}: expected HxW or HxWxC")
    h, w = arr.shape[:2]
    if h < s or w < s:
        raise ImageError(f"cannot downscale a {h}x{w} image by x{s}: it is smaller than the scale")
    cropped = modcrop(arr, s)
    lr = imresize(cropped, scale=1.0 / s, output_shape=(h // s, w // s))
    return quantize_uint8(lr)


def bicubic_upscale(lr: np.ndarray, s: int) -> np.ndarray:
    """MATLAB ``imresize(lr, s, 'bicubic')``: the "Bicubic" baseline of SR tables. float64, unrounded."""
    s = _check_scale(s)
    arr = np.asarray(lr)
    h, w = arr.shape[:2]
    return imresize(arr, scale=float(s), output_shape=(h * s, w * s))

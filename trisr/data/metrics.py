"""PSNR and SSIM the way published SISR tables compute them (evaluation.md §1-§4, §6).

Scale convention (all functions of this module):

* Input images are RGB ``H x W x 3`` arrays on the **0..255 scale**, uint8 or float (a float image is
  *not* assumed to be in [0, 1]; pass ``input_range=1.0`` to :func:`rgb_to_y` for that). An ``H x W``
  array is a grey image, i.e. R = G = B.
* Y is ITU-R BT.601 studio range, as MATLAB ``rgb2ycbcr`` computes it, returned as unrounded float64 on the
  0..255 scale, so Y lies in [16, 235]: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``.
* PSNR uses a peak of 255 and the MSE over the border-cropped plane(s); SSIM is ``ssim_index`` (11x11
  Gaussian, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, valid region, mean of the map).

Modes: ``"y"`` (default, studio Y), ``"rgb"`` (all three channels; SSIM is the mean over channels) and
``"y_full"`` (full-range luma ``0.299 R + 0.587 G + 0.114 B``, as OpenCV/PIL/piq use; its PSNR is exactly
``20*log10(255/219) = 1.32192`` dB lower than ``"y"``). Only ``"y"`` with ``crop = scale`` matches papers.
"""

from __future__ import annotations

import math

import numpy as np

from trisr.errors import ImageError

__all__ = [
    "MODES",
    "FULL_RANGE_OFFSET_DB",
    "rgb_to_y",
    "rgb_to_y_full",
    "psnr_db",
    "ssim",
    "evaluate_pair",
]

MODES = ("y", "rgb", "y_full")

#: PSNR("y") - PSNR("y_full") for any pair of images: studio Y = 16 + (219/255) * full-range luma.
FULL_RANGE_OFFSET_DB = 20.0 * math.log10(255.0 / 219.0)

_Y_COEFFS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_FULL_COEFFS = np.array([0.299, 0.587, 0.114], dtype=np.float64)

_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255.0) ** 2
_SSIM_C2 = (0.03 * 255.0) ** 2


def _as_rgb_float(img: np.ndarray, what: str = "image") -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ImageError(f"{what} has shape {tuple(np.shape(img))}; expected HxWx3 RGB or HxW grey")
    arr = arr.astype(np.float64, copy=False)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


def rgb_to_y(img: np.ndarray, input_range: float = 255.0) -> np.ndarray:
    """BT.601 studio-range Y (MATLAB ``rgb2ycbcr``), float64, unrounded, on the 0..255 scale.

    Args:
        img: ``H x W x 3`` RGB (or ``H x W`` grey), uint8 or float. Pixel values are divided by
            ``input_range``: the default 255 means uint8-style values 0..255 for any dtype; use
            ``input_range=1.0`` for float images in [0, 1].

    Returns:
        ``H x W`` float64 array with Y in [16, 235] (white -> 235, black -> 16).
    """
    rgb = _as_rgb_float(img)
    return 16.0 + rgb @ _Y_COEFFS / float(input_range)


def rgb_to_y_full(img: np.ndarray, input_range: float = 255.0) -> np.ndarray:
    """Full-range luma ``0.299 R + 0.587 G + 0.114 B`` on the 0..255 scale (OpenCV/PIL convention).

    Not the paper convention; provided for the labelled ``"y_full"`` metric mode only.
    """
    rgb = _as_rgb_float(img)
    return rgb @ _Y_FULL_COEFFS * (255.0 / float(input_range))


def _planes(sr: np.ndarray, hr: np.ndarray, crop: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert both images for ``mode`` and crop ``crop`` pixels off every side. Returns HxWxK float64."""
    if mode not in MODES:
        raise ValueError(f"unknown metric mode {mode!r}; expected one of {', '.join(MODES)}")
    if isinstance(crop, bool) or int(crop) != crop or crop < 0:
        raise ValueError(f"crop must be a non-negative integer, got {crop!r}")
    crop = int(crop)
    a = _as_rgb_float(sr, "SR image")
    b = _as_rgb_float(hr, "HR image")
    if a.shape != b.shape:
        raise ImageError(
            f"SR image is {a.shape[0]}x{a.shape[1]} but HR image is {b.shape[0]}x{b.shape[1]}; "
            "metrics need images of the same size"
        )
    h, w = a.shape[:2]
    if 2 * crop >= h or 2 * crop >= w:
        raise ImageError(f"cannot crop {crop} pixels from every side of a {h}x{w} image")
    if crop:
        a = a[crop:-crop, crop:-crop]
        b = b[crop:-crop, crop:-crop]
    if mode == "y":
        return rgb_to_y(a)[:, :, None], rgb_to_y(b)[:, :, None]
    if mode == "y_full":
        return rgb_to_y_full(a)[:, :, None], rgb_to_y_full(b)[:, :, None]
    return a, b


def psnr_db(
    sr: np.ndarray,
    hr: np.ndarray,
    crop: int = 0,
    mode: str = "y",
    cap: float | None = None,
) -> float:
    """PSNR in dB with peak 255: ``10 log10(255^2 / MSE)`` over the cropped plane(s).

    Args:
        sr, hr: same-size RGB images on the 0..255 scale (see module docstring).
        crop: pixels removed from every side before measuring (papers: ``crop = scale``).
        mode: ``"y"`` (default), ``"rgb"`` (MSE over all three channels) or ``"y_full"``.
        cap: if given, the result is ``min(psnr, cap)``; identical images then give ``cap``.

    Returns:
        the PSNR as a float; ``inf`` for identical images when ``cap`` is None.
    """
    a, b = _planes(sr, hr, crop, mode)
    mse = float(np.mean((a - b) ** 2))
    value = math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)
    if cap is not None:
        value = min(value, float(cap))
    return value


def _gaussian_window_1d(size: int = _SSIM_SIZE, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Correlate an HxW plane with the separable window ``g (x) g``, keeping only the valid region."""
    n = g.size
    h, w = img.shape
    rows = np.zeros((h - n + 1, w), dtype=np.float64)
    for k in range(n):
        rows += g[k] * img[k : k + h - n + 1, :]
    out = np.zeros((h - n + 1, w - n + 1), dtype=np.float64)
    for k in range(n):
        out += g[k] * rows[:, k : k + w - n + 1]
    return out


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """``ssim_index`` on one float64 plane (0..255 scale); mean of the valid-region SSIM map."""
    g = _gaussian_window_1d()
    mu_a = _filter_valid(a, g)
    mu_b = _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2.0 * mu_a * mu_b + _SSIM_C1) * (2.0 * cov + _SSIM_C2)
    den = (mu_a * mu_a + mu_b * mu_b + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    return float(np.mean(num / den))


def ssim(sr: np.ndarray, hr: np.ndarray, crop: int = 0, mode: str = "y") -> float:
    """SSIM per Wang et al. 2004 / ``ssim_index`` (evaluation.md §6), computed in float64.

    11x11 Gaussian window (sigma 1.5, normalised), C1 = (0.01*255)^2, C2 = (0.03*255)^2, population
    (co)variances ``E[xy] - E[x]E[y]``, valid region only (5 pixels dropped per side of the filtered maps),
    mean of the map. ``mode="rgb"`` averages the per-channel scores. The cropped image must be at least
    11x11.
    """
    a, b = _planes(sr, hr, crop, mode)
    if a.shape[0] < _SSIM_SIZE or a.shape[1] < _SSIM_SIZE:
        raise ImageError(
            f"SSIM needs at least {_SSIM_SIZE}x{_SSIM_SIZE} pixels after cropping, got {a.shape[0]}x{a.shape[1]}"
        )
    scores = [_ssim_plane(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]
    return float(np.mean(scores))


def evaluate_pair(
    sr: np.ndarray,
    hr: np.ndarray,
    scale: int,
    crop: int | None = None,
    mode: str = "y",
    cap: float | None = None,
) -> dict:
    """Score one quantised SR output against its ground truth, the way papers do.

    ``sr`` must be uint8 (quantise the network output first: round, then clip). ``hr`` (uint8) is cropped
    to ``sr``'s size from the top-left (``hr[:sr_h, :sr_w]``, evaluation.md §4), so an un-modcropped HR
    works; an SR output larger than the HR is an error. ``crop`` defaults to ``scale``.

    Returns:
        ``{"psnr_db", "ssim", "scale", "crop", "mode", "peak": 255, "quantized_uint8": True}``.
    """
    sr_arr = np.asarray(sr)
    hr_arr = np.asarray(hr)
    for what, arr in (("SR image", sr_arr), ("HR image", hr_arr)):
        if arr.dtype != np.uint8:
            raise ImageError(f"{what} must be uint8 (round and clip before scoring), got dtype {arr.dtype}")
        if arr.ndim not in (2, 3):
            raise ImageError(f"{what} has shape {arr.shape}; expected HxWx3 RGB or HxW grey")
    if crop is None:
        crop = int(scale)
    sh, sw = sr_arr.shape[:2]
    hh, hw = hr_arr.shape[:2]
    if sh > hh or sw > hw:
        raise ImageError(
            f"SR output is {sh}x{sw} but the HR image is only {hh}x{hw}; "
            "the SR output must not be larger than its ground truth"
        )
    hr_arr = hr_arr[:sh, :sw]
    return {
        "psnr_db": psnr_db(sr_arr, hr_arr, crop=crop, mode=mode, cap=cap),
        "ssim": ssim(sr_arr, hr_arr, crop=crop, mode=mode),
        "scale": int(scale),
        "crop": int(crop),
        "mode": mode,
        "peak": 255,
        "quantized_uint8": True,
    }

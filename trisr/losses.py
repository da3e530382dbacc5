"""Training losses beyond L1: SSIM as a differentiable loss (HiNAS's L1 + 0.6 * log-SSIM option, issue 11).

SSIM here is the Wang et al. definition with an 11 x 11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, population
(co)variances, computed per channel over the valid region and averaged: the same value as
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=...)`` (tests/test_losses.py). It is a training signal on RGB patches, not the evaluation
metric (that is SSIM on Y with MATLAB conventions, trisr/data/metrics.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Weight of the log-SSIM term in HiNAS's loss (peers.md §1.2: "L1 + 0.6·log-SSIM").
LOG_SSIM_WEIGHT = 0.6
#: SSIM is clamped here before the log: early in training a patch's SSIM can be ~0 or negative.
SSIM_FLOOR = 1e-4


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of two (N, C, H, W) batches (per channel, valid region, then averaged)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim needs images of at least {window}x{window}, got {x.shape[-2]}x{x.shape[-1]}")
    c = x.shape[1]
    w = _gaussian_window(window, sigma, c, x)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


def l1_log_ssim(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """HiNAS's search loss: L1 + 0.6 * (-log SSIM); both terms are 0 for a perfect reconstruction."""
    return F.l1_loss(sr, hr) - LOG_SSIM_WEIGHT * torch.log(ssim(sr, hr).clamp_min(SSIM_FLOOR))


#: Losses by name (RunConfig.search_loss; trisr.search.config.SEARCH_LOSSES lists the same names).
LOSSES = {"l1": F.l1_loss, "l1+logssim": l1_log_ssim}

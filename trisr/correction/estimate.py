"""Blind estimate of the downsampling kernel of one LR image: cross-scale spectral self-similarity.

Natural photos are roughly scale-invariant: their power spectrum falls as ``|w|^-alpha`` whatever the scale. If
``y = S*(k) x`` with a Gaussian ``k`` (covariance ``sigma^2 I`` in HR px), then (ignoring aliasing) the LR
spectrum is ``|K(w/s)|^2 |w|^-alpha``. Degrading ``y`` once more by a factor ``p`` with a known probe Gaussian
``g`` (``sigma_p``, in LR px) gives ``y2`` with ``|G(w/p)|^2 |K(w/(s p))|^2 |w|^-alpha``. At equal normalised
frequency the log-ratio of the two spectra no longer depends on the image's slope ``alpha``:

    log P_y2(w) - log P_y(w) = c + |w|^2 [ sigma^2 (1 - 1/p^2) / s^2 - sigma_p^2 / p^2 ],

so a least-squares line of the log-ratio against ``|w|^2`` over a mid band gives ``sigma`` in closed form. Spectra
are Welch averages of Hann-windowed patches of the luminance with the 8-bit quantisation floor removed.

Why not the authors' estimator (iterative minimisation of ``|| S*(k) f(h_k y) - y ||``): measured on the
development photos with the quick network, that consistency loss is flattest near the network's own training
kernel and picked sigma 0.9-1.2 HR px for true kernels of 0.8-2.0 px (docs/correction.md): a network trained on
bicubic LR is close to consistent with bicubic whatever it is given. The spectral estimate needs no network
pass, runs in milliseconds, and tracked the true width on natural photos; its limits are stated in the docs
(isotropic Gaussian model; scenes that are blurry in themselves — microscopy — read as a wider kernel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trisr.correction.kernels import MAX_SIGMA_PX, KernelError, KernelSpec, degrade, gaussian_kernel

__all__ = ["KernelEstimate", "estimate_kernel", "PROBE_SCALE", "PROBE_SIGMA", "BAND", "SIGMA2_BIAS"]

#: The probe degradation: factor 2, Gaussian of 1 LR px.
PROBE_SCALE = 2
PROBE_SIGMA = 1.0
#: Fitted band of normalised radial frequency (fractions of Nyquist): below it the patch window dominates,
#: above it aliasing and the quantisation floor.
BAND = (0.15, 0.6)
#: Bias of the raw estimate in sigma^2, in units of (s/2)^2 HR px^2: the median over the embedded *training*
#: photos of Gaussians 0.8-2.0 px (x2) and 1.6-4.0 px (x4) (docs/correction.md); other scales take the median
#: of both. Held-out photos never set it.
SIGMA2_BIAS = {2: 0.53, 4: 0.95}
SIGMA2_BIAS_OTHER = 0.73
#: Estimates at most this wide (units of s/2 HR px) give no correction: the Gaussian closest to the bicubic
#: kernel itself (L1 over the taps) is 0.73 px at x2, scaled here by s/2 (1.46 px at x4, where the closest is
#: 1.58 px: a little lower, erring towards correcting); a kernel no wider cannot be told from bicubic
#: by this estimate, and a correction there could only blur (measured on the development photos,
#: docs/correction.md).
SNAP_SIGMA = 0.73
#: Smallest sigma reported (HR px at x2, scaled with s): below it the estimate is noise.
MIN_SIGMA = 0.3


@dataclass(frozen=True)
class KernelEstimate:
    sigma_px: float  # the estimated Gaussian's standard deviation, HR px
    raw_sigma_px: float  # before the bias correction
    patch: int  # Welch patch size used
    fit_r2: float  # how well the log-ratio follows a line in |w|^2

    snap_px: float = 0.0  # estimates up to this width mean "bicubic": no correction

    @property
    def spec(self) -> KernelSpec:
        if self.sigma_px <= self.snap_px:
            return KernelSpec("bicubic")
        return KernelSpec("gaussian", (round(self.sigma_px, 4),))

    def to_dict(self) -> dict:
        return {"sigma_px": self.sigma_px, "raw_sigma_px": self.raw_sigma_px, "patch": self.patch,
                "fit_r2": self.fit_r2, "snap_px": self.snap_px, "spec": self.spec.describe(), "method": "cross-scale spectral ratio"}


def _luma(img: np.ndarray) -> np.ndarray:
    x = np.asarray(img, dtype=np.float64) / (255.0 if np.asarray(img).dtype == np.uint8 else 1.0)
    if x.ndim == 3:
        x = x[..., :3] @ np.array([0.299, 0.587, 0.114])
    return x


def _welch(img: np.ndarray, m: int) -> np.ndarray:
    step = max(1, m // 4)
    win = np.outer(np.hanning(m), np.hanning(m))
    h, w = img.shape
    patches = np.lib.stride_tricks.sliding_window_view(img, (m, m))[::step, ::step].reshape(-1, m, m)
    patches = (patches - patches.mean(axis=(1, 2), keepdims=True)) * win
    return (np.abs(np.fft.fft2(patches)) ** 2).mean(axis=0)


def estimate_kernel(lr: np.ndarray, scale: int, snap: float = SNAP_SIGMA) -> KernelEstimate:
    """Estimate an isotropic Gaussian downsampling kernel (HR px) from an LR image (uint8 or float in [0, 1])."""
    y = _luma(lr)
    small = min(y.shape) // PROBE_SCALE
    m = 32 if small >= 64 else 16 if small >= 24 else 0
    if not m:
        raise KernelError(f"--kernel estimate needs an LR image of at least {24 * PROBE_SCALE} px a side, got {y.shape[1]}x{y.shape[0]}")
    y2 = degrade(y, gaussian_kernel(PROBE_SCALE, PROBE_SIGMA), PROBE_SCALE)
    win = np.hanning(m)
    floor = (1.0 / 255.0) ** 2 / 12.0 * (win**2).sum() ** 2  # white 8-bit rounding noise through the window
    py = np.maximum(_welch(y, m) - floor, 1e-14)
    py2 = np.maximum(_welch(y2, m) - floor, 1e-14)
    w = 2 * np.pi * np.fft.fftfreq(m)
    r2 = w[:, None] ** 2 + w[None, :] ** 2
    band = (r2 > (BAND[0] * np.pi) ** 2) & (r2 < (BAND[1] * np.pi) ** 2)
    ratio = np.log(py2[band]) - np.log(py[band])
    a = np.stack([np.ones(band.sum()), r2[band]], axis=1)
    coef, *_ = np.linalg.lstsq(a, ratio, rcond=None)
    fit = a @ coef
    fit_r2 = 1.0 - float(((ratio - fit) ** 2).sum() / max(((ratio - ratio.mean()) ** 2).sum(), 1e-30))
    p2 = PROBE_SCALE**2
    var = (coef[1] + PROBE_SIGMA**2 / p2) * scale**2 / (1.0 - 1.0 / p2)
    raw = float(np.sqrt(max(var, 0.0)))
    unit2 = (scale / 2.0) ** 2
    bias = SIGMA2_BIAS.get(scale, SIGMA2_BIAS_OTHER)
    sigma = float(np.sqrt(max(var - bias * unit2, (MIN_SIGMA**2) * unit2)))
    return KernelEstimate(min(sigma, MAX_SIGMA_PX), raw, m, fit_r2, snap * scale / 2.0)

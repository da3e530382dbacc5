"""The correction filter of Abu Hussein, Tirer and Giryes (CVPR 2020) for a known downsampling kernel.

A network trained on bicubic LR ``y_b = S*(b) x`` is given ``y = S*(k) x`` (blur with ``k``, sample; see
:mod:`trisr.correction.kernels`). The correction is a linear filter ``h`` on the LR grid with ``h * y ~ y_b``.
Generalised sampling gives it in closed form once ``x`` is assumed to lie in a subspace the LR image determines:

* ``assume="kernel"``: ``x`` is the minimum-norm image consistent with ``y`` (``x`` in the range of the
  adjoint of ``S*(k)``), so ``y_b = (S* b^T k S)(S* k^T k S)^-1 y``. In the LR Fourier domain
  ``H = C_bk / C_kk``, where ``C_pq`` is the DTFT of ``c_pq[m] = sum_t p(t) q(t + s m)``: the cross-correlation of
  the two HR kernels sampled at multiples of ``s``. ``C_kk >= 0`` (an aliased power spectrum).
* ``assume="bicubic"``: ``x`` lies in the range of bicubic interpolation (the choice of the authors' code), so
  ``H = C_bb / C_kb``. The default: it came out ahead on the development photos (docs/correction.md).

Both are Tikhonov-regularised where the denominator's spectrum vanishes (wide kernels): ``H = N conj(D) /
(|D|^2 + eps)``, with ``N`` and ``D`` scaled so that ``D(0) = 1`` (``eps`` is relative to the DC response).
The filter is then taken to the spatial domain and cut to the smallest odd square that keeps all but
``tail`` of its L1 mass, and renormalised to sum 1 (brightness kept), so the same finite filter runs in
``trisr upscale``, ``trisr eval`` and, folded in as a depthwise convolution, in exported artifacts. Borders:
the edge pixel repeated (``torch`` ``replicate``, ONNX ``Pad(mode=edge)``): +0.01 to +0.035 dB over reflection on
the development photos, wider kernels gaining most (benchmarks.correction_variants). Colour: the same filter
on each RGB channel; filtering the luminance only came within 0.01 dB (same script), so the simpler one stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trisr.correction.kernels import KernelError, KernelSpec, bicubic_kernel, kernel_array

__all__ = ["CorrectionFilter", "correction_filter", "closed_form", "ASSUMPTIONS", "DEFAULT_ASSUME", "DEFAULT_EPS",
           "DEFAULT_TAIL"]

#: Regularisation relative to the DC response; chosen on the development photos (docs/correction.md): 1e-4 won
#: by +0.9 dB summed over the x4 kernels and lost 0.17 dB summed over the x2 ones against 1e-3; 1e-2 lost both.
DEFAULT_EPS = 1e-4
#: L1 mass of the spatial filter allowed outside its cut (truncation cost measured in docs/correction.md).
DEFAULT_TAIL = 2e-3
#: LR DFT grid for the closed form (much larger than any filter it produces, so no wrap-around).
FFT_SIZE = 128
ASSUMPTIONS = ("kernel", "bicubic")
#: Chosen on the development photos (docs/correction.md).
DEFAULT_ASSUME = "bicubic"
#: Largest filter kept (LR px); a filter wider than this is cut there and its tail reported.
MAX_SIZE = 61


def _sampled_xcorr(p: np.ndarray, q: np.ndarray, scale: int) -> np.ndarray:
    """``c[m] = sum_t p(t) q(t + s m)`` for 2-D kernels centred on the same HR position, on an odd LR grid centred
    at ``m = 0``."""
    from scipy.signal import correlate

    n = max(p.shape[0], q.shape[0])
    P = _centre_pad(p, n)
    Q = _centre_pad(q, n)
    full = correlate(Q, P, mode="full", method="direct")  # index n-1 is zero shift; full[d] = sum P(t) Q(t + d - n + 1)
    zero = n - 1
    r = zero // scale
    idx = zero + scale * np.arange(-r, r + 1)
    return full[np.ix_(idx, idx)]


def _centre_pad(k: np.ndarray, n: int) -> np.ndarray:
    d = n - k.shape[0]
    if d % 2:
        raise KernelError("kernels of different parity cannot be compared")
    return np.pad(k, d // 2)


def _dtft(c: np.ndarray, size: int) -> np.ndarray:
    """DFT on a ``size x size`` grid of a centred odd square array (centre -> index 0, circularly)."""
    g = np.zeros((size, size))
    r = c.shape[0] // 2
    g[: c.shape[0], : c.shape[1]] = c
    return np.fft.fft2(np.roll(g, (-r, -r), axis=(0, 1)))


def closed_form(k: np.ndarray, scale: int, eps: float = DEFAULT_EPS, assume: str = DEFAULT_ASSUME, size: int = FFT_SIZE) -> np.ndarray:
    """The untruncated correction filter (``size x size`` LR taps, centred at ``size // 2``) for the 2-D HR kernel
    ``k``."""
    if assume not in ASSUMPTIONS:
        raise KernelError(f"unknown assumption {assume!r}; choose {', '.join(ASSUMPTIONS)}")
    if not eps >= 0:
        raise KernelError(f"eps must be >= 0, got {eps}")
    b = bicubic_kernel(scale)
    num, den = (_sampled_xcorr(b, k, scale), _sampled_xcorr(k, k, scale)) if assume == "kernel" else (
        _sampled_xcorr(b, b, scale), _sampled_xcorr(k, b, scale))
    N, D = _dtft(num, size), _dtft(den, size)
    d0 = D[0, 0].real
    N, D = N / d0, D / d0
    H = N * np.conj(D) / (np.abs(D) ** 2 + eps)
    h = np.fft.ifft2(H).real
    return np.roll(h, (size // 2, size // 2), axis=(0, 1))


def _cut(h: np.ndarray, tail: float) -> tuple[np.ndarray, float]:
    """Smallest odd centred square holding all but ``tail`` of ``h``'s L1 mass (at most MAX_SIZE)."""
    c = h.shape[0] // 2
    total = np.abs(h).sum()
    for r in range(0, MAX_SIZE // 2 + 1):
        part = h[c - r : c + r + 1, c - r : c + r + 1]
        lost = 1.0 - np.abs(part).sum() / total
        if lost <= tail:
            break
    return part, float(lost)


@dataclass(frozen=True)
class CorrectionFilter:
    """A finite LR-domain correction filter (odd square, sums to 1) and where it came from."""

    taps: np.ndarray = field(repr=False)  # float64 n x n correlation weights (the closed form, flipped)
    scale: int
    kernel: KernelSpec
    eps: float
    assume: str
    tail_l1: float  # L1 mass cut away

    @property
    def size(self) -> int:
        return int(self.taps.shape[0])

    @property
    def is_identity(self) -> bool:
        return self.size == 1 and abs(self.taps[0, 0] - 1.0) < 1e-12

    @property
    def taps_per_pixel(self) -> int:
        """Multiply-adds per LR pixel and channel."""
        return self.size**2

    def to_dict(self) -> dict:
        return {
            "kernel": self.kernel.to_dict(),
            "scale": self.scale,
            "eps": self.eps,
            "assume": self.assume,
            "size": self.size,
            "taps_per_pixel": self.taps_per_pixel,
            "tail_l1": self.tail_l1,
            "taps": self.taps.tolist(),
        }

    # ------------------------------------------------------------------ applying it
    def apply_nchw(self, x: np.ndarray) -> np.ndarray:
        """Filter a float 1x3xHxW array (values in [0, 1]); edge pixels repeated at the borders; no clipping."""
        import torch

        return self.torch_apply(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def torch_apply(self, x):
        import torch
        import torch.nn.functional as F

        if self.is_identity:
            return x
        p = self.size // 2
        if min(x.shape[-2:]) <= p:
            raise KernelError(f"the {self.size}x{self.size} correction filter needs an LR image larger than {p} px")
        c = x.shape[1]
        w = torch.as_tensor(self.taps, dtype=x.dtype, device=x.device)[None, None].expand(c, 1, self.size, self.size)
        return F.conv2d(F.pad(x, (p, p, p, p), mode="replicate"), w, groups=c)


def correction_filter(
    spec: KernelSpec, scale: int, eps: float | None = None, assume: str = DEFAULT_ASSUME, tail: float | None = None,
    kernel: np.ndarray | None = None,
) -> CorrectionFilter:
    """The finite correction filter for ``spec`` at ``scale``. ``kernel`` overrides the spec's array (the blind
    estimate passes its own). Bicubic gives the identity (1x1) filter: the input is left untouched.

    Always the 2-D closed form, also for separable kernels: the per-axis (separable) form, 2n instead of n^2
    taps, was measured 0.6-0.8 dB worse on the widest kernels at its best eps (docs/correction.md): Tikhonov per
    axis under-damps the diagonal frequencies."""
    eps = DEFAULT_EPS if eps is None else eps
    tail = DEFAULT_TAIL if tail is None else tail
    if spec.is_bicubic and kernel is None:
        return CorrectionFilter(np.ones((1, 1)), scale, spec, eps, assume, 0.0)
    k = kernel_array(spec, scale) if kernel is None else kernel
    taps, lost = _cut(closed_form(k, scale, eps, assume), tail)
    # The closed form is a convolution; torch/ONNX convolutions correlate: store it flipped.
    return CorrectionFilter(np.ascontiguousarray((taps / taps.sum())[::-1, ::-1]), scale, spec, eps, assume, lost)

"""Downsampling kernels on the HR pixel grid, and the exact "blur then sample" degradation they define.

Geometry (the one MATLAB ``imresize`` uses, so a bicubic kernel here reproduces :func:`trisr.data.resize.imresize`
away from the borders): LR pixel ``i`` (0-based) sits at HR position ``s*i + (s-1)/2``. A kernel is an
``n x n`` float64 array whose centre, array index ``(n-1)/2``, lies on that position, so ``n`` has the parity of
``s`` (even ``s``: the centre falls between HR pixels). The degradation is

    y[i, j] = sum_{u,v} k[u, v] * x[s*i + a + u, s*j + a + v],   a = (s-1)/2 - (n-1)/2,

with the image mirrored at its borders the way ``imresize`` mirrors it (edge sample repeated).

Kernel specs (``--kernel`` / ``--degrade``), one table below carries every kind:

* ``bicubic``: MATLAB's antialiased bicubic at the network's scale (what the networks were trained on);
* ``gaussian:SIGMA``: isotropic Gaussian, SIGMA in HR pixels, centred on the LR pixel's position;
* ``aniso:S1,S2,THETA``: anisotropic Gaussian, standard deviations S1, S2 (HR px) along axes rotated by THETA
  degrees;
* ``FILE.npy``: a square, odd-sized, finite, non-negative-sum 2-D array, centred on its middle pixel. For an even
  scale that pixel cannot sit on the LR position; it sits on the HR pixel just before it (``s*i + s/2 - 1``: for
  x2 the top-left pixel of each 2x2 block, the ``x[::2]`` convention of KernelGAN/DIV2KRK);
* ``estimate`` (where allowed): estimated from the image (:mod:`trisr.correction.estimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from trisr.errors import TrisrError

__all__ = ["KernelSpec", "KernelError", "parse_kernel", "parse_kernels", "kernel_array", "bicubic_kernel", "gaussian_kernel", "degrade", "KERNEL_HELP"]

#: Gaussians are cut at this many standard deviations (the mass beyond is < 1e-6 of the total).
GAUSS_RADIUS_SIGMAS = 4.5
#: Largest kernel file accepted (HR px a side).
MAX_FILE_SIZE = 255
#: Widest Gaussian accepted, in HR pixels (a wider one leaves nothing of the image at any scale here).
MAX_SIGMA_PX = 16.0


class KernelError(TrisrError):
    """A kernel spec or kernel file that cannot be used."""


@dataclass(frozen=True)
class KernelSpec:
    """A parsed ``--kernel``/``--degrade`` value. ``params`` are in HR pixels (and degrees for ``aniso``)."""

    kind: str  # a key of KINDS
    params: tuple[float, ...] = ()
    path: str | None = None

    def describe(self) -> str:
        if self.path:
            return str(self.path)
        if not self.params:
            return self.kind
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"

    def slug(self) -> str:
        """For file names: ``gaussian1.6``, ``aniso2,1,30``, a file's stem."""
        import re

        text = Path(self.path).stem if self.path else self.describe().replace(":", "")
        return re.sub(r"[^A-Za-z0-9.,_-]+", "", text)

    @property
    def is_bicubic(self) -> bool:
        return KINDS[self.kind].identity

    @property
    def is_estimate(self) -> bool:
        return KINDS[self.kind].blind

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": list(self.params), "path": self.path, "spec": self.describe()}


# --------------------------------------------------------------------------- kernels on the HR grid


def _grid(scale: int, half_extent: float) -> np.ndarray:
    """Tap offsets from the LR pixel's HR position covering ``|t| <= half_extent``, symmetric about 0, on the
    grid of the parity of ``scale`` (integers for odd scales, half-integers for even ones)."""
    if scale % 2:
        r = int(math.ceil(half_extent))
        return np.arange(-r, r + 1, dtype=np.float64)
    r = max(1, int(math.ceil(half_extent + 0.5)))
    return np.arange(-r + 0.5, r, 1.0)


def bicubic_kernel(scale: int) -> np.ndarray:
    """MATLAB's antialiased downscaling bicubic (Keys, a = -0.5, stretched by ``scale``), as a 2-D kernel."""
    from trisr.data.resize import _cubic

    t = _grid(scale, 2.0 * scale)
    w = _cubic(t / scale)
    while w[0] == 0 and w[-1] == 0:  # the grid reaches the kernel's zeros at |t| = 2s: drop them
        t, w = t[1:-1], w[1:-1]
    w = w / w.sum()
    return np.outer(w, w)


def gaussian_kernel(scale: int, sigma1: float, sigma2: float | None = None, theta_deg: float = 0.0) -> np.ndarray:
    """(An)isotropic Gaussian centred on the LR pixel's HR position; sums to 1."""
    sigma2 = sigma1 if sigma2 is None else sigma2
    t = _grid(scale, GAUSS_RADIUS_SIGMAS * max(sigma1, sigma2))
    yy, xx = np.meshgrid(t, t, indexing="ij")
    th = math.radians(theta_deg)
    c, s = math.cos(th), math.sin(th)
    u = c * xx + s * yy
    v = -s * xx + c * yy
    k = np.exp(-0.5 * ((u / sigma1) ** 2 + (v / sigma2) ** 2))
    return k / k.sum()


def _file_kernel(path: str, scale: int) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise KernelError(f"kernel file {p} does not exist")
    try:
        k = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line
        raise KernelError(f"cannot read kernel file {p}: {type(e).__name__}: {e}") from None
    k = np.asarray(k, dtype=np.float64) if np.issubdtype(np.asarray(k).dtype, np.number) else None
    if k is None or k.ndim != 2:
        raise KernelError(f"kernel file {p} must hold a 2-D numeric array")
    if k.shape[0] != k.shape[1]:
        raise KernelError(f"kernel file {p} is {k.shape[0]}x{k.shape[1]}: a kernel must be square")
    if k.shape[0] > MAX_FILE_SIZE:
        raise KernelError(f"kernel file {p} is {k.shape[0]}x{k.shape[1]}: larger than {MAX_FILE_SIZE}x{MAX_FILE_SIZE} HR px")
    if k.shape[0] % 2 == 0:
        raise KernelError(f"kernel file {p} is {k.shape[0]}x{k.shape[1]}: a kernel must have an odd size (a centre pixel)")
    if not np.all(np.isfinite(k)):
        raise KernelError(f"kernel file {p} holds NaN or infinite values")
    total = k.sum()
    if not total > 1e-12:
        raise KernelError(f"kernel file {p} sums to {total:g}: a downsampling kernel must have a positive sum")
    k = k / total
    if scale % 2 == 0:  # centre pixel -> the HR pixel just before the LR position (see the module docstring)
        k = np.pad(k, ((0, 1), (0, 1)))
    return k


@dataclass(frozen=True)
class KernelKind:
    """One row of the kernel table: how a spec is parsed and which kernel it builds."""

    name: str
    n_params: int  # numbers after ``name:``
    build: Callable[[KernelSpec, int], np.ndarray] | None
    syntax: str
    identity: bool = False  # the networks' own training kernel: no correction
    blind: bool = False  # estimated from the image
    from_path: bool = False  # given as a .npy path, not by name


def _check_sigmas(spec: KernelSpec) -> None:
    sig = spec.params[:2]
    if any(not math.isfinite(v) or v <= 0 for v in sig):
        raise KernelError(f"--kernel {spec.describe()}: standard deviations must be positive numbers")
    if any(v > MAX_SIGMA_PX for v in sig):
        raise KernelError(f"--kernel {spec.describe()}: standard deviation above {MAX_SIGMA_PX:g} HR px")
    if spec.kind == "aniso" and not math.isfinite(spec.params[2]):
        raise KernelError(f"--kernel {spec.describe()}: the angle must be a finite number of degrees")


KINDS: dict[str, KernelKind] = {
    k.name: k
    for k in (
        KernelKind("bicubic", 0, lambda spec, s: bicubic_kernel(s), "bicubic", identity=True),
        KernelKind("gaussian", 1, lambda spec, s: gaussian_kernel(s, spec.params[0]), "gaussian:SIGMA"),
        KernelKind("aniso", 3, lambda spec, s: gaussian_kernel(s, *spec.params), "aniso:S1,S2,THETA"),
        KernelKind("file", 0, lambda spec, s: _file_kernel(spec.path, s), "FILE.npy", from_path=True),
        KernelKind("estimate", 0, None, "estimate", blind=True),
    )
}

KERNEL_HELP = "|".join(k.syntax for k in KINDS.values())


def parse_kernel(text: str, allow_estimate: bool = True) -> KernelSpec:
    """Parse a ``--kernel`` value; one-line :class:`KernelError` on anything malformed."""
    raw = (text or "").strip()
    if raw.lower().endswith(".npy"):
        kind = next(k for k in KINDS.values() if k.from_path)
        _file_kernel(raw, 1)  # validate now, before any work
        return KernelSpec(kind.name, (), raw)
    name, _, rest = raw.partition(":")
    kind = KINDS.get(name.lower())
    if kind is None or kind.from_path:
        raise KernelError(f"unknown kernel {text!r}; use {KERNEL_HELP}")
    if kind.blind and not allow_estimate:
        known = "|".join(k.syntax for k in KINDS.values() if not k.blind)
        raise KernelError(f"kernel 'estimate' is not available here; give a known kernel ({known})")
    parts = [p for p in rest.split(",")] if rest else []
    if len(parts) != kind.n_params:
        raise KernelError(f"kernel {text!r}: {kind.name} takes {kind.n_params} number(s): {kind.syntax}")
    try:
        params = tuple(float(p) for p in parts)
    except ValueError:
        raise KernelError(f"kernel {text!r}: {kind.syntax} takes numbers") from None
    spec = KernelSpec(kind.name, params)
    if kind.n_params:
        _check_sigmas(spec)
    return spec


def parse_kernels(text: str) -> list[KernelSpec]:
    """``--degrade``: one spec, where a kind that takes one number may list several (``gaussian:0.8,1.2,1.6``)
    for one kernel each. ``estimate`` is not a degradation."""
    raw = (text or "").strip()
    name, _, rest = raw.partition(":")
    kind = KINDS.get(name.lower())
    if kind is not None and kind.n_params == 1 and "," in rest:
        return [parse_kernel(f"{kind.name}:{v}", allow_estimate=False) for v in rest.split(",")]
    return [parse_kernel(raw, allow_estimate=False)]


def kernel_array(spec: KernelSpec, scale: int) -> np.ndarray:
    """The kernel of ``spec`` on the HR grid of ``scale`` (parity of ``scale``, centred, sums to 1)."""
    kind = KINDS[spec.kind]
    if kind.build is None:
        raise KernelError(f"kernel {spec.describe()} has no fixed array (it is estimated per image)")
    return kind.build(spec, scale)


# --------------------------------------------------------------------------- degradation


def _mirror_index(idx: np.ndarray, n: int) -> np.ndarray:
    """MATLAB imresize's border rule: mirror with the edge sample repeated ([0..n-1, n-1..0] periodic)."""
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx < n, idx, period - 1 - idx)


def degrade(hr: np.ndarray, kernel: np.ndarray, scale: int) -> np.ndarray:
    """Blur ``hr`` (HxW or HxWxC, any dtype, values kept as float64) with ``kernel`` and sample every ``scale``-th
    pixel as the module docstring defines; returns float64 ``(H//s) x (W//s)[ x C]``, unrounded. ``hr`` is
    modcropped to a multiple of ``scale`` first, as LR generation does everywhere in trisr."""
    import torch
    import torch.nn.functional as F

    n = kernel.shape[0]
    if kernel.shape != (n, n) or n % 2 != scale % 2:
        raise KernelError(f"a {kernel.shape} kernel does not fit the x{scale} grid (size parity must match the scale)")
    x = np.asarray(hr, dtype=np.float64)
    grey = x.ndim == 2
    if grey:
        x = x[:, :, None]
    h, w = (x.shape[0] // scale) * scale, (x.shape[1] // scale) * scale
    if h == 0 or w == 0:
        raise KernelError(f"cannot degrade a {x.shape[0]}x{x.shape[1]} image by x{scale}")
    x = x[:h, :w]
    a = (scale - n) // 2  # (s-1)/2 - (n-1)/2: the first tap's HR row relative to s*i (an integer by parity)
    lr_h, lr_w = h // scale, w // scale
    # Gather the HR rows/columns the taps reach (mirrored at the borders); a strided correlation does the sums.
    r_all = _mirror_index(np.arange(a, a + scale * (lr_h - 1) + n), h)
    c_all = _mirror_index(np.arange(a, a + scale * (lr_w - 1) + n), w)
    xp = torch.from_numpy(np.ascontiguousarray(x[r_all][:, c_all].transpose(2, 0, 1)))[None]  # 1xCxHpxWp
    c = xp.shape[1]
    wt = torch.from_numpy(np.ascontiguousarray(kernel))[None, None].expand(c, 1, n, n)
    y = F.conv2d(xp, wt, stride=scale, groups=c)[0].numpy().transpose(1, 2, 0)
    return y[:, :, 0] if grey else y


def degraded_pairs(pairs: list, spec: KernelSpec, scale: int) -> list:
    """The same HR images with LR made by ``spec`` (exact blur-then-sample, rounded once to 8 bits)."""
    from dataclasses import replace

    from trisr.data.resize import quantize_uint8

    k = kernel_array(spec, scale)
    return [replace(p, lr=quantize_uint8(degrade(p.hr, k, scale)), lr_origin=f"degraded: {spec.describe()}") for p in pairs]

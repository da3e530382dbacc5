"""Verification of an exported artifact against the PyTorch network it came from, on real held-out images.

Both run on exactly the same inputs: each held-out LR image cut into tiles of every size the artifact is
checked at (its static size; for dynamic artifacts also a second, non-square size). Reported per size:
max |Δ| and PSNR between the two outputs (float, range 1); and at the artifact's own size the PSNR
against the HR ground truth (Y, BT.601, crop = scale, 8-bit output: the ``trisr eval`` convention) of
artifact and PyTorch, whose difference is the PSNR lost by export. Thresholds depend on the precision.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from trisr.data.pairs import ImagePair
from trisr.data.metrics import psnr_db
from trisr.export.shapes import HW, hw_text
from trisr.export.tiling import count_tiles, to_nchw, to_uint8_image, upscale_tiled


@dataclass(frozen=True)
class Thresholds:
    max_abs: float | None  # on outputs in [0, 1]; None: not bounded (quantized artifacts)
    min_psnr_vs_torch_db: float
    max_psnr_loss_db: float  # PSNR vs HR lost against PyTorch


#: fp32 must reproduce PyTorch (measured max|Δ| ~1e-7, deployment.md §1.6); fp16/int8 change numerics by
#: design, so they are judged by what they cost against the ground truth.
THRESHOLDS: dict[str, Thresholds] = {
    "fp32": Thresholds(max_abs=1e-4, min_psnr_vs_torch_db=80.0, max_psnr_loss_db=0.01),
    "bf16": Thresholds(max_abs=5e-2, min_psnr_vs_torch_db=40.0, max_psnr_loss_db=0.10),
    "fp16": Thresholds(max_abs=2e-2, min_psnr_vs_torch_db=45.0, max_psnr_loss_db=0.10),
    "int8": Thresholds(max_abs=None, min_psnr_vs_torch_db=30.0, max_psnr_loss_db=0.50),
}


@dataclass
class ShapeCheck:
    hw: list[int]
    tiles: int
    max_abs: float
    psnr_vs_torch_db: float


@dataclass
class ImageCheck:
    name: str
    psnr_db: float
    torch_psnr_db: float


@dataclass
class Verification:
    precision: str
    thresholds: Thresholds
    shapes: list[ShapeCheck]
    images: list[ImageCheck]
    verify_s: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def max_abs(self) -> float:
        return max(s.max_abs for s in self.shapes)

    @property
    def psnr_vs_torch_db(self) -> float:
        return min(s.psnr_vs_torch_db for s in self.shapes)

    @property
    def psnr_db(self) -> float:
        return float(np.mean([i.psnr_db for i in self.images]))

    @property
    def torch_psnr_db(self) -> float:
        return float(np.mean([i.torch_psnr_db for i in self.images]))

    @property
    def psnr_loss_db(self) -> float:
        return self.torch_psnr_db - self.psnr_db

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "precision": self.precision,
            "thresholds": asdict(self.thresholds),
            "max_abs": self.max_abs,
            "psnr_vs_torch_db": self.psnr_vs_torch_db,
            "psnr_db": self.psnr_db,
            "torch_psnr_db": self.torch_psnr_db,
            "psnr_loss_db": self.psnr_loss_db,
            "shapes": [asdict(s) for s in self.shapes],
            "images": [asdict(i) for i in self.images],
            "metric": "PSNR on Y (BT.601 studio), crop = scale, 8-bit output; images run in tiles of the checked size",
            "verify_s": self.verify_s,
        }

    def summary(self) -> str:
        return (
            f"max|Δ| {self.max_abs:.2e}, PSNR vs torch {_db(self.psnr_vs_torch_db)}, "
            f"PSNR {self.psnr_db:.3f} dB (torch {self.torch_psnr_db:.3f}, lost {self.psnr_loss_db:+.3f} dB)"
        )


def _db(v: float) -> str:
    return "inf dB" if math.isinf(v) else f"{v:.1f} dB"


class TorchReference:
    """PyTorch outputs on the held-out images, tiled like the artifact runs them; cached per tile size so
    several artifacts (``trisr bench``) are compared against one reference."""

    def __init__(self, model: torch.nn.Module, pairs: list[ImagePair], scale: int) -> None:
        self.model = model.to("cpu", torch.float32).eval()
        self.pairs = pairs
        self.scale = scale
        self._cache: dict[tuple[int, HW], np.ndarray] = {}

    @torch.inference_mode()
    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(x)).numpy()

    def output(self, index: int, hw: HW) -> np.ndarray:
        key = (index, tuple(hw))
        if key not in self._cache:
            self._cache[key] = upscale_tiled(self._run, to_nchw(self.pairs[index].lr), hw, self.scale)
        return self._cache[key]

    def psnr_db(self, index: int, hw: HW) -> float:
        return psnr_db(to_uint8_image(self.output(index, hw)), self.pairs[index].hr, crop=self.scale)


def verify(run, shapes: list[HW], reference: TorchReference, precision: str) -> Verification:
    """Check ``run`` (1x3xhxw float32 -> output; must accept every size in ``shapes``) against ``reference``;
    PSNR vs HR is measured at ``shapes[0]``, the artifact's own size."""
    t0 = time.perf_counter()
    limits = THRESHOLDS[precision]
    scale = reference.scale
    shape_checks: list[ShapeCheck] = []
    images: list[ImageCheck] = []
    failures: list[str] = []
    for k, hw in enumerate(shapes):
        worst, sq_sum, count, tiles = 0.0, 0.0, 0, 0
        for i, pair in enumerate(reference.pairs):
            y = upscale_tiled(run, to_nchw(pair.lr), hw, scale)
            ref = reference.output(i, hw)
            diff = (y.astype(np.float64) - ref).ravel()
            finite = bool(np.isfinite(diff).all())
            worst = max(worst, float(np.abs(diff).max()) if finite else math.inf)
            sq_sum += float(np.square(diff).sum()) if finite else math.inf
            count += diff.size
            tiles += count_tiles(pair.lr.shape[:2], hw)
            if k == 0:
                images.append(ImageCheck(pair.name, psnr_db(to_uint8_image(np.nan_to_num(y)), pair.hr, crop=scale), reference.psnr_db(i, hw)))
        mse = sq_sum / max(count, 1)
        psnr = math.inf if mse == 0 else (-math.inf if math.isinf(mse) else 10.0 * math.log10(1.0 / mse))
        shape_checks.append(ShapeCheck(list(hw), tiles, worst, psnr))
        where = f" at {hw_text(hw)}"
        if limits.max_abs is not None and not worst <= limits.max_abs:
            failures.append(f"max|Δ| {worst:.2e} > {limits.max_abs:g}{where}")
        if not psnr >= limits.min_psnr_vs_torch_db:
            failures.append(f"PSNR vs torch {_db(psnr)} < {limits.min_psnr_vs_torch_db:g} dB{where}")
    result = Verification(precision, limits, shape_checks, images, 0.0, failures)
    if not result.psnr_loss_db <= limits.max_psnr_loss_db:
        failures.append(f"PSNR lost {result.psnr_loss_db:+.3f} dB > {limits.max_psnr_loss_db:g} dB")
    result.verify_s = time.perf_counter() - t0
    return result

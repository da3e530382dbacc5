"""Apply the correction filter to LR images before a network: a known kernel's filter is computed once, an
estimated one per image (each image may come from another camera)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trisr.correction.estimate import estimate_kernel
from trisr.correction.filter import CorrectionFilter, correction_filter
from trisr.correction.kernels import KernelSpec
from trisr.export.tiling import to_nchw

__all__ = ["Corrector"]


@dataclass
class Corrector:
    """``spec`` at ``scale``: ``__call__`` turns a uint8 HxW(x3) LR image into the float 1x3xHxW input the
    network gets, and returns what was applied (for the log and the JSON record)."""

    spec: KernelSpec
    scale: int

    def __post_init__(self) -> None:
        self._fixed: CorrectionFilter | None = None if self.spec.is_estimate else correction_filter(self.spec, self.scale)

    @property
    def is_identity(self) -> bool:
        return self._fixed is not None and self._fixed.is_identity

    def __call__(self, lr: np.ndarray) -> tuple[np.ndarray, dict]:
        lr = np.asarray(lr)
        if lr.ndim == 2:
            lr = np.repeat(lr[:, :, None], 3, axis=2)
        record: dict = {"kernel": self.spec.describe()}
        filt = self._fixed
        if filt is None:
            est = estimate_kernel(lr, self.scale)
            filt = correction_filter(est.spec, self.scale)
            record["estimate"] = est.to_dict()
        record["filter_px"] = filt.size
        record["filter"] = {k: v for k, v in filt.to_dict().items() if k != "kernel"}
        return filt.apply_nchw(to_nchw(lr)), record

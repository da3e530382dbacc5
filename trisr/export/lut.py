"""The latency lookup table's prediction for ``trisr bench``'s "LUT predicted" column.

The LUT itself belongs to ``trisr.profile.lut`` (``load_lut(path).predict_ms(genotype)``). A prediction only
exists for trisr genotypes: for any other network (``trisr.zoo``) ``predicted_ms`` is None (not 0), with the reason
:data:`NOT_IN_TABLE`. Without ``--lut FILE`` the column stays empty ("-").
A LUT applies only to rows of the runtime, precision, threads and input size it was measured for, when
the table records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trisr.errors import TrisrError
from trisr.export.shapes import HW, hw_text


#: Why a network has no LUT prediction: the table prices the search space's ops, not hand-designed networks.
NOT_IN_TABLE = "not in the latency table"


@dataclass(frozen=True)
class LutPrediction:
    path: str
    predicted_ms: float | None
    backend: str | None = None
    precision: str | None = None
    threads: int | None = None
    resolution: HW | None = None
    reason: str | None = None  # why predicted_ms is None

    def applies_to(self, backend: str, precision: str, threads: int | None) -> bool:
        if self.backend is not None and self.backend != backend:
            return False
        if self.precision is not None and self.precision != precision:
            return False
        return self.threads is None or threads is None or int(self.threads) == int(threads)

    def to_dict(self) -> dict:
        return {"path": self.path, "predicted_ms": self.predicted_ms, "reason": self.reason, "backend": self.backend,
                "precision": self.precision, "threads": self.threads,
                "resolution": None if self.resolution is None else list(self.resolution)}


def lut_prediction(genotype, lut_path: str | Path | None, shape: HW | None = None) -> LutPrediction | None:
    """The LUT's prediction for ``genotype`` (any architecture, ``model.arch``), or None without a LUT file. A LUT
    measured at another input size than ``shape`` is refused (its latencies would not describe this benchmark). For a network that is not a trisr genotype the prediction's ``predicted_ms`` is None and
    its ``reason`` is :data:`NOT_IN_TABLE`."""
    from trisr.profile.lut import load_lut

    if lut_path is None:
        return None
    lut = load_lut(lut_path)
    in_table = getattr(genotype, "kind", "trisr") == "trisr"
    check = getattr(lut, "check", None)
    if callable(check) and in_table:
        check(genotype.space)  # a table of another search space is refused with its own one-line message
    target = getattr(lut, "target", None) or {}
    resolution = getattr(lut, "resolution", None)
    resolution = None if resolution is None else (int(resolution[0]), int(resolution[1]))
    if shape is not None and resolution is not None and resolution != tuple(shape):
        raise TrisrError(
            f"latency table {lut_path} was measured at {hw_text(resolution)} LR, but bench runs {hw_text(shape)} "
            f"(pass --shape {hw_text(resolution)} or profile at {hw_text(shape)})"
        )
    return LutPrediction(
        path=str(lut_path),
        predicted_ms=float(lut.predict_ms(genotype)) if in_table else None,
        backend=target.get("backend"),
        precision=target.get("precision"),
        threads=target.get("threads"),
        resolution=resolution,
        reason=None if in_table else NOT_IN_TABLE,
    )


def predict_latency_ms(genotype, lut_path: str | Path | None) -> float | None:
    """Predicted whole-network latency in ms, or None when no LUT file is given or the network is
    not in the table (zoo networks)."""
    prediction = lut_prediction(genotype, lut_path)
    return None if prediction is None else prediction.predicted_ms

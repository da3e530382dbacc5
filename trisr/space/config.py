"""Search-space configuration (method.md §2-§3, §13)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from fractions import Fraction

from trisr.errors import TrisrError

#: The candidate ops of the reference configuration, in id order (method.md §3.3).
REFERENCE_OPS: tuple[str, ...] = ("skip", "conv3x3", "residual", "dwsblock")
#: Width multipliers {4,6,8,10,12}/12 (method.md §3.4), kept as exact fractions in JSON-able form.
REFERENCE_WIDTH_MULTIPLIERS: tuple[str, ...] = ("4/12", "6/12", "8/12", "10/12", "12/12")
VARIANTS = ("A", "B")
SCALES = (2, 3, 4)


def make_divisible(value: float, divisor: int = 8, min_value: int = 3) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (half up), never below ``min_value``,
    and add one ``divisor`` if rounding lost more than 10 % (method.md §3.4, the MobileNet rule)."""
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


@dataclass(frozen=True)
class SpaceConfig:
    """Everything that fixes the shape of the search space.

    The defaults are the paper's reference configuration (nf 64, 5 cells of 5 ops, 2 up blocks,
    4 searchable cells per path, variant B, x4) except the output head: trisr adds a nearest-neighbour
    global skip with a linear output (``skip``, ``output``; the reference is ``none`` / ``tanh``).
    """

    nf: int = 64
    num_cell: int = 5
    num_up: int = 2
    num_cell_path_search: int = 4
    ops_per_cell: int = 5
    ops: tuple[str, ...] = REFERENCE_OPS
    width_multipliers: tuple[str, ...] = REFERENCE_WIDTH_MULTIPLIERS
    scale: int = 4
    variant: str = "B"
    #: Expansion of ``dwsblock`` (method.md §3.3).
    dws_expansion: int = 4
    #: Derived ops with c_in == c_out use an identity shortcut (paper counts, §10.4 default) or keep
    #: the 1x1 conv the supernet trained ("conv", the faithful alternative).
    derived_shortcut: str = "identity"
    #: Global skip and output map of the tail (trisr/space/ops.py::Tail). Deviation from the reference code
    #: (no skip, ``(tanh + 1) / 2``), chosen by measurement: docs/method.md, docs/benchmarks.md.
    skip: str = "nearest"
    output: str = "linear"

    def __post_init__(self) -> None:
        # Imported here: the op registry imports this module.
        from trisr.space.ops import OPS, OUTPUT_MAPS, SKIPS

        problems = []
        if self.nf < 8 or self.nf % 8:
            problems.append(f"nf must be a positive multiple of 8, got {self.nf}")
        if self.num_cell_path_search < 0 or self.num_cell_path_search > self.num_cell:
            problems.append("num_cell_path_search must be in [0, num_cell]")
        if self.num_cell - self.num_cell_path_search < 1:
            problems.append("at least one stem cell is required (num_cell > num_cell_path_search)")
        if self.num_up < 0:
            problems.append("num_up must be >= 0")
        if self.ops_per_cell < 1:
            problems.append("ops_per_cell must be >= 1")
        if self.scale not in SCALES:
            problems.append(f"scale must be one of {SCALES}, got {self.scale}")
        if self.variant not in VARIANTS:
            problems.append(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.variant == "A" and 2**self.num_up != self.scale:
            problems.append(f"variant A needs 2**num_up == scale, got num_up={self.num_up}, scale={self.scale}")
        if self.derived_shortcut not in ("identity", "conv"):
            problems.append("derived_shortcut must be 'identity' or 'conv'")
        if self.skip not in SKIPS:
            problems.append(f"skip must be one of {SKIPS}, got {self.skip!r}")
        if self.output not in OUTPUT_MAPS:
            problems.append(f"output must be one of {OUTPUT_MAPS}, got {self.output!r}")
        elif self.output == "tanh" and self.skip != "none":
            problems.append("output 'tanh' squashes the global skip; use output 'linear' with a skip")
        for op in self.ops:
            if op not in OPS:
                problems.append(f"unknown op {op!r}; registered: {', '.join(OPS.names())}")
        if not self.ops:
            problems.append("at least one candidate op is required")
        fractions = []
        for m in self.width_multipliers:
            try:
                f = Fraction(m)
            except (ValueError, TypeError, ZeroDivisionError):
                problems.append(f"width multiplier {m!r} is not a number like 1/2 or 0.75")
                continue
            if not 0 < f <= 1:
                problems.append(f"width multiplier {m} must lie in (0, 1]")
            fractions.append(f)
        if fractions and len(fractions) == len(self.width_multipliers) and max(fractions) != 1:
            problems.append("the width multipliers must include 1 (the full width nf)")
        if not self.width_multipliers:
            problems.append("at least one width multiplier is required")
        if problems:
            raise TrisrError("invalid search space: " + "; ".join(problems))

    # -- derived quantities ---------------------------------------------------------------------------

    @property
    def num_stem(self) -> int:
        return self.num_cell - self.num_cell_path_search

    @property
    def widths(self) -> tuple[int, ...]:
        """Channel options per internal edge, ascending and de-duplicated (small nf can make two
        multipliers round to the same count; a repeated option would only split probability mass)."""
        chans = {make_divisible(self.nf * float(Fraction(m))) for m in self.width_multipliers}
        return tuple(sorted(chans))

    @property
    def num_widths(self) -> int:
        return len(self.widths)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def edges_per_cell(self) -> int:
        """Internal edges with a width choice: op i maps w_{i-1} -> w_i, with w_0 = w_P = nf."""
        return self.ops_per_cell - 1

    # -- serialisation ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ops"] = list(self.ops)
        d["width_multipliers"] = list(self.width_multipliers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpaceConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise TrisrError(f"invalid search space: unknown keys {sorted(unknown)}")
        d = dict(d)
        # Files written before the head options existed describe the reference head.
        d.setdefault("skip", "none")
        d.setdefault("output", "tanh")
        for key in ("ops", "width_multipliers"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def fingerprint(self) -> str:
        """A short hash of the space definition; cost tables and runs record it to refuse mismatches."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **changes) -> "SpaceConfig":
        d = self.to_dict()
        d.update(changes)
        return SpaceConfig.from_dict(d)


__all__ = ["SpaceConfig", "make_divisible", "REFERENCE_OPS", "VARIANTS", "SCALES"]

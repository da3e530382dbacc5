"""The input an artifact accepts: one static LR size (default) or a dynamic height/width range with the
size it is optimised for (``opt``), as TensorRT optimization profiles need (deployment.md §4.5)."""

from __future__ import annotations

from dataclasses import dataclass

from trisr.errors import TrisrError

HW = tuple[int, int]
DEFAULT_SHAPE: HW = (256, 256)
DEFAULT_MIN: HW = (32, 32)
DEFAULT_MAX: HW = (1024, 1024)


def hw_text(hw: HW) -> str:
    return f"{hw[0]}x{hw[1]}"


@dataclass(frozen=True)
class InputSpec:
    """``shape``: the LR size (H, W) of a static artifact, or the ``opt`` size of a dynamic one; it is also
    the tile size for images of other sizes and the size latency is measured at."""

    shape: HW = DEFAULT_SHAPE
    dynamic: bool = False
    min_hw: HW | None = None
    max_hw: HW | None = None

    def __post_init__(self) -> None:
        if min(self.shape) < 1:
            raise TrisrError(f"input size must be positive, got {hw_text(self.shape)}")
        if not self.dynamic:
            if self.min_hw is not None or self.max_hw is not None:
                raise TrisrError("--min/--max describe a dynamic input; add --dynamic")
            return
        lo, hi = self.min_hw or DEFAULT_MIN, self.max_hw or DEFAULT_MAX
        lo = (min(lo[0], self.shape[0]), min(lo[1], self.shape[1])) if self.min_hw is None else lo
        hi = (max(hi[0], self.shape[0]), max(hi[1], self.shape[1])) if self.max_hw is None else hi
        object.__setattr__(self, "min_hw", lo)
        object.__setattr__(self, "max_hw", hi)
        if not (lo[0] <= self.shape[0] <= hi[0] and lo[1] <= self.shape[1] <= hi[1]):
            raise TrisrError(
                f"dynamic profile must satisfy min <= opt <= max per dimension, got min {hw_text(lo)}, "
                f"opt {hw_text(self.shape)}, max {hw_text(hi)}"
            )

    # -- shapes ------------------------------------------------------------------------------------------

    @staticmethod
    def nchw(hw: HW) -> tuple[int, int, int, int]:
        return (1, 3, int(hw[0]), int(hw[1]))

    def accepts(self, hw: HW) -> bool:
        if not self.dynamic:
            return tuple(hw) == tuple(self.shape)
        assert self.min_hw is not None and self.max_hw is not None
        return all(self.min_hw[i] <= hw[i] <= self.max_hw[i] for i in (0, 1))

    def check(self, hw: HW) -> None:
        """Refuse an input the artifact was not built for, naming the allowed range (deployment.md §7.4)."""
        if self.accepts(hw):
            return
        if self.dynamic:
            raise TrisrError(
                f"input {hw_text(hw)} is outside the artifact's range {hw_text(self.min_hw)}..{hw_text(self.max_hw)}"
            )
        raise TrisrError(f"input {hw_text(hw)} does not match the artifact's static input {hw_text(self.shape)}")

    def check_shapes(self) -> list[HW]:
        """Sizes verification runs at: the static size; or ``opt`` plus a second, non-square size in range."""
        if not self.dynamic:
            return [self.shape]
        assert self.min_hw is not None and self.max_hw is not None
        h, w = self.shape
        second = (
            max(self.min_hw[0], min(self.max_hw[0], h - h // 4)),
            max(self.min_hw[1], min(self.max_hw[1], w + w // 4)),
        )
        if second == self.shape or second[0] == second[1]:
            second = (self.min_hw[0], self.max_hw[1]) if self.min_hw[0] != self.max_hw[1] else self.min_hw
        return [self.shape] if second == self.shape else [self.shape, second]

    def profile(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        """(min, opt, max) NCHW shapes for a TensorRT optimization profile, or None when static."""
        if not self.dynamic:
            return None
        return (self.nchw(self.min_hw), self.nchw(self.shape), self.nchw(self.max_hw))

    def tag(self) -> str:
        """File-name part: ``256x256`` or ``dyn32x32-256x256-1024x1024``."""
        if not self.dynamic:
            return hw_text(self.shape)
        return f"dyn{hw_text(self.min_hw)}-{hw_text(self.shape)}-{hw_text(self.max_hw)}"

    def describe(self) -> str:
        if not self.dynamic:
            return f"static 1x3x{hw_text(self.shape)}"
        return f"dynamic 1x3xHxW, H x W in {hw_text(self.min_hw)}..{hw_text(self.max_hw)}, opt {hw_text(self.shape)}"

    # -- serialisation ------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        d: dict = {"name": "input", "layout": "NCHW", "dtype": "float32", "value_range": [0.0, 1.0]}
        if self.dynamic:
            d.update(shape=None, dynamic={k: list(self.nchw(v)) for k, v in (("min", self.min_hw), ("opt", self.shape), ("max", self.max_hw))})
        else:
            d.update(shape=list(self.nchw(self.shape)), dynamic=None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        try:
            if d.get("dynamic"):
                dyn = d["dynamic"]
                return cls(tuple(dyn["opt"][2:]), True, tuple(dyn["min"][2:]), tuple(dyn["max"][2:]))
            return cls(tuple(d["shape"][2:]))
        except (KeyError, TypeError, IndexError) as exc:
            raise TrisrError(f"sidecar input description is malformed: {exc!r}") from None

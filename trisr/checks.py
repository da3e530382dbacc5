"""Small input checks shared by the library's entry points: each raises :class:`~trisr.errors.TrisrError`
with one line naming the flag and the value, before any work starts (issue 9)."""

from __future__ import annotations

import math
from pathlib import Path

from trisr.errors import TrisrError


def check_threads(threads: int | None, flag: str = "--threads") -> None:
    """``None`` (all cores) or a positive thread count."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise TrisrError(f"{flag} must be a positive number of threads, got {threads}")


def check_budget(value: float | None, what: str = "the budget") -> None:
    """``None`` or a finite, positive number (not nan, not inf)."""
    if value is None:
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TrisrError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise TrisrError(f"{what} must be a finite positive number, got {value}")


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """An output folder that can be created: neither it nor any folder above it is a regular file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "" if p == path else f" ({p} is a file)"
                raise TrisrError(f"{flag} {path} is not a folder{where}")
            break
    return path

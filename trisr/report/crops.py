"""Side-by-side detail crops (bicubic / networks / HR) for reports."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from trisr.errors import TrisrError

CROP_DISPLAY_PX = 256


def pick_box(hr: np.ndarray, size: int, align: int = 12) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` region of ``hr`` with the most gradient energy, as ``(y, x, h, w)``.

    Deterministic (ties go to the top-most, then left-most box). ``y`` and ``x`` are multiples of ``align``
    (12 by default: a multiple of every scale 2, 3 and 4, so the box maps onto whole LR pixels); the box is
    shrunk to the image when the image is smaller than ``size``."""
    img = np.asarray(hr)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise TrisrError(f"pick_box needs an HxW or HxWxC image, got shape {img.shape}")
    if size < 1 or align < 1:
        raise TrisrError(f"crop size and alignment must be positive, got {size} and {align}")
    grey = img.astype(np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    H, W = grey.shape
    h = w = min(int(size), H, W)
    energy = np.zeros((H, W))
    energy[:, :-1] += np.diff(grey, axis=1) ** 2
    energy[:-1, :] += np.diff(grey, axis=0) ** 2
    integral = np.zeros((H + 1, W + 1))
    integral[1:, 1:] = energy.cumsum(0).cumsum(1)
    ys = np.arange(0, H - h + 1, align)
    xs = np.arange(0, W - w + 1, align)
    y0, x0 = ys[:, None], xs[None, :]
    sums = integral[y0 + h, x0 + w] - integral[y0, x0 + w] - integral[y0 + h, x0] + integral[y0, x0]
    iy, ix = np.unravel_index(int(np.argmax(sums)), sums.shape)  # argmax: first maximum, row-major
    return int(ys[iy]), int(xs[ix]), int(h), int(w)


def _slug(label: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.").lower()
    return s or "panel"


def write_crop_panels(
    panels: list[tuple[str, np.ndarray]],
    box: tuple[int, int, int, int],
    out_dir: Path,
    relative_to: Path | None = None,
    display_px: int = CROP_DISPLAY_PX,
) -> list[dict]:
    """Crop every ``(label, image)`` to ``box`` = ``(y, x, h, w)``, enlarge it by an integer nearest-neighbour
    factor to about ``display_px`` pixels (so single pixels stay visible), and save it as PNG under ``out_dir``.

    Returns one ``{"label", "path", "box", "zoom", "size"}`` per panel, in order; ``path`` is relative to
    ``relative_to`` when given (e.g. the study folder, as ``study.json`` stores it), else the path written."""
    from trisr.data.images import save_image

    y, x, h, w = (int(v) for v in box)
    if h < 1 or w < 1 or y < 0 or x < 0:
        raise TrisrError(f"bad crop box {box}")
    zoom = max(1, round(display_px / max(h, w)))
    out_dir = Path(out_dir)
    used: set[str] = set()
    written = []
    for label, image in panels:
        img = np.asarray(image)
        if img.shape[0] < y + h or img.shape[1] < x + w:
            raise TrisrError(f"crop box {box} falls outside the {label!r} image of shape {img.shape[:2]}")
        if img.dtype != np.uint8:
            raise TrisrError(f"crop panel {label!r} must be uint8, got {img.dtype}")
        crop = img[y : y + h, x : x + w]
        big = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)
        name, n = _slug(label), 2
        while name in used:
            name, n = f"{_slug(label)}-{n}", n + 1
        used.add(name)
        path = save_image(out_dir / f"{name}.png", np.ascontiguousarray(big))
        shown = path
        if relative_to is not None:
            try:
                shown = path.resolve().relative_to(Path(relative_to).resolve())
            except ValueError:
                shown = path
        written.append(
            {"label": label, "path": Path(shown).as_posix(), "box": [y, x, h, w], "zoom": zoom, "size": list(big.shape[:2])}
        )
    return written

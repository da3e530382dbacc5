"""Dataset folder layouts: which HR/LR folders a dataset root holds (evaluation.md §8-§11).

:func:`detect_layout` recognises SelfExSR (``image_SRF_<s>``), EDSR/SwinIR/KAIR (``<name>_HR`` +
``<name>_LR_bicubic/X<s>``), BasicSR (``GTmod12``/``original`` + ``LRbicx<s>``), DIV2K, Flickr2K, eugenesiow
(``<name>_LR_x<s>``), a ``<name>_HR`` folder without LR, and a plain folder of HR images. Loading the pairs is
:mod:`trisr.data.pairs`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trisr.data.images import list_images
from trisr.errors import DataError

__all__ = ["DatasetLayout", "detect_layout"]

_SPLITS = ("train", "val")


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _check_split(split: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    return split


# ----------------------------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class DatasetLayout:
    """A detected dataset layout.

    Attributes:
        kind: ``"selfexsr"``, ``"edsr"`` (also SwinIR/KAIR), ``"basicsr"``, ``"div2k"``, ``"flickr2k"``,
            ``"eugenesiow"``, ``"hr_suffix"`` (a ``<name>_HR`` folder without LR) or ``"plain"``; several
            parts are joined with ``+`` (e.g. ``"div2k+flickr2k"`` for DF2K).
        root: the folder that was given.
        parts: ``(hr_folder, lr_folder or None)`` pairs; ``None`` means the LR is generated from HR. For
            SelfExSR both folders are the same ``image_SRF_<s>`` folder.
    """

    kind: str
    root: Path
    parts: tuple[tuple[Path, Path | None], ...]

    @property
    def generates_lr(self) -> bool:
        return any(lr is None for _, lr in self.parts)


_SRF_DIR = re.compile(r"image_SRF_(\d+)")


def _first_dir(*candidates: Path) -> Path | None:
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _lr_for_hr_dir(hr_dir: Path, scale: int) -> tuple[str, Path | None]:
    """Kind and LR folder that belongs to an HR folder of a known layout (None: generate)."""
    parent, name = hr_dir.parent, hr_dir.name
    if name == "HR":
        return "edsr", _first_dir(parent / "LR_bicubic" / f"X{scale}", parent / "LR_bicubic" / f"x{scale}")
    if name in ("GTmod12", "original"):
        return "basicsr", _first_dir(parent / f"LRbicx{scale}")
    if name.endswith("_HR"):
        prefix = name[: -len("_HR")]
        bicubic = _first_dir(
            parent / f"{prefix}_LR_bicubic" / f"X{scale}", parent / f"{prefix}_LR_bicubic" / f"x{scale}"
        )
        if prefix.startswith("DIV2K"):
            kind = "div2k"
        elif prefix.startswith("Flickr2K"):
            kind = "flickr2k"
        else:
            kind = "hr_suffix"
        if bicubic is not None:
            return kind, bicubic
        plain = _first_dir(parent / f"{prefix}_LR_x{scale}", parent / f"{prefix}_LR_X{scale}")
        if plain is not None:
            return (kind if kind != "hr_suffix" else "eugenesiow"), plain
        return kind, None
    return "plain", None


def _looks_like_dataset(d: Path) -> bool:
    try:
        return (
            (d / "HR").is_dir()
            or (d / "GTmod12").is_dir()
            or (d / "original").is_dir()
            or any(c.is_dir() and (_SRF_DIR.fullmatch(c.name) or c.name.endswith("_HR")) for c in d.iterdir())
        )
    except OSError:
        return False


def _has_images(d: Path) -> bool:
    try:
        list_images(d)
    except DataError:
        return False
    return True


def detect_layout(root: str | os.PathLike, scale: int, split: str = "train") -> DatasetLayout:
    """Recognise the layout of a dataset folder (evaluation.md §8.2).

    Checked in this order, for ``root`` =

    1. SelfExSR: ``root/image_SRF_<s>/`` (or ``root`` itself is ``image_SRF_<s>``) with ``*_HR`` and
       ``*_LR`` files; other files there (method outputs) are ignored.
    2. EDSR benchmark / SwinIR: ``root/HR/`` with ``root/LR_bicubic/X<s>/``.
    3. BasicSR/mmagic: ``root/GTmod12/`` (preferred) or ``root/original/`` with ``root/LRbicx<s>/``.
    4. ``root/<P>_HR/`` folders (DIV2K, Flickr2K, eugenesiow): LR in ``<P>_LR_bicubic/X<s>/`` or
       ``<P>_LR_x<s>/``. With several ``_HR`` folders ``split`` picks: ``"train"`` takes the ``*train*``
       ones plus ``Flickr2K_HR`` (DF2K), ``"val"`` the ``*valid*``/``*val*`` ones.
    5. ``root`` is itself an HR folder of the layouts above (``HR``, ``GTmod12``, ``original``,
       ``<P>_HR``): its LR sibling is used when present.
    6. A plain folder of images: all are HR.

    When the LR folder for ``s`` is missing, the LR is generated from HR (``lr`` part is ``None``).
    ``split`` only matters in case 4.

    Raises:
        DataError: the folder is missing, holds several datasets, has no ``image_SRF_<s>``, or holds no
            images and no known layout.
    """
    scale = _check_scale(scale)
    split = _check_split(split)
    r = Path(root)
    if not r.exists():
        raise DataError(f"dataset folder {r} does not exist")
    if not r.is_dir():
        raise DataError(f"dataset path {r} is not a folder")
    subdirs = sorted((c for c in r.iterdir() if c.is_dir() and not c.name.startswith(".")), key=lambda c: c.name)

    # 1. SelfExSR
    m = _SRF_DIR.fullmatch(r.name)
    if m:
        if int(m.group(1)) != scale:
            raise DataError(f"{r} holds x{m.group(1)} SelfExSR images, not x{scale}")
        return DatasetLayout("selfexsr", r, ((r, r),))
    srf = [c for c in subdirs if _SRF_DIR.fullmatch(c.name)]
    if srf:
        wanted = r / f"image_SRF_{scale}"
        if not wanted.is_dir():
            have = ", ".join(c.name for c in srf)
            raise DataError(f"SelfExSR folder {r} has no image_SRF_{scale} for x{scale} (found {have})")
        return DatasetLayout("selfexsr", r, ((wanted, wanted),))

    # 2. EDSR / SwinIR
    if (r / "HR").is_dir():
        kind, lr = _lr_for_hr_dir(r / "HR", scale)
        return DatasetLayout(kind, r, ((r / "HR", lr),))

    # 3. BasicSR / mmagic
    hr_dir = _first_dir(r / "GTmod12", r / "original")
    if hr_dir is not None:
        kind, lr = _lr_for_hr_dir(hr_dir, scale)
        return DatasetLayout(kind, r, ((hr_dir, lr),))

    # 4. <P>_HR folders
    hr_dirs = [c for c in subdirs if c.name.endswith("_HR")]
    if hr_dirs:
        if len(hr_dirs) > 1:
            low = {c: c.name.lower() for c in hr_dirs}
            if split == "val":
                chosen = [c for c in hr_dirs if "valid" in low[c] or "_val" in low[c]]
            else:
                chosen = [c for c in hr_dirs if "train" in low[c] or c.name == "Flickr2K_HR"]
            if not chosen:
                names = ", ".join(c.name for c in hr_dirs)
                raise DataError(
                    f"{r} holds several HR folders ({names}) and none is a {split} split; pass one of them"
                )
            hr_dirs = chosen
        parts, kinds = [], []
        for d in hr_dirs:
            kind, lr = _lr_for_hr_dir(d, scale)
            parts.append((d, lr))
            if kind not in kinds:
                kinds.append(kind)
        return DatasetLayout("+".join(kinds), r, tuple(parts))

    # 5. root is itself an HR folder of a known layout
    if r.name in ("HR", "GTmod12", "original") or r.name.endswith("_HR"):
        kind, lr = _lr_for_hr_dir(r, scale)
        return DatasetLayout(kind, r, ((r, lr),))

    # 6. plain folder of HR images
    if _has_images(r):
        return DatasetLayout("plain", r, ((r, None),))

    sets = [c.name for c in subdirs if _looks_like_dataset(c)]
    if sets:
        raise DataError(f"{r} holds several datasets ({', '.join(sets)}); pass one of them")
    raise DataError(
        f"no images and no known dataset layout in {r} (expected HR/ + LR_bicubic/X{scale}/, "
        f"GTmod12/ or original/ + LRbicx{scale}/, <name>_HR/ + <name>_LR_bicubic/X{scale}/ or "
        f"<name>_LR_x{scale}/, image_SRF_{scale}/, or image files)"
    )



"""HR/LR image pairs: embedded scikit-image images, user dataset folders, and a patch sampler.

Sources (evaluation.md §8-§11):

* ``load_pairs(None, s, split)``: images bundled inside the scikit-image wheel (public domain / CC0, no
  network), LR made with :func:`~trisr.data.resize.bicubic_downscale`.
* ``load_pairs(folder, s, split)``: a folder in one of the known layouts (see :func:`detect_layout`), or a
  plain folder of HR images whose LR is generated. Generated LR is cached in memory only; trisr never writes
  into user folders.

Every pair holds uint8 ``H x W x 3`` RGB arrays with ``hr.shape[:2] == (lr_h * s, lr_w * s)``: the ground
truth is cropped from the top-left to LR size times the scale (evaluation.md §4).
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trisr.data.images import list_images, load_image
from trisr.data.resize import bicubic_downscale, modcrop
from trisr.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "EMBEDDED_TRAIN",
    "EMBEDDED_VAL",
    "LR_GENERATION",
    "ImagePair",
    "DatasetLayout",
    "load_embedded",
    "detect_layout",
    "pair_images",
    "load_pairs",
    "split_pairs",
    "clear_lr_cache",
    "PatchSampler",
    "AUGMENTS",
    "SAMPLINGS",
]

#: scikit-image 0.26 bundled images used for training/search (public domain or CC0, evaluation.md §9.1/§10;
#: each loads offline through ``skimage.data.<name>()``). Grey ones are replicated to RGB.
EMBEDDED_TRAIN: tuple[str, ...] = (
    "astronaut",
    "camera",
    "brick",
    "grass",
    "gravel",
    "rocket",
    "hubble_deep_field",
    "retina",
    "cell",
    "text",
)
#: Held-out validation images (CC0 RGB PNGs).
EMBEDDED_VAL: tuple[str, ...] = ("chelsea", "coffee")

#: How trisr generates missing LR images; recorded in :attr:`ImagePair.lr_origin`.
LR_GENERATION = "matlab-bicubic(a=-0.5, antialias) of HR modcropped to s, float64, rounded once to uint8"

_SPLITS = ("train", "val")


@dataclass(eq=False)
class ImagePair:
    """One training/evaluation pair.

    Attributes:
        name: image name (HR file stem, or the scikit-image name).
        hr: uint8 ``H x W x 3`` ground truth, already cropped to ``(lr_h * s, lr_w * s)``.
        lr: uint8 ``h x w x 3`` low-resolution input.
        lr_origin: where the LR came from: ``"file:<path>"``, or ``"generated: <settings>"``.
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray
    lr_origin: str = field(default="")

    @property
    def scale(self) -> int:
        """The integer factor between HR and LR (rows)."""
        return self.hr.shape[0] // self.lr.shape[0]


# --------------------------------------------------------------------------------------------- helpers


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _check_split(split: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    return split


def _to_rgb_uint8(arr: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise DataError(f"{what} is {a.dtype}, expected 8-bit")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise DataError(f"{what} has shape {np.shape(arr)}, expected grey, RGB or RGBA")
    return np.ascontiguousarray(a)


# In-memory cache of generated LR images (never written to disk), bounded in bytes, oldest evicted first.
_LR_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_LR_CACHE_LOCK = threading.Lock()
_LR_CACHE_MAX_BYTES = 2 << 30


def clear_lr_cache() -> None:
    """Forget all generated LR images cached in memory."""
    with _LR_CACHE_LOCK:
        _LR_CACHE.clear()


def _generated_lr(key: tuple, hr: np.ndarray, scale: int) -> np.ndarray:
    full_key = (*key, scale, LR_GENERATION)
    with _LR_CACHE_LOCK:
        hit = _LR_CACHE.get(full_key)
        if hit is not None:
            _LR_CACHE.move_to_end(full_key)
            return hit
    lr = bicubic_downscale(hr, scale)
    lr.setflags(write=False)
    with _LR_CACHE_LOCK:
        _LR_CACHE[full_key] = lr
        total = sum(v.nbytes for v in _LR_CACHE.values())
        while total > _LR_CACHE_MAX_BYTES and len(_LR_CACHE) > 1:
            _, old = _LR_CACHE.popitem(last=False)
            total -= old.nbytes
    return lr


def _generated_pair(name: str, hr: np.ndarray, scale: int, key: tuple, where: str) -> ImagePair:
    h, w = hr.shape[:2]
    if h < scale or w < scale:
        raise DataError(f"image {where} is {h}x{w} (HxW), too small to downscale by x{scale}")
    lr = _generated_lr(key, hr, scale).copy()
    return ImagePair(name, np.ascontiguousarray(modcrop(hr, scale)), lr, f"generated: {LR_GENERATION}")


# ---------------------------------------------------------------------------------------------- embedded


def load_embedded(split: str = "train") -> list[tuple[str, np.ndarray]]:
    """The scikit-image images of :data:`EMBEDDED_TRAIN` (``"train"``) or :data:`EMBEDDED_VAL` (``"val"``).

    Loaded offline from the copies bundled in the scikit-image wheel. Returns ``(name, rgb_uint8)`` pairs.
    """
    names = EMBEDDED_TRAIN if _check_split(split) == "train" else EMBEDDED_VAL
    import skimage.data

    out = []
    for name in names:
        try:
            arr = getattr(skimage.data, name)()
        except Exception as exc:  # pooch missing, no network, removed loader, ...
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"embedded image {name!r} is not available from scikit-image offline: {msg}") from None
        out.append((name, _to_rgb_uint8(arr, f"embedded image {name!r}")))
    return out


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


# ----------------------------------------------------------------------------------------------- pairing


def pair_images(
    hr_files: Sequence[Path], lr_files: Sequence[Path], scale: int
) -> list[tuple[Path, Path]]:
    """Pair HR and LR files by the rules of evaluation.md §8.1, tried in order for each HR file.

    1. the same name (file stem) in both lists;
    2. the LR stem is the HR stem plus ``x<s>`` (``0001.png`` <-> ``0001x4.png``);
    3. SRF naming: ``img_001_SRF_4_HR`` <-> ``img_001_SRF_4_LR``;
    4. only if no HR file matched by rules 1-3 and both lists have the same length: sorted order, with a
       warning.

    LR files left without an HR partner are ignored with a warning.

    Raises:
        DataError: two LR files share a stem, an HR file has no partner, or nothing matches and the
            counts differ.
    """
    scale = _check_scale(scale)
    hr_files = [Path(p) for p in hr_files]
    lr_files = [Path(p) for p in lr_files]
    lr_by_stem: dict[str, Path] = {}
    for p in lr_files:
        if p.stem in lr_by_stem:
            raise DataError(f"LR images {lr_by_stem[p.stem].name} and {p.name} in {p.parent} share a name")
        lr_by_stem[p.stem] = p

    srf_hr = re.compile(rf"(.*)_SRF_{scale}_HR")
    pairs: list[tuple[Path, Path]] = []
    missing: list[tuple[Path, list[str]]] = []
    used: dict[Path, Path] = {}
    for hr in hr_files:
        candidates = [hr.stem, f"{hr.stem}x{scale}"]
        m = srf_hr.fullmatch(hr.stem)
        if m:
            candidates.append(f"{m.group(1)}_SRF_{scale}_LR")
        for c in candidates:
            lr = lr_by_stem.get(c)
            if lr is not None:
                if lr in used:
                    raise DataError(f"LR image {lr} matches both {used[lr].name} and {hr.name}")
                used[lr] = hr
                pairs.append((hr, lr))
                break
        else:
            missing.append((hr, candidates))

    if missing and not pairs:
        if len(hr_files) == len(lr_files):
            hr_dir = hr_files[0].parent
            lr_dir = lr_files[0].parent
            warnings.warn(
                f"no HR/LR file names match in {hr_dir} and {lr_dir}; pairing the {len(hr_files)} images "
                "by sorted order (check that this is right)",
                UserWarning,
                stacklevel=2,
            )
            return list(zip(sorted(hr_files, key=lambda p: p.name), sorted(lr_files, key=lambda p: p.name)))
        where = lr_files[0].parent if lr_files else "the LR folder"
        raise DataError(
            f"cannot pair HR and LR images: no names match in {where} and the folders hold "
            f"{len(hr_files)} HR and {len(lr_files)} LR images"
        )
    if missing:
        hr, cands = missing[0]
        where = lr_files[0].parent if lr_files else "the LR folder"
        tried = ", ".join(f"{c}.*" for c in cands)
        more = f" ({len(missing)} of {len(hr_files)} HR images are unpaired)" if len(missing) > 1 else ""
        raise DataError(f"no LR image for HR {hr.name} in {where} (looked for {tried}){more}")
    unused = [p for p in lr_files if p not in used]
    if unused:
        warnings.warn(
            f"{len(unused)} LR image(s) in {unused[0].parent} have no HR partner and are ignored "
            f"(e.g. {unused[0].name})",
            UserWarning,
            stacklevel=2,
        )
    return pairs


def _crop_to_lr(hr: np.ndarray, lr: np.ndarray, scale: int, hr_path: Path, lr_path: Path) -> np.ndarray:
    """Check that ``lr`` fits ``hr`` at ``scale`` and return ``hr[:h*s, :w*s]``.

    Accepted: ``lr * s`` equals HR modcropped to a multiple of ``s`` (the usual case), or HR modcropped to a
    multiple of 12 (LR made from "GTmod12" while the HR folder holds the originals).
    """
    H, W = hr.shape[:2]
    h, w = lr.shape[:2]

    def fits(big: int, small: int) -> bool:
        return small * scale == big - big % scale or small * scale == big - big % 12

    if not (fits(H, h) and fits(W, w)):
        expect = f"{H // scale}x{W // scale}"
        alt = f"{(H - H % 12) // scale}x{(W - W % 12) // scale}"
        also = f" or {alt} (from HR modcropped to 12)" if alt != expect else ""
        raise DataError(
            f"LR image {lr_path} is {h}x{w} (HxW) but its HR {hr_path.name} is {H}x{W}: at x{scale} the LR "
            f"should be {expect}{also}"
        )
    return np.ascontiguousarray(hr[: h * scale, : w * scale])


def _pair_name(hr_path: Path, scale: int) -> str:
    stem = hr_path.stem
    suffix = f"_SRF_{scale}_HR"
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else stem


def _load_file_pair(hr_path: Path, lr_path: Path, scale: int) -> ImagePair:
    hr = load_image(hr_path)
    lr = load_image(lr_path)
    hr = _crop_to_lr(hr, lr, scale, hr_path, lr_path)
    return ImagePair(_pair_name(hr_path, scale), hr, lr, f"file:{lr_path}")


def _load_generated(hr_path: Path, scale: int) -> ImagePair:
    hr = load_image(hr_path)
    st = hr_path.stat()
    key = ("file", str(hr_path.resolve()), st.st_mtime_ns, st.st_size)
    return _generated_pair(_pair_name(hr_path, scale), hr, scale, key, str(hr_path))


def _parallel_map(fn, items: list) -> list:
    if len(items) <= 1:
        return [fn(*it) for it in items]
    workers = min(8, os.cpu_count() or 1, len(items))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda it: fn(*it), items))


def load_pairs(
    source: str | os.PathLike | None,
    scale: int,
    split: str = "train",
) -> list[ImagePair]:
    """Load HR/LR pairs, with the GT cropped to LR size times ``scale``.

    Args:
        source: ``None`` for the embedded scikit-image images (:data:`EMBEDDED_TRAIN` or
            :data:`EMBEDDED_VAL`, LR by :func:`bicubic_downscale`); otherwise a dataset folder in one of
            the layouts of :func:`detect_layout`. Missing LR is generated from HR and cached in memory.
        scale: integer upscaling factor.
        split: ``"train"`` or ``"val"``; selects the embedded images, and DIV2K train/valid folders when a
            folder holds both. A single benchmark set is returned whole for either split.

    Returns:
        list of :class:`ImagePair`, in file-name order (embedded: list order).

    Raises:
        DataError: see :func:`detect_layout` and :func:`pair_images`; also when an LR image has the wrong
            size for its HR. ImageError for unreadable files.
    """
    scale = _check_scale(scale)
    split = _check_split(split)
    if source is None:
        return [
            _generated_pair(name, img, scale, ("embedded", name), f"{name!r}")
            for name, img in load_embedded(split)
        ]

    layout = detect_layout(source, scale, split)
    jobs_files: list[tuple[Path, Path, int]] = []
    jobs_gen: list[tuple[Path, int]] = []
    order: list[tuple[str, int]] = []
    for hr_dir, lr_dir in layout.parts:
        if lr_dir is None:
            for p in list_images(hr_dir):
                order.append(("gen", len(jobs_gen)))
                jobs_gen.append((p, scale))
            continue
        if hr_dir == lr_dir:  # SelfExSR: HR and LR files side by side
            files = list_images(hr_dir)
            hr_files = [p for p in files if p.stem.endswith("_HR")]
            lr_files = [p for p in files if p.stem.endswith("_LR")]
            if not hr_files:
                raise DataError(f"no *_HR images in {hr_dir}")
            if not lr_files:
                raise DataError(f"no *_LR images in {hr_dir}")
        else:
            hr_files = list_images(hr_dir)
            lr_files = list_images(lr_dir)
        for hr_p, lr_p in pair_images(hr_files, lr_files, scale):
            order.append(("file", len(jobs_files)))
            jobs_files.append((hr_p, lr_p, scale))

    loaded_files = _parallel_map(_load_file_pair, jobs_files)
    loaded_gen = _parallel_map(_load_generated, jobs_gen)
    return [loaded_files[i] if kind == "file" else loaded_gen[i] for kind, i in order]


def split_pairs(pairs: Sequence[ImagePair], parts: int = 2) -> list[list[ImagePair]]:
    """Split images into ``parts`` disjoint subsets by alternation: part k gets ``pairs[k::parts]``.

    The search uses part 0 for architecture steps and part 1 for weight steps (method.md §8.2).

    Raises:
        DataError: fewer images than parts.
    """
    if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)) or parts < 1:
        raise ValueError(f"parts must be a positive integer, got {parts!r}")
    pairs = list(pairs)
    if len(pairs) < parts:
        raise DataError(f"cannot split {len(pairs)} image(s) into {parts} disjoint parts")
    return [pairs[k::parts] for k in range(parts)]


# ------------------------------------------------------------------------------------------------ sampler


def _jsonable_state(state: Any) -> Any:
    """Bit-generator state with integers too large for JSON doubles turned into strings."""
    if isinstance(state, dict):
        return {k: _jsonable_state(v) for k, v in state.items()}
    if isinstance(state, (int, np.integer)) and not isinstance(state, bool):
        v = int(state)
        return str(v) if abs(v) >= 2**53 else v
    return state


def _restore_state(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _restore_state(v) for k, v in state.items()}
    if isinstance(state, str) and re.fullmatch(r"-?\d+", state):
        return int(state)
    return state


#: Patch augmentations (applied identically to LR and HR; bicubic downscaling commutes with all of them):
#: ``hflip`` a horizontal flip with probability 1/2 (the reference code, method.md §8.2); ``dihedral`` one of
#: the 8 rotations/flips of the square, uniformly; ``rgb_perm`` one of the 6 permutations of the colour
#: channels, uniformly (colour balance: most embedded training photos are grey).
AUGMENTS = ("hflip", "dihedral", "rgb_perm")
#: How an image is picked per patch: ``uniform`` (each image equally often, the reference code) or ``area``
#: (in proportion to its number of patch positions, i.e. every patch of the data set equally often).
SAMPLINGS = ("uniform", "area")


class PatchSampler:
    """Random aligned LR/HR patches with augmentation (method.md §8.2; ``augment``, ``sampling``).

    Each draw picks an image (uniformly, or in proportion to its area), a random ``lr_patch x lr_patch`` LR
    window, the aligned ``(lr_patch*s)^2`` HR window, and applies the augmentations to both (default: the
    reference code's horizontal flip with probability 1/2). Randomness comes only
    from the sampler's own ``numpy.random.Generator`` (PCG64 seeded with
    ``SeedSequence(seed, spawn_key=stream)``), so a sampler is deterministic given its seed, and
    :meth:`state_dict` / :meth:`load_state_dict` resume it exactly.

    Derived samplers:

    * :meth:`split` gives disjoint image subsets (``pairs[k::n]``) with their own streams
      (``stream + (1, k)``): the search's architecture and weight halves.
    * :meth:`shard` is for data-parallel training: **every rank keeps all images** and draws from its own
      independent stream (``stream + (2, rank)``), so the ranks' crops differ and each rank's batch is a
      different random sample; the global batch is ``batch * world_size``. (Image-disjoint shards would
      leave too few images per rank on small sets.) ``shard(0, 1)`` is a fresh copy with the same stream.
    """

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        lr_patch: int = 32,
        scale: int = 4,
        seed: int = 0,
        *,
        stream: Sequence[int] = (),
        augment: Sequence[str] = ("hflip",),
        sampling: str = "uniform",
    ) -> None:
        self.scale = _check_scale(scale)
        self.augment = tuple(augment)
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad:
            raise ValueError(f"unknown augmentation(s) {bad}; choose from {AUGMENTS}")
        if "hflip" in self.augment and "dihedral" in self.augment:
            raise ValueError("'dihedral' already includes the horizontal flip; give one of them")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.sampling = sampling
        if isinstance(lr_patch, bool) or not isinstance(lr_patch, (int, np.integer)) or lr_patch < 1:
            raise ValueError(f"lr_patch must be a positive integer, got {lr_patch!r}")
        self.lr_patch = int(lr_patch)
        self.pairs = list(pairs)
        if not self.pairs:
            raise DataError("cannot sample patches from an empty image list")
        s, p = self.scale, self.lr_patch
        for pair in self.pairs:
            lr, hr = np.asarray(pair.lr), np.asarray(pair.hr)
            if lr.dtype != np.uint8 or hr.dtype != np.uint8 or lr.ndim != 3 or hr.ndim != 3:
                raise DataError(f"image {pair.name}: expected uint8 HxWx3 LR and HR arrays")
            h, w = lr.shape[:2]
            if hr.shape[:2] != (h * s, w * s) or hr.shape[2] != lr.shape[2]:
                raise DataError(
                    f"image {pair.name}: HR is {hr.shape[0]}x{hr.shape[1]} but LR {h}x{w} times x{s} "
                    f"is {h * s}x{w * s}"
                )
            if h < p or w < p:
                raise DataError(f"image {pair.name} is {h}x{w} at LR, smaller than the {p}x{p} patch")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.stream = tuple(int(v) for v in stream)
        self._rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=self.stream))
        )
        positions = np.array([(q.lr.shape[0] - p + 1) * (q.lr.shape[1] - p + 1) for q in self.pairs], np.float64)
        self._weights = positions / positions.sum() if sampling == "area" else None

    def _settings(self) -> dict:
        return {"augment": self.augment, "sampling": self.sampling}

    def __len__(self) -> int:
        return len(self.pairs)

    def sample_numpy(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``batch`` aligned patches as uint8 arrays ``B x P x P x 3`` and ``B x Ps x Ps x 3``."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        p, s = self.lr_patch, self.scale
        c = self.pairs[0].lr.shape[2]
        lr_out = np.empty((batch, p, p, c), dtype=np.uint8)
        hr_out = np.empty((batch, p * s, p * s, c), dtype=np.uint8)
        for b in range(batch):
            if self._weights is None:
                pair = self.pairs[int(self._rng.integers(len(self.pairs)))]
            else:
                pair = self.pairs[int(self._rng.choice(len(self.pairs), p=self._weights))]
            h, w = pair.lr.shape[:2]
            y = int(self._rng.integers(h - p + 1))
            x = int(self._rng.integers(w - p + 1))
            lr = pair.lr[y : y + p, x : x + p]
            hr = pair.hr[y * s : (y + p) * s, x * s : (x + p) * s]
            for aug in self.augment:
                lr, hr = self._apply(aug, lr, hr)
            lr_out[b] = lr
            hr_out[b] = hr
        return lr_out, hr_out

    def _apply(self, aug: str, lr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if aug == "hflip":
            return (lr[:, ::-1], hr[:, ::-1]) if self._rng.random() < 0.5 else (lr, hr)
        if aug == "dihedral":
            k, flip = int(self._rng.integers(4)), bool(self._rng.random() < 0.5)
            lr, hr = np.rot90(lr, k, axes=(0, 1)), np.rot90(hr, k, axes=(0, 1))
            return (lr[:, ::-1], hr[:, ::-1]) if flip else (lr, hr)
        perm = self._rng.permutation(3)  # rgb_perm
        return lr[..., perm], hr[..., perm]

    def sample(self, batch: int) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Draw a batch: float32 tensors ``B x 3 x P x P`` (LR) and ``B x 3 x Ps x Ps`` (HR) in [0, 1]."""
        import torch

        lr, hr = self.sample_numpy(batch)

        def conv(a: np.ndarray) -> torch.Tensor:
            t = np.ascontiguousarray(a.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
            return torch.from_numpy(t)

        return conv(lr), conv(hr)

    def state_dict(self) -> dict:
        """JSON-serialisable state (settings plus the bit-generator state)."""
        return {
            "version": 1,
            "seed": self.seed,
            "stream": list(self.stream),
            "n_images": len(self.pairs),
            "names": [p.name for p in self.pairs],
            "lr_patch": self.lr_patch,
            "scale": self.scale,
            "augment": list(self.augment),
            "sampling": self.sampling,
            "bit_generator": _jsonable_state(self._rng.bit_generator.state),
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`. The sampler must be built over the same images and settings."""
        try:
            mine = self.state_dict()
            for key in ("seed", "stream", "n_images", "names", "lr_patch", "scale", "augment", "sampling"):
                theirs = state.get(key, mine[key])
                if isinstance(theirs, (list, tuple)):
                    theirs = list(theirs)
                if theirs != mine[key]:
                    raise DataError(
                        f"sampler state does not match this sampler: {key} is {state[key]!r} in the state "
                        f"but {mine[key]!r} here"
                    )
            bg_state = _restore_state(state["bit_generator"])
            if bg_state.get("bit_generator") != type(self._rng.bit_generator).__name__:
                raise DataError(f"sampler state is for bit generator {bg_state.get('bit_generator')!r}")
            self._rng.bit_generator.state = bg_state
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"invalid sampler state: {exc}") from None

    def split(self, n_parts: int = 2) -> list["PatchSampler"]:
        """Samplers over disjoint image subsets ``pairs[k::n_parts]``, each with its own stream."""
        return [
            PatchSampler(part, self.lr_patch, self.scale, self.seed, stream=(*self.stream, 1, k), **self._settings())
            for k, part in enumerate(split_pairs(self.pairs, n_parts))
        ]

    def shard(self, rank: int, world_size: int) -> "PatchSampler":
        """The sampler for data-parallel ``rank`` of ``world_size`` (same images, own random stream)."""
        if not (isinstance(world_size, (int, np.integer)) and world_size >= 1):
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        if not (isinstance(rank, (int, np.integer)) and 0 <= rank < world_size):
            raise ValueError(f"rank must be in [0, {world_size}), got {rank!r}")
        if world_size == 1:
            return PatchSampler(self.pairs, self.lr_patch, self.scale, self.seed, stream=self.stream, **self._settings())
        return PatchSampler(
            self.pairs, self.lr_patch, self.scale, self.seed, stream=(*self.stream, 2, int(rank)), **self._settings()
        )

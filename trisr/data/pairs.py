"""HR/LR image pairs: embedded scikit-image images and user dataset folders.

Sources (evaluation.md §8-§11):

* ``load_pairs(None, s, split)``: images bundled inside the scikit-image wheel (public domain / CC0, no
  network), LR made with :func:`~trisr.data.resize.bicubic_downscale`.
* ``load_pairs(folder, s, split)``: a folder in one of the known layouts (see
  :func:`trisr.data.layouts.detect_layout`), or a plain folder of HR images whose LR is generated. Generated
  LR is cached in memory only; trisr never writes into user folders.

Every pair holds uint8 ``H x W x 3`` RGB arrays with ``hr.shape[:2] == (lr_h * s, lr_w * s)``: the ground
truth is cropped from the top-left to LR size times the scale (evaluation.md §4).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trisr.data.images import list_images, load_image
from trisr.data.layouts import _check_scale, _check_split, detect_layout
from trisr.data.resize import bicubic_downscale, imresize, modcrop, quantize_uint8
from trisr.errors import DataError

__all__ = [
    "EMBEDDED_TRAIN",
    "EMBEDDED_VAL",
    "LR_GENERATION",
    "ImagePair",
    "load_embedded",
    "pair_images",
    "load_pairs",
    "rescaled_pairs",
    "split_pairs",
    "clear_lr_cache",
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


class _ByteBoundedCache:
    """A thread-safe in-memory cache bounded in bytes, least recently used evicted first (never on disk)."""

    def __init__(self, max_bytes: int, nbytes) -> None:
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self._max_bytes, self._nbytes = max_bytes, nbytes

    def get(self, key: tuple):
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple, value) -> None:
        with self._lock:
            self._items[key] = value
            total = sum(self._nbytes(v) for v in self._items.values())
            while total > self._max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                total -= self._nbytes(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# Generated LR images.
_LR_CACHE = _ByteBoundedCache(2 << 30, lambda lr: lr.nbytes)


def clear_lr_cache() -> None:
    """Forget all generated LR images cached in memory."""
    _LR_CACHE.clear()


def _generated_lr(key: tuple, hr: np.ndarray, scale: int) -> np.ndarray:
    full_key = (*key, scale, LR_GENERATION)
    hit = _LR_CACHE.get(full_key)
    if hit is not None:
        return hit
    lr = bicubic_downscale(hr, scale)
    lr.setflags(write=False)
    _LR_CACHE.put(full_key, lr)
    return lr


def _generated_pair(name: str, hr: np.ndarray, scale: int, key: tuple, where: str) -> ImagePair:
    h, w = hr.shape[:2]
    if h < scale or w < scale:
        raise DataError(f"image {where} is {h}x{w} (HxW), too small to downscale by x{scale}")
    lr = _generated_lr(key, hr, scale).copy()
    return ImagePair(name, np.ascontiguousarray(modcrop(hr, scale)), lr, f"generated: {LR_GENERATION}")


# ----------------------------------------------------------------------------------------------- rescale

# Rescaled training copies, keyed by (name, HR shape, HR digest, factor, scale); built once per process (the
# search builds several samplers over the same photos).
_RESCALED = _ByteBoundedCache(2 << 30, lambda pair: pair.hr.nbytes + pair.lr.nbytes)


def _rescaled(pair: ImagePair, digest: str, factor: float, scale: int) -> ImagePair | None:
    hr = np.asarray(pair.hr)
    key = (pair.name, hr.shape, digest, factor, scale)
    hit = _RESCALED.get(key)
    if hit is not None:
        return hit
    h, w = hr.shape[:2]
    out_h, out_w = int(round(h * factor)), int(round(w * factor))
    if out_h < scale or out_w < scale:
        return None
    small = quantize_uint8(imresize(hr, scale=factor, output_shape=(out_h, out_w)))
    lr = bicubic_downscale(small, scale)
    out = ImagePair(f"{pair.name}@{factor:g}", np.ascontiguousarray(modcrop(small, scale)), lr,
                    f"rescaled x{factor:g} from {pair.name}: {LR_GENERATION}")
    for a in (out.hr, out.lr):
        a.setflags(write=False)
    _RESCALED.put(key, out)
    return out


def rescaled_pairs(pairs: Sequence[ImagePair], factors: Sequence[float], scale: int,
                   min_lr: int = 1) -> list[ImagePair]:
    """``pairs`` followed by copies of each HR image downscaled by every factor in ``factors`` (< 1).

    Scale augmentation for small training sets (FSRCNN, Dong et al. 2016, §4.1: factors 0.9 ... 0.6): a
    downscaled photo is a new, sharper photo of the same scene. Each copy's HR is MATLAB-bicubic (antialiased)
    resized and rounded to uint8, and its LR is made from that HR as embedded LR is (:data:`LR_GENERATION`);
    so for a folder whose LR files carry another degradation, the copies carry the bicubic one. Copies whose
    LR would be smaller than ``min_lr`` pixels on a side are left out. Originals come first, in order; then
    the copies, image by image.
    """
    scale = _check_scale(scale)
    bad = [f for f in factors if not (0.0 < float(f) < 1.0)]
    if bad:
        raise ValueError(f"rescale factors must lie in (0, 1), got {bad}")
    out = list(pairs)
    for pair in pairs:
        digest = hashlib.blake2b(np.ascontiguousarray(pair.hr).data, digest_size=8).hexdigest()  # once per photo
        for f in factors:
            copy = _rescaled(pair, digest, float(f), scale)
            if copy is not None and min(copy.lr.shape[:2]) >= min_lr:
                out.append(copy)
    return out


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



"""Calibration inputs for INT8 post-training quantization: LR patches at the deployment input size, from
the embedded *training* photos (never the held-out ones verification measures on) or from a folder of LR
images (``--calib DIR``: the images the deployed network will see, used as they are)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trisr.errors import DataError

HW = tuple[int, int]
DEFAULT_SAMPLES = 300  # NNCF's default subset size (deployment.md §2.8)


def calibration_images(calib_dir: Path | None, scale: int) -> tuple[list[np.ndarray], str]:
    """uint8 HxWx3 LR images and a description of where they came from."""
    if calib_dir is None:
        from trisr.data.pairs import load_pairs

        pairs = load_pairs(None, scale, "train")
        return [p.lr for p in pairs], f"embedded training photos, LR x{scale} ({', '.join(p.name for p in pairs)})"
    from trisr.data.images import list_images, load_image

    calib_dir = Path(calib_dir)
    if not calib_dir.is_dir():
        raise DataError(f"calibration folder not found: {calib_dir}")
    files = list_images(calib_dir)
    return [load_image(p) for p in files], f"{len(files)} LR images from {calib_dir}"


def calibration_set_digest(calib_dir: Path | None, scale: int) -> str:
    """SHA-256 over the calibration set: for ``--calib DIR`` each image's name, size and content hash (sorted);
    for the embedded photos their names, scale and LR pixels. Any change of the set changes the digest."""
    import hashlib

    h = hashlib.sha256()
    if calib_dir is None:
        from trisr.data.pairs import load_pairs

        h.update(f"embedded:x{int(scale)}\n".encode())
        for p in load_pairs(None, scale, "train"):
            h.update(f"{p.name}:{p.lr.shape}\n".encode())
            h.update(np.ascontiguousarray(p.lr).tobytes())
        return h.hexdigest()
    from trisr.data.images import list_images
    from trisr.export.sidecar import sha256_file

    calib_dir = Path(calib_dir)
    if not calib_dir.is_dir():
        raise DataError(f"calibration folder not found: {calib_dir}")
    h.update(f"dir:x{int(scale)}\n".encode())
    for f in sorted(list_images(calib_dir), key=lambda p: str(p)):
        h.update(f"{Path(f).relative_to(calib_dir)}:{Path(f).stat().st_size}:{sha256_file(Path(f))}\n".encode())
    return h.hexdigest()


def calibration_cache_path(artifact: Path, network_digest: str, calib_digest: str, samples: int, hw: HW) -> Path:
    """The TensorRT INT8 calibration cache for this network, calibration set, sample count and input size:
    ``<artifact>.<net>-<calib>.calib``. A cache made for another network or set is never reused."""
    import hashlib

    key = hashlib.sha256(f"{network_digest}|{calib_digest}|{int(samples)}|{hw[0]}x{hw[1]}".encode()).hexdigest()[:16]
    artifact = Path(artifact)
    return artifact.with_name(f"{artifact.name}.{key}.calib")


def calibration_patches(images: list[np.ndarray], hw: HW, samples: int, seed: int = 0) -> list[np.ndarray]:
    """``samples`` random 1x3xhxw float32 crops in [0, 1], spread evenly over the images; an image smaller
    than the patch is edge-padded."""
    if samples < 1:
        raise DataError("the number of calibration samples must be >= 1")
    if not images:
        raise DataError("no calibration images")
    rng = np.random.default_rng(seed)
    h, w = hw
    out = []
    for i in range(samples):
        img = images[i % len(images)]
        ih, iw = img.shape[:2]
        if ih < h or iw < w:
            img = np.pad(img, ((0, max(0, h - ih)), (0, max(0, w - iw)), (0, 0)), mode="edge")
            ih, iw = img.shape[:2]
        y, x = int(rng.integers(0, ih - h + 1)), int(rng.integers(0, iw - w + 1))
        patch = img[y : y + h, x : x + w]
        out.append(np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0))
    return out

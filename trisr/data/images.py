"""Image file I/O and numpy <-> torch conversion.

Images in trisr are ``H x W x 3`` uint8 RGB numpy arrays. Grey images are replicated to three channels on
load, an alpha channel is dropped, palette images are expanded. Every failure a user can cause (missing
file, directory, corrupt or truncated file, unsupported pixel format) raises :class:`ImageError` with a
one-line message; empty or missing folders raise :class:`DataError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from trisr.errors import DataError, ImageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["IMAGE_SUFFIXES", "load_image", "save_image", "list_images", "to_tensor", "to_uint8"]

#: File suffixes (lower case) that :func:`list_images` treats as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")

# PIL modes we accept and convert to 8-bit RGB. 16-bit, 32-bit integer, float and CMYK images are refused
# rather than converted with a silent, lossy or ambiguous rescaling.
_SUPPORTED_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX"}


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8 RGB.

    Grey and bilevel images become three equal channels; alpha is dropped; palette images are expanded.
    The whole file is decoded, so truncated files fail here rather than later.

    Raises:
        ImageError: the file is missing, is a directory, is not a readable image, is truncated, or has an
            unsupported pixel format (e.g. 16-bit or float).
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"cannot read image {p}: file not found")
    if p.is_dir():
        raise ImageError(f"cannot read image {p}: it is a directory")
    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            if mode not in _SUPPORTED_MODES:
                raise ImageError(
                    f"cannot read image {p}: unsupported pixel format {mode!r} "
                    "(expected 8-bit grey, RGB or RGBA)"
                )
            if mode in ("P", "PA"):
                im_conv = im.convert("RGBA").convert("RGB")
            elif mode == "RGB":
                im_conv = im
            else:
                im_conv = im.convert("RGB")
            arr = np.asarray(im_conv, dtype=np.uint8)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"cannot read image {p}: not a valid image file") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"cannot read image {p}: too large ({exc})") from None
    except PermissionError:
        raise ImageError(f"cannot read image {p}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot read image {p}: corrupt or truncated image file ({exc})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"cannot read image {p}: decoded to unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr)


def save_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write an ``H x W x 3`` (or ``H x W`` grey) uint8 image as PNG, creating parent folders.

    The path must end in ``.png``. Returns the path written.
    """
    p = Path(path)
    arr = np.asarray(img)
    if p.suffix.lower() != ".png":
        raise ImageError(f"cannot write image {p}: only .png output is supported")
    if arr.dtype != np.uint8:
        raise ImageError(f"cannot write image {p}: expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ImageError(f"cannot write image {p}: expected HxWx3 or HxW, got shape {arr.shape}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(arr)).save(p, format="PNG")
    except OSError as exc:
        raise ImageError(f"cannot write image {p}: {exc.strerror or exc}") from None
    return p


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (by suffix, case-insensitive, see :data:`IMAGE_SUFFIXES`) directly in ``folder``.

    Not recursive; hidden files are skipped. Sorted by file name.

    Raises:
        DataError: the folder does not exist, is not a folder, or holds no image files.
    """
    d = Path(folder)
    if not d.exists():
        raise DataError(f"image folder {d} does not exist")
    if not d.is_dir():
        raise DataError(f"{d} is not a folder")
    files = sorted(
        (p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )
    if not files:
        raise DataError(f"image folder {d} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def to_tensor(img: np.ndarray) -> "torch.Tensor":
    """``H x W x 3`` uint8 image -> float32 torch tensor ``1 x 3 x H x W`` in [0, 1]."""
    import torch

    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ImageError(f"to_tensor expects a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"to_tensor expects an HxWx3 image, got shape {arr.shape}")
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(chw).unsqueeze(0)


def to_uint8(tensor: "torch.Tensor") -> np.ndarray:
    """float tensor ``1 x 3 x H x W`` (or ``3 x H x W``) in [0, 1] -> ``H x W x 3`` uint8.

    Multiplies by 255, rounds (half up) and clips to [0, 255]: the 8-bit quantisation that evaluation
    applies to network output before measuring.
    """
    import torch

    t = tensor.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ImageError(f"to_uint8 expects a single image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ImageError(f"to_uint8 expects a 1x3xHxW or 3xHxW tensor, got shape {tuple(tensor.shape)}")
    t = t.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ImageError("cannot convert image tensor to uint8: it contains NaN or infinite values")
    arr = torch.floor(t * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8)
    return np.ascontiguousarray(arr.permute(1, 2, 0).numpy())

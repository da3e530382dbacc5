"""Evaluation of a network on image pairs with the paper conventions (evaluation.md): the network output
is quantised to 8 bits, then PSNR/SSIM are taken on Y (BT.601 studio range) with a border crop of
``scale``; the bicubic baseline is MATLAB-style bicubic upsampling of the same LR."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from trisr.data.pairs import ImagePair
from trisr.data.images import to_tensor, to_uint8
from trisr.data.metrics import evaluate_pair
from trisr.data.resize import bicubic_upscale, quantize_uint8
from trisr.errors import TrisrError
from trisr.export.tiling import to_uint8_image


def check_crop(crop: int | None) -> None:
    """``None`` (crop = scale) or a border crop >= 0."""
    if crop is not None and crop < 0:
        raise TrisrError(f"--crop must be >= 0 pixels, got {crop}")


def validation_images(data, scale: int) -> str:
    """What the ``"val"`` split of ``data`` is, in words, for table titles: held-out images, or, where the folder
    has no validation split (load_pairs then returns the same images for both splits), the training images."""
    from trisr.data.layouts import detect_layout

    if data is None:
        return "held-out images (embedded)"
    try:
        same = detect_layout(data, scale, "train").parts == detect_layout(data, scale, "val").parts
    except TrisrError:
        return f"images of {data}"
    if same:
        return f"training images of {data} (it has no validation split)"
    return f"held-out images of {data}"


def upscale_targets(images, output, scale: int) -> list:
    """The output PNG of each input of ``trisr upscale``: ``output`` itself when it names a .png file (one
    image), else ``output/<stem>_x<scale>.png``. Refuses inputs that would write the same file."""
    from pathlib import Path

    from trisr.checks import check_out_dir

    output = Path(output)
    if output.suffix.lower() == ".png":
        if len(images) != 1:
            raise TrisrError("-o names a .png file but several images were given; pass a folder")
        check_out_dir(output.parent, "-o")
        return [output]
    check_out_dir(output, "-o")
    targets = [output / f"{Path(p).stem}_x{scale}.png" for p in images]
    seen: dict = {}
    for p, t in zip(images, targets):
        if t in seen:
            raise TrisrError(f"{seen[t]} and {p} would write the same output {t.name}; upscale them into separate folders")
        seen[t] = p
    return targets


@torch.no_grad()
def super_resolve(model: torch.nn.Module, lr: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Run ``model`` on one uint8 HxWx3 LR image; returns the quantised uint8 SR image."""
    x = to_tensor(lr).to(device)
    return to_uint8(model(x).clamp(0, 1).cpu())


@torch.no_grad()
def super_resolve_float(model: torch.nn.Module, x: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Run ``model`` on a float 1x3xHxW LR array (not necessarily 8-bit: a corrected image); returns the
    quantised uint8 SR image."""
    y = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)).float().cpu().numpy()
    return to_uint8_image(y)


def evaluate(
    model: torch.nn.Module,
    pairs: list[ImagePair],
    scale: int,
    device: torch.device | str = "cpu",
    crop: int | None = None,
    on_image: Callable[[int], None] | None = None,
) -> dict:
    """Mean and per-image PSNR/SSIM of ``model`` and of bicubic upsampling on ``pairs``."""
    model.eval()
    return evaluate_sr(lambda lr: super_resolve(model, lr, device), pairs, scale, crop, on_image)


def evaluate_sr(
    sr_fn: Callable[[np.ndarray], np.ndarray],
    pairs: list[ImagePair],
    scale: int,
    crop: int | None = None,
    on_image: Callable[[int], None] | None = None,
) -> dict:
    """:func:`evaluate` of any uint8 LR -> uint8 SR function: a PyTorch network, or an exported artifact as it
    ships (``ArtifactModel.upscale``, in tiles of its input size)."""
    check_crop(crop)
    rows = []
    for i, pair in enumerate(pairs):
        sr = sr_fn(pair.lr)
        ours = evaluate_pair(sr, pair.hr, scale, crop=crop)
        bic = evaluate_pair(quantize_uint8(bicubic_upscale(pair.lr, scale)), pair.hr, scale, crop=crop)
        rows.append(
            {
                "name": pair.name,
                "psnr_db": ours["psnr_db"],
                "ssim": ours["ssim"],
                "bicubic_psnr_db": bic["psnr_db"],
                "bicubic_ssim": bic["ssim"],
            }
        )
        if on_image:
            on_image(i + 1)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_db", "ssim", "bicubic_psnr_db", "bicubic_ssim")}
    return {
        **mean,
        "gain_db": mean["psnr_db"] - mean["bicubic_psnr_db"],
        "images": rows,
        "convention": {
            "channel": "Y (BT.601 studio, unrounded)",
            "crop": scale if crop is None else crop,
            "sr_quantized_uint8": True,
            "bicubic": "MATLAB-style imresize, antialias",
        },
    }

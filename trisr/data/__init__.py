"""Data and evaluation: MATLAB-style bicubic resizing, PSNR/SSIM, image I/O, dataset folder layouts
(``layouts``), HR/LR image pairs (``pairs``) and patch sampling (``patches``).

Conventions follow the project's evaluation reference (evaluation.md): LR = MATLAB bicubic x1/s with
antialiasing of the HR modcropped to s, rounded once; metrics on BT.601 studio Y (unrounded, 0..255 scale),
PSNR peak 255, border crop = scale, SSIM = ``ssim_index``.
"""

from trisr.data.images import IMAGE_SUFFIXES, list_images, load_image, save_image, to_tensor, to_uint8
from trisr.data.layouts import DatasetLayout, detect_layout
from trisr.data.pairs import (
    EMBEDDED_TRAIN,
    EMBEDDED_VAL,
    LR_GENERATION,
    ImagePair,
    clear_lr_cache,
    load_embedded,
    load_pairs,
    pair_images,
    rescaled_pairs,
    split_pairs,
)
from trisr.data.patches import AUGMENTS, RESCALE_FACTORS, SAMPLINGS, PatchSampler
from trisr.data.metrics import (
    FULL_RANGE_OFFSET_DB,
    MODES,
    evaluate_pair,
    psnr_db,
    rgb_to_y,
    rgb_to_y_full,
    ssim,
)
from trisr.data.resize import bicubic_downscale, bicubic_upscale, imresize, modcrop, quantize_uint8

__all__ = [
    "AUGMENTS",
    "RESCALE_FACTORS",
    "SAMPLINGS",
    "EMBEDDED_TRAIN",
    "EMBEDDED_VAL",
    "FULL_RANGE_OFFSET_DB",
    "IMAGE_SUFFIXES",
    "LR_GENERATION",
    "MODES",
    "DatasetLayout",
    "ImagePair",
    "PatchSampler",
    "bicubic_downscale",
    "bicubic_upscale",
    "clear_lr_cache",
    "detect_layout",
    "evaluate_pair",
    "imresize",
    "list_images",
    "load_embedded",
    "load_image",
    "load_pairs",
    "modcrop",
    "pair_images",
    "psnr_db",
    "quantize_uint8",
    "rescaled_pairs",
    "rgb_to_y",
    "rgb_to_y_full",
    "save_image",
    "split_pairs",
    "ssim",
    "to_tensor",
    "to_uint8",
]

"""``trisr eval --degrade``: what a bicubic-trained network loses on LR images made with another kernel, and how
much of it the correction filter wins back.

For every HR image and every kernel ``k`` four LR inputs go through the same network, each scored against the
same HR image with the usual conventions (Y, crop = scale, 8-bit output):

* ``matched``: LR made with bicubic (the network's training kernel), the best case;
* ``mismatched``: LR made with ``k``, fed as it is;
* ``known``: LR made with ``k``, corrected with the closed-form filter for ``k``;
* ``estimated``: LR made with ``k``, corrected with the filter for the kernel estimated from that LR image.

LR images are made exactly (:func:`trisr.correction.kernels.degrade`: blur then sample, float64, rounded once to
8 bits). ``recovered`` is the share of the mismatch loss won back: ``(corrected - mismatched) / (matched -
mismatched)`` of the mean PSNR (undefined where there is no loss to recover).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from trisr.correction.estimate import estimate_kernel
from trisr.correction.filter import DEFAULT_ASSUME, CorrectionFilter, correction_filter
from trisr.correction.kernels import KernelSpec, bicubic_kernel, degrade, kernel_array
from trisr.data.metrics import evaluate_pair
from trisr.data.pairs import ImagePair
from trisr.data.resize import quantize_uint8
from trisr.evaluate import super_resolve_float
from trisr.export.tiling import to_nchw

__all__ = ["INPUTS", "degraded_eval", "recovered_share"]

INPUTS = ("matched", "mismatched", "known", "estimated")
#: Below this mean mismatch loss (dB) the recovered share is not reported (it would divide noise by noise).
MIN_LOSS_DB = 0.05


def recovered_share(matched: float, mismatched: float, corrected: float) -> float | None:
    loss = matched - mismatched
    return None if loss < MIN_LOSS_DB else (corrected - mismatched) / loss


def degraded_eval(
    model: torch.nn.Module,
    pairs: list[ImagePair],
    scale: int,
    kernels: list[KernelSpec],
    device: torch.device | str = "cpu",
    crop: int | None = None,
    eps: float | None = None,
    assume: str | None = None,
    on_step: Callable[[], None] | None = None,
) -> dict:
    """Per kernel and image, PSNR/SSIM of the four inputs (module docstring), with means and recovered shares."""
    assume = assume or DEFAULT_ASSUME
    model.eval()
    run = lambda x: super_resolve_float(model, x, device)  # noqa: E731
    b = bicubic_kernel(scale)
    matched_rows = {}
    for pair in pairs:  # the matched input does not depend on k: once per image
        lr = quantize_uint8(degrade(pair.hr, b, scale))
        matched_rows[pair.name] = evaluate_pair(run(to_nchw(lr)), pair.hr, scale, crop=crop)
    results = []
    for spec in kernels:
        filt = correction_filter(spec, scale, eps, assume)
        k = kernel_array(spec, scale)
        rows = []
        for pair in pairs:
            lr = quantize_uint8(degrade(pair.hr, k, scale))
            x = to_nchw(lr)
            t0 = time.perf_counter()
            est = estimate_kernel(lr, scale)
            est_s = time.perf_counter() - t0
            est_filt = correction_filter(est.spec, scale, eps, assume)
            t0 = time.perf_counter()
            known_x = filt.apply_nchw(x)
            known_s = time.perf_counter() - t0
            scores = {
                "matched": matched_rows[pair.name],
                "mismatched": evaluate_pair(run(x), pair.hr, scale, crop=crop),
                "known": evaluate_pair(run(known_x), pair.hr, scale, crop=crop),
                "estimated": evaluate_pair(run(est_filt.apply_nchw(x)), pair.hr, scale, crop=crop),
            }
            mpix = lr.shape[0] * lr.shape[1] / 1e6
            rows.append({
                "name": pair.name,
                **{f"{k_}_psnr_db": v["psnr_db"] for k_, v in scores.items()},
                **{f"{k_}_ssim": v["ssim"] for k_, v in scores.items()},
                "estimate": est.to_dict(),
                "estimate_ms_per_mpix": est_s * 1e3 / mpix,
                "correction_ms_per_mpix": known_s * 1e3 / mpix,
            })
            if on_step:
                on_step()
        mean = {f"{i}_{m}": float(np.mean([r[f"{i}_{m}"] for r in rows])) for i in INPUTS for m in ("psnr_db", "ssim")}
        results.append({
            "kernel": spec.to_dict(),
            "filter": _filter_record(filt),
            "images": rows,
            "mean": mean,
            "recovered_known": recovered_share(mean["matched_psnr_db"], mean["mismatched_psnr_db"], mean["known_psnr_db"]),
            "recovered_estimated": recovered_share(mean["matched_psnr_db"], mean["mismatched_psnr_db"], mean["estimated_psnr_db"]),
        })
    return {
        "scale": scale,
        "eps": eps,  # None: the filter's default (each kernel's filter records the eps it used)
        "assume": assume,
        "kernels": results,
        "convention": {
            "channel": "Y (BT.601 studio, unrounded)",
            "crop": scale if crop is None else crop,
            "sr_quantized_uint8": True,
            "lr": "HR blurred with the kernel and sampled (trisr.correction.kernels.degrade), float64, rounded once to uint8",
        },
    }


def _filter_record(filt: CorrectionFilter) -> dict:
    d = filt.to_dict()
    d.pop("taps")
    return d

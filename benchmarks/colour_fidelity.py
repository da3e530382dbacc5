"""Colour fidelity and gain on colourful photos outside the embedded training and held-out sets.

    python -m benchmarks.colour_fidelity runs/quick-s0 [runs/other ...]

Photos from scikit-image's wheel that trisr never trains or evaluates on (stereo_motorcycle left view,
immunohistochemistry, colorwheel): LR made by trisr's MATLAB-style bicubic; reports the PSNR gain over bicubic
(Y, crop = scale) and the mean per-channel bias of the 8-bit output against HR (R, G, B levels). Prints JSON.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.colour_fidelity ...`` or ``python benchmarks/colour_fidelity.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

import numpy as np


def photos() -> dict:
    import skimage.data as d

    return {"motorcycle_left": lambda: d.stereo_motorcycle()[0], "immunohistochemistry": d.immunohistochemistry,
            "colorwheel": d.colorwheel}


def main() -> None:
    from trisr.data.metrics import evaluate_pair
    from trisr.data.resize import bicubic_downscale, bicubic_upscale, modcrop, quantize_uint8
    from trisr.evaluate import super_resolve
    from trisr.rundir import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    rows = []
    for run in args.runs:
        model = load_model(run)
        s = model.genotype.space.scale
        for name, load in photos().items():
            hr = modcrop(np.asarray(load())[..., :3], s)
            lr = np.clip(np.rint(bicubic_downscale(hr, s)), 0, 255).astype(np.uint8)
            sr = super_resolve(model, lr)
            ours, bic = evaluate_pair(sr, hr, s), evaluate_pair(quantize_uint8(bicubic_upscale(lr, s)), hr, s)
            bias = (sr.astype(np.float64) - hr).reshape(-1, 3).mean(0)
            rows.append({"run": str(run), "photo": name, "gain_db": ours["psnr_db"] - bic["psnr_db"],
                         "bias_rgb_levels": [round(float(b), 3) for b in bias]})
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

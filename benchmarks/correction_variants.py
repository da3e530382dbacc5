"""Design choices of the correction filter, on the development photos (astronaut, camera): colour handling
(every RGB channel vs luminance only, chroma untouched) and border handling (reflect vs replicate).

    python -m benchmarks.correction_variants runs/final/quick-s0 runs/x4-quick

Mean PSNR (Y, crop = scale) of the known-kernel correction per Gaussian; the shipped choice is rgb + reflect.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

import numpy as np

# BT.601 full-range RGB <-> YCbCr (only to split luminance from chroma; exact inverse of each other)
_M = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_MI = np.linalg.inv(_M)


def _apply(filt, x: np.ndarray, colour: str, pad: str) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    def conv(t: np.ndarray) -> np.ndarray:
        tt = torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32))
        c, p = tt.shape[1], filt.size // 2
        w = torch.as_tensor(filt.taps, dtype=torch.float32)[None, None].expand(c, 1, filt.size, filt.size)
        return F.conv2d(F.pad(tt, (p, p, p, p), mode=pad), w, groups=c).numpy()

    if colour == "rgb":
        return conv(x)
    ycc = np.einsum("ij,bjhw->bihw", _M, x)
    ycc[:, :1] = conv(ycc[:, :1])
    return np.einsum("ij,bjhw->bihw", _MI, ycc)


def main() -> None:
    import torch

    from trisr.evaluate import super_resolve_float as sr_float
    from trisr.correction.filter import correction_filter
    from trisr.correction.kernels import degrade, kernel_array, parse_kernel
    from trisr.data.metrics import evaluate_pair
    from trisr.data.pairs import load_pairs
    from trisr.data.resize import quantize_uint8
    from trisr.export.tiling import to_nchw
    from trisr.rundir import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    report = []
    for run in args.runs:
        model = load_model(run, "cpu")
        s = model.arch.scale
        pairs = [p for p in load_pairs(None, s, "train") if p.name in ("astronaut", "camera")]
        for sigma in (0.8, 1.2, 1.6, 2.0):
            spec = parse_kernel(f"gaussian:{sigma * s / 2:g}")
            filt = correction_filter(spec, s)
            k = kernel_array(spec, s)
            row = {"run": str(run), "scale": s, "kernel": spec.describe()}
            for colour in ("rgb", "y"):
                for pad in ("reflect", "replicate"):
                    ps = [evaluate_pair(sr_float(model, _apply(filt, to_nchw(quantize_uint8(degrade(p.hr, k, s))), colour, pad)), p.hr, s)["psnr_db"]
                          for p in pairs]
                    row[f"{colour}+{pad}"] = float(np.mean(ps))
            report.append(row)
            print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

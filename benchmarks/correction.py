"""The correction filter on mismatched Gaussian LR: matched / mismatched / known / estimated PSNR per run.

    # choose eps and the closed form's assumption on the development photos (never the held-out ones)
    python -m benchmarks.correction runs/final/quick-s0 --split dev --sweep --out runs/correction/dev-x2.json
    # the table of docs/benchmarks.md, on the held-out photos, with the defaults
    python -m benchmarks.correction runs/final/quick-s0 runs/x4-quick --out runs/correction/val.json

The kernels: bicubic (no mismatch: what the blind estimate costs there), and Gaussians of sigma in HR pixels at x2 and scaled by s/2 at other scales (0.8, 1.2, 1.6, 2.0 at x2 are 1.6 ... 4.0 at x4).
The split ``dev`` is the embedded training photos astronaut and camera (as in benchmarks.recipe_ablation);
``val`` the held-out photos. Also reports the truncation cost (finite filter against the untruncated closed
form, applied by FFT) and times per LR megapixel. Run from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

import numpy as np

SIGMAS_X2 = (0.8, 1.2, 1.6, 2.0)


def _pairs(split: str, scale: int):
    from trisr.data.pairs import load_pairs

    if split == "val":
        return load_pairs(None, scale, "val")
    return [p for p in load_pairs(None, scale, "train") if p.name in ("astronaut", "camera")]


def _truncation_cost(model, pairs, scale, specs, eps, assume) -> list[dict]:
    """SR PSNR with the finite filter against the untruncated closed form (circular FFT filtering of a
    reflect-padded image, so borders match)."""
    from trisr.evaluate import super_resolve_float as sr_float
    from trisr.correction.filter import closed_form, correction_filter
    from trisr.correction.kernels import degrade, kernel_array
    from trisr.data.metrics import evaluate_pair
    from trisr.data.resize import quantize_uint8
    from trisr.export.tiling import to_nchw

    out = []
    for spec in specs:
        filt = correction_filter(spec, scale, eps, assume)
        full = closed_form(kernel_array(spec, scale), scale, filt.eps, assume)
        full = full / full.sum()
        d = []
        for pair in pairs:
            x = to_nchw(quantize_uint8(degrade(pair.hr, kernel_array(spec, scale), scale)))
            p = full.shape[0] // 2
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge")
            H = np.fft.fft2(np.roll(np.pad(full, ((0, xp.shape[2] - full.shape[0]), (0, xp.shape[3] - full.shape[1]))), (-p, -p), (0, 1)))
            xf = np.fft.ifft2(np.fft.fft2(xp) * H).real[:, :, p : p + x.shape[2], p : p + x.shape[3]]
            a = evaluate_pair(sr_float(model, filt.apply_nchw(x)), pair.hr, scale)["psnr_db"]
            b = evaluate_pair(sr_float(model, xf), pair.hr, scale)["psnr_db"]
            d.append(b - a)
        out.append({"kernel": spec.describe(), "size": filt.size, "tail_l1": filt.tail_l1, "cost_db_mean": float(np.mean(d)),
                    "cost_db_max": float(np.max(d))})
    return out


def main() -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    from trisr.correction.evaluate import degraded_eval
    import trisr.correction.filter as cf
    from trisr.correction.filter import DEFAULT_ASSUME
    from trisr.correction.kernels import parse_kernel
    from trisr.rundir import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--split", choices=("dev", "val"), default="val")
    ap.add_argument("--sweep", action="store_true", help="every assumption x eps in --eps")
    ap.add_argument("--eps", default="1e-4,1e-3,1e-2", help="--sweep: the eps values")
    ap.add_argument("--assume", default=",".join(("kernel", "bicubic")), help="--sweep: the assumptions")
    ap.add_argument("--tail", type=float, help="L1 tail cut away (default: the filter's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=int, default=160, help="console width of the tables")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.tail is not None:
        cf.DEFAULT_TAIL = args.tail
    console = Console(stderr=True, width=args.width)
    settings = [(a, float(e)) for a in args.assume.split(",") for e in args.eps.split(",")] if args.sweep else [(DEFAULT_ASSUME, None)]
    report = []
    for run in args.runs:
        model = load_model(run, "cpu")
        scale = model.arch.scale
        pairs = _pairs(args.split, scale)
        specs = [parse_kernel("bicubic")] + [parse_kernel(f"gaussian:{s * scale / 2:g}") for s in SIGMAS_X2]
        for assume, eps in settings:
            res = degraded_eval(model, pairs, scale, specs, eps=eps, assume=assume)
            trunc = _truncation_cost(model, pairs, scale, specs[1:], eps, assume) if not args.sweep else None
            table = Table(title=f"{run} x{scale} {args.split}: assume={assume} eps={'default' if eps is None else format(eps, 'g')}")
            for col in ("kernel", "filter px", "matched", "mismatched", "known", "estimated", "recovered known", "recovered est.", "est. sigma"):
                table.add_column(col)
            for k in res["kernels"]:
                m = k["mean"]
                rk, re_ = k["recovered_known"], k["recovered_estimated"]
                table.add_row(k["kernel"]["spec"], str(k["filter"]["size"]), *(f"{m[f'{i}_psnr_db']:.3f}" for i in ("matched", "mismatched", "known", "estimated")),
                              "-" if rk is None else f"{rk:.0%}", "-" if re_ is None else f"{re_:.0%}",
                              ", ".join(f"{r['estimate']['sigma_px']:.2f}" for r in k["images"]))
            console.print(table)
            report.append({"run": str(run), "scale": scale, "split": args.split, "assume": assume, "eps": eps, "result": res, "truncation": trunc})
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1))
            if trunc:
                console.print("truncation cost (untruncated - finite, dB):", ", ".join(f"{t['kernel']} {t['size']}px {t['cost_db_mean']:+.4f}" for t in trunc))


if __name__ == "__main__":
    main()

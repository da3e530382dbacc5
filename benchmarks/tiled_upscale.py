"""Peak memory and wall time of upscaling one large image with a run folder's network: one pass vs tiles.

    python -m benchmarks.tiled_upscale runs/study-cpu/runs/searched-20ms --lr 1000x1000,2000x2000 --repeats 3
    python -m benchmarks.tiled_upscale --lr 2000x2000                # a freshly initialised quick-space network

The LR image is scikit-image's astronaut (512x512) tiled up to each size (weights and content do not change
memory). Each measurement runs in a fresh process (``--child``), so its peak resident memory (``ru_maxrss``)
is its own: model, image, input and output buffers included (``rss_ready_mib`` is the process after loading
them, before the upscale). Wall time is the upscale alone (``trisr.evaluate.super_resolve`` for one pass,
``trisr.tiled.super_resolve_tiled`` for tiles, both to the quantised 8-bit image). The tiled and one-pass
outputs of the first repeat are compared pixel for pixel. Prints a Markdown table on stderr, JSON on stdout.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.tiled_upscale ...`` or ``python benchmarks/tiled_upscale.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time

MODES = ("one-pass", "tiled")


def load_network(run: str | None):
    """The run folder's network, or a freshly initialised quick-space network (genotype drawn with seed 0)."""
    import torch

    if run:
        from trisr.rundir import load_model

        return load_model(run)
    from trisr.search.config import preset
    from trisr.space.derived import DerivedNet
    from trisr.space.sample import sample_genotype

    torch.manual_seed(0)
    return DerivedNet(sample_genotype(preset("quick").space, 0)).eval()


def large_image(hw: tuple[int, int]):
    import numpy as np
    import skimage.data

    photo = skimage.data.astronaut()[:, :, :3]
    reps = (-(-hw[0] // photo.shape[0]), -(-hw[1] // photo.shape[1]), 1)
    return np.ascontiguousarray(np.tile(photo, reps)[: hw[0], : hw[1]])


def child(args) -> None:
    """One upscale in this process; prints a JSON line."""
    import numpy as np
    import torch

    from trisr.cli.options import parse_hw
    from trisr.evaluate import super_resolve
    from trisr.tiled import plan_tiles, super_resolve_tiled

    torch.set_num_threads(args.threads)
    model = load_network(args.run)
    lr = large_image(parse_hw(args.lr))
    plan = plan_tiles(model, parse_hw(args.tile)) if args.child == "tiled" else None
    rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    sr = super_resolve(model, lr) if plan is None else super_resolve_tiled(model, lr, plan)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.save:
        np.save(args.save, sr)
    print(json.dumps({
        "mode": args.child, "lr": args.lr, "wall_s": wall, "peak_rss_mib": peak / 1024,
        "rss_ready_mib": rss_ready / 1024, "tiles": 1 if plan is None else plan.count(lr.shape[:2]),
        "halo_px": None if plan is None else plan.halo, "exact": None if plan is None else plan.exact,
    }))


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(v: dict, f: str) -> str:
    return f"{v['median']:{f}} ({v['min']:{f}}–{v['max']:{f}})"


def run_child(args, mode: str, lr: str, save: str | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.tiled_upscale", "--child", mode, "--lr", lr, "--tile", args.tile,
           "--threads", str(args.threads)] + ([args.run] if args.run else []) + (["--save", save] if save else [])
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="run folder (default: a freshly initialised quick-space network)")
    ap.add_argument("--lr", default="2000x2000", help="LR sizes HxW, comma-separated")
    ap.add_argument("--tile", default="256x256")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    import numpy as np

    report = {"run": args.run or "fresh quick-space network (seed 0)", "tile": args.tile, "threads": args.threads,
              "load_average": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for lr in args.lr.split(","):
            outs = {m: str(Path(tmp) / f"{m}.npy") for m in MODES}
            samples = {m: [] for m in MODES}
            for rep in range(args.repeats):  # modes interleaved, so a slow spell of the machine hits both
                for m in MODES:
                    samples[m].append(run_child(args, m, lr, outs[m] if rep == 0 else None))
            diff = np.abs(np.load(outs["tiled"]).astype(np.int16) - np.load(outs["one-pass"]))
            for m in MODES:
                first = samples[m][0]
                report["rows"].append({
                    "lr": lr, "mode": m, "tiles": first["tiles"], "halo_px": first["halo_px"], "exact": first["exact"],
                    "wall_s": spread([x["wall_s"] for x in samples[m]]),
                    "peak_rss_mib": spread([x["peak_rss_mib"] for x in samples[m]]),
                    "rss_ready_mib": first["rss_ready_mib"],
                    "max_abs_diff_vs_one_pass_levels": int(diff.max()) if m == "tiled" else 0,
                    "pixels_differing": float((diff > 0).mean()) if m == "tiled" else 0.0,
                })
    report["load_average_end"] = os.getloadavg()
    print("| LR | mode | tiles | wall s | peak RSS MiB | RSS ready MiB |\n|---|---|---|---|---|---|", file=sys.stderr)
    for r in report["rows"]:
        cells = [r["lr"], r["mode"], r["tiles"], fmt(r["wall_s"], ".2f"), fmt(r["peak_rss_mib"], ".0f"),
                 f"{r['rss_ready_mib']:.0f}"]
        print("| " + " | ".join(map(str, cells)) + " |", file=sys.stderr)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

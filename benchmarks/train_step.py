"""Fine-tune step time of derived networks in NCHW against NHWC (channels_last), side by side.

    python -m benchmarks.train_step --preset quick --networks 4 --rounds 5 --steps 20
    python -m benchmarks.train_step --preset cpu --genotypes runs/a/genotype.json runs/b/genotype.json

Draws ``--networks`` random genotypes of the preset's space (``trisr.space.sample.sample_genotype``, seeded),
and for each builds two identical copies, one per memory format, with their own Adam. One step = forward,
L1 loss, backward, Adam step at the preset's fine-tune batch and LR patch (random tensors: the data do not
change the arithmetic). Rounds alternate between the two formats so that a slow spell of the machine hits
both; the figure per format is the median of the round means, with min and max. This is what
``trisr.training.training_memory_format`` rests on.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.train_step ...`` or ``python benchmarks/train_step.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from trisr.rundir import build_model
from trisr.search.config import preset
from trisr.space.count import count_macs
from trisr.space.genotype import Genotype
from trisr.space.sample import sample_genotype

FORMATS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}


def make_step(genotype, fmt: torch.memory_format, batch: int, patch: int, scale: int):
    torch.manual_seed(0)
    model = build_model(genotype).to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lr = torch.rand(batch, 3, patch, patch).contiguous(memory_format=fmt)
    hr = torch.rand(batch, 3, patch * scale, patch * scale).contiguous(memory_format=fmt)

    def step() -> None:
        loss = F.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--networks", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="steps per round")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--genotypes", type=Path, nargs="+", help="time these genotype.json files instead of random draws")
    args = ap.parse_args()
    cfg = preset(args.preset)
    phase, scale = cfg.finetune, cfg.space.scale
    rng = np.random.default_rng(args.seed)
    rows = []
    genotypes = ([Genotype.load(f) for f in args.genotypes] if args.genotypes
                 else [sample_genotype(cfg.space, rng) for _ in range(args.networks)])
    for g in genotypes:
        steps = {k: make_step(g, f, phase.batch_size, cfg.lr_patch, scale) for k, f in FORMATS.items()}
        for step in steps.values():  # untimed: allocator, oneDNN primitive cache
            for _ in range(5):
                step()
        ms: dict[str, list[float]] = {k: [] for k in FORMATS}
        for _ in range(args.rounds):
            for k, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                ms[k].append((time.perf_counter() - t0) / args.steps * 1e3)
        row = {
            "path": g.path,
            "gmac_256": count_macs(build_model(g), (1, 3, 256, 256)) / 1e9,
            **{f"{k}_step_ms": {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in ms.items()},
        }
        row["speedup"] = row["nchw_step_ms"]["median"] / row["nhwc_step_ms"]["median"]
        rows.append(row)
        print(f"{g.path:6s} {row['gmac_256']:5.2f} GMAC  nchw {row['nchw_step_ms']['median']:6.1f} ms  "
              f"nhwc {row['nhwc_step_ms']['median']:6.1f} ms  x{row['speedup']:.2f}", file=sys.stderr, flush=True)
    print(json.dumps({"preset": args.preset, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "batch": phase.batch_size, "lr_patch": cfg.lr_patch, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

"""Is the search better than chance? Train random architectures of the same space in the same cost band,
and the searched architecture from scratch, with the run's own fine-tuning recipe, steps and seed.

    python -m benchmarks.search_vs_random runs/search-quick-x2 --random 5 --out runs/vs-random

Rows: the searched network (inherited weights, as the search delivered it), the searched genotype from
scratch, and each random pick from scratch and with weights inherited from the run's supernet. Prints a table
and the mean and best held-out PSNR per group; JSON in OUT/baselines.json and OUT/report.json.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.search_vs_random ...`` or ``python benchmarks/search_vs_random.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

import numpy as np


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from trisr.baselines import INITS, baselines_for_run
    from trisr.progress import RichReporter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--random", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="seed of the random draws (training uses the run's seed)")
    ap.add_argument("--inits", default=",".join(INITS))
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    console = Console(stderr=True)
    rows = baselines_for_run(args.run, args.out, args.random, args.seed, tuple(args.inits.split(",")), args.data, RichReporter(console))
    table = Table(title=f"{args.run}: searched vs random at the same cost")
    for col in ("name", "init", "path", "cost", "params", "PSNR dB", "gain dB", "SSIM"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["init"], r["path"], f"{r['cost']:.3g} {r['cost_unit']}", str(r["params"]),
                      f"{r['psnr_db']:.3f}", f"{r['gain_db']:+.3f}", f"{r['ssim']:.4f}")
    console.print(table)
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(f"{r['kind']}/{r['init']}", []).append(r["psnr_db"])
    report = {k: {"n": len(v), "mean_psnr_db": float(np.mean(v)), "best_psnr_db": float(np.max(v)),
                  "std_psnr_db": float(np.std(v))} for k, v in groups.items()}
    (args.out / "report.json").write_text(json.dumps({"groups": report, "rows": rows}, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

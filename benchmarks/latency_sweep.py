"""Latency-budget sweep: ``trisr search --latency-ms B`` for several budgets on one target, then a table
of predicted / measured latency, measured/budget and held-out PSNR.

    python -m benchmarks.latency_sweep --budgets 15 30 60 120 --backend onnxruntime --out runs/sweep

Every search reuses the cached latency table under profiles/ (profiled once if missing). Prints JSON.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.latency_sweep ...`` or ``python benchmarks/latency_sweep.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import subprocess


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", type=float, nargs="+", required=True)
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--out", type=Path, default=Path("runs/sweep"))
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more trisr search flags")
    args = ap.parse_args()
    rows = []
    for budget in args.budgets:
        out = args.out / f"{args.backend}-{budget:g}ms"
        cmd = [sys.executable, "-m", "trisr.cli", "search", "--preset", args.preset, "--latency-ms", str(budget),
               "--backend", args.backend, "--out", str(out), "--json", "--no-fail", *args.extra]
        if (out / "checkpoint.pt").exists():
            cmd.append("--resume")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            rows.append({"budget_ms": budget, "error": f"exit {proc.returncode}"})
            continue
        s = json.loads(proc.stdout)
        lat = s["latency"]
        rows.append({
            "budget_ms": budget,
            "path": s["genotype"]["path"],
            "params": s["params"],
            "macs_g": s["macs"] / 1e9,
            "predicted_ms": lat["predicted_ms"],
            "measured_ms": lat["measured"]["median_ms"],
            "measured_p90_ms": lat["measured"]["p90_ms"],
            "measured_over_budget": lat["measured"]["median_ms"] / budget,
            "verdict": lat["verdict"],
            "psnr_db": s["metrics"]["psnr_db"],
            "bicubic_psnr_db": s["metrics"]["bicubic_psnr_db"],
            "wall_s": s["wall_time_s"]["total"],
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""Deployment benchmark for docs/benchmarks.md: PyTorch eager vs ONNX Runtime vs OpenVINO on this CPU.

    python -m benchmarks.export_bench runs/search-quick-x2                    # the documented setting
    python -m benchmarks.export_bench runs/search-quick-x2 --quick            # smoke test (seconds)

In one process, with the same thread count for every runtime (default 2): export and verify the run's
network (ONNX fp32, OpenVINO fp32 / fp16 / int8), time every artifact beside PyTorch eager at 256x256 LR in
interleaved repetitions (``trisr bench``'s loop), and report

* latency median / p90 and the speed-up of each runtime over PyTorch eager;
* the PSNR kept by each precision (held-out images, against the PyTorch output and the ground truth);
* how close the fastest runtime comes to the machine's attainable throughput: the network's achieved
  GFLOP/s (2 x MACs / latency) against a large float32 matrix product (``torch.mm`` n x n) measured in the
  same run with the same threads.

Prints a Markdown table on stderr and the full JSON report on stdout (or ``--json-out``). Run it on a quiet
machine: the load average is recorded, and a warning is printed when other processes are busy.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.export_bench ...`` or ``python benchmarks/export_bench.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import time


def matmul_gflop_s(n: int, threads: int, window_s: float, reps: int) -> dict:
    """Attainable float32 throughput: 2 n^3 / latency of ``torch.mm`` on n x n matrices."""
    import torch

    from trisr.export.bench import bench_protocol
    from trisr.runtime.timing import measure

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    medians = [measure(lambda: torch.mm(a, b, out=out), bench_protocol(window_s)).median_ms for _ in range(reps)]
    best = min(medians)  # attainable: the best repetition
    return {"n": n, "threads": threads, "rep_medians_ms": medians, "best_ms": best, "gflop_s": 2.0 * n**3 / (best * 1e6)}


def summarize(report: dict, matmul: dict) -> list[dict]:
    rows = [r for r in report["rows"] if r["latency_median_ms"] is not None]
    torch_ms = next(r["latency_median_ms"] for r in rows if r["format"] == "torch")
    out = []
    for r in rows:
        out.append({
            "runtime": r["format"] if r["format"] != "onnx" else "onnxruntime",
            "precision": r["precision"],
            "status": r["status"],
            "latency_median_ms": r["latency_median_ms"],
            "latency_p90_ms": r["latency_p90_ms"],
            "speedup_vs_torch": torch_ms / r["latency_median_ms"],
            "psnr_db": r["psnr_db"],
            "psnr_loss_db": r["psnr_loss_db"],
            "psnr_vs_torch_db": r["psnr_vs_torch_db"],
            "max_abs": r["max_abs"],
            "size_mb": r["size_mb"],
            "achieved_gflop_s": r["achieved_gflop_s"],
            "fraction_of_matmul": r["achieved_gflop_s"] / matmul["gflop_s"],
        })
    return out


def markdown(summary: list[dict], report: dict, matmul: dict) -> str:
    h, w = report["input"]["shape"][2:]
    lines = [
        f"{Path(report['run']).name}: x{report['scale']}, {report['params']:,} params, {report['macs'] / 1e9:.3f} GMAC "
        f"@ {h}x{w} LR; {report['device']['cpu']}, {report['device']['threads']} threads; "
        f"torch.mm {matmul['n']}x{matmul['n']} fp32: {matmul['gflop_s']:.1f} GFLOP/s",
        "",
        "| runtime | precision | median ms | p90 ms | × torch eager | PSNR dB | ΔPSNR dB | PSNR vs torch dB | GFLOP/s | % of matmul |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        dpsnr = "-" if s["psnr_loss_db"] is None else f"{-s['psnr_loss_db']:+.3f}"
        vs = "-" if s["psnr_vs_torch_db"] is None else f"{s['psnr_vs_torch_db']:.1f}"
        lines.append(
            f"| {s['runtime']} | {s['precision']} | {s['latency_median_ms']:.2f} | {s['latency_p90_ms']:.2f} | "
            f"{s['speedup_vs_torch']:.2f} | {s['psnr_db']:.3f} | {dpsnr} | {vs} | {s['achieved_gflop_s']:.1f} | "
            f"{100 * s['fraction_of_matmul']:.0f} % |"
        )
    fastest = min(summary, key=lambda s: s["latency_median_ms"])
    lines += ["", f"fastest: {fastest['runtime']} {fastest['precision']} at {fastest['achieved_gflop_s']:.1f} GFLOP/s = "
              f"{100 * fastest['fraction_of_matmul']:.0f} % of the matrix product"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder (e.g. runs/search-quick-x2)")
    ap.add_argument("--shape", default="256x256", help="LR input HxW (default 256x256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions per runtime")
    ap.add_argument("--time-s", type=float, default=1.0, help="timed seconds per repetition")
    ap.add_argument("--calib-samples", type=int, default=300)
    ap.add_argument("--precision", default="fp32,fp16,int8", help="OpenVINO precisions (int8 needs nncf)")
    ap.add_argument("--matmul-n", type=int, default=2048)
    ap.add_argument("--out", type=Path, default=Path("export"), help="where the artifacts go")
    ap.add_argument("--json-out", type=Path, default=None, help="write the JSON report here instead of stdout")
    ap.add_argument("--quick", action="store_true", help="tiny setting to check the script runs (numbers meaningless)")
    args = ap.parse_args(argv)
    if args.quick:
        args.shape, args.reps, args.time_s, args.calib_samples, args.matmul_n = "64x64", 1, 0.05, 16, 256

    from trisr.export.bench import bench_protocol, bench_run
    from trisr.export.exporters import ExportOptions
    from trisr.export.formats import get_format
    from trisr.export.shapes import InputSpec

    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"warning: load average {load1:.2f}: other processes are running; latencies will be noisy", file=sys.stderr)
    h, w = (int(v) for v in args.shape.lower().split("x"))
    precisions = [p for p in args.precision.split(",") if p]
    if "fp32" not in precisions:
        precisions.insert(0, "fp32")  # ONNX Runtime and the PSNR reference are fp32
    t0 = time.perf_counter()
    report = bench_run(
        args.run, [get_format("onnx"), get_format("openvino")], precisions, InputSpec((h, w)), "cpu",
        args.threads, bench_protocol(args.time_s), args.reps, args.out, None,
        ExportOptions(calib_samples=args.calib_samples), log=lambda m: print(m, file=sys.stderr),
    )
    matmul = matmul_gflop_s(args.matmul_n, args.threads, args.time_s, args.reps)
    summary = summarize(report, matmul)
    result = {"schema_version": 1, "kind": "trisr-export-benchmark", "command": " ".join(sys.argv),
              "quick": args.quick, "summary": summary, "matmul": matmul, "bench": report,
              "wall_s": time.perf_counter() - t0, "loadavg_end": os.getloadavg()}
    print(markdown(summary, report, matmul), file=sys.stderr)
    text = json.dumps(result, indent=2, default=str)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

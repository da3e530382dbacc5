"""``trisr bench``: a run in every available format beside PyTorch eager.

Exit status: 0 when every artifact verified, 1 when an export or a verification failed, 2 for a user error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from trisr.cli.errors import EXIT_CHECK_FAILED, err_console, user_errors
from trisr.cli.options import Target, deploy_device, input_spec, print_json
from trisr.errors import TrisrError
from trisr.export.formats import PRECISIONS, help_text, parse_format_list


def _precisions(text: Optional[str]) -> list[str] | None:
    if text is None:
        return None
    out = [p.strip().lower() for p in text.split(",") if p.strip()]
    for p in out:
        if p not in PRECISIONS:
            raise TrisrError(f"unknown precision {p!r}; choose {', '.join(PRECISIONS)}")
    return out


def bench_target(target: Target) -> str:
    """The target's name, once torch is known to see the GPU the baseline and the GPU formats need."""
    import torch

    if target is not Target.cpu and not torch.cuda.is_available():
        raise TrisrError(f"--device {target.value} asked for, but torch sees no CUDA GPU")
    return target.value


@user_errors
def bench_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    formats: Optional[str] = typer.Option(None, "--format", "-f", help=f"Comma list of formats (default: all). {help_text()}."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="Comma list of precisions (default: each format's default)."),
    shape: str = typer.Option("256x256", "--shape", help="LR input HxW (static artifacts; latency measured at it)."),
    device: Optional[Target] = typer.Option(None, "--device", help="Deployment device the artifacts are benchmarked on: cpu, cuda or jetson (default cpu; the preferred device of each format); the PyTorch baseline runs on its CPU or GPU."),
    target_alias: Optional[Target] = typer.Option(None, "--target", hidden=True, help="Old name of --device."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads of every runtime (default: all cores)."),
    reps: int = typer.Option(5, "--reps", help="Timing repetitions per row, interleaved across rows (median of their medians)."),
    time_s: float = typer.Option(0.5, "--time-s", help="Minimum timed seconds per repetition (after its warm-up)."),
    out: Path = typer.Option(Path("export"), "--out", help="Where the benchmarked artifacts are written."),
    lut: Optional[Path] = typer.Option(None, "--lut", help="Latency table (trisr profile) for the predicted-latency column."),
    calib_samples: int = typer.Option(300, "--calib-samples", help="INT8 calibration patches."),
    host: Optional[str] = typer.Option(None, "--host", help="Benchmark on user@address over SSH (trisr installed there)."),
    ssh_config: Optional[Path] = typer.Option(None, "--ssh-config", help="ssh -F FILE for --host."),
    remote_trisr: str = typer.Option("trisr", "--remote-trisr", help="Shell command that runs trisr on the remote host."),
    peak_n: int = typer.Option(2048, "--peak-n", help="Size n of the n^3 matrix product timed in every runtime/precision "
        "of the rows, the reference of the '% attain.' column (0: skip)."),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Also measure every row with the correction filter for "
        "this kernel folded in (gaussian:SIGMA | aniso:S1,S2,THETA | FILE.npy), interleaved with the plain rows."),
    qat: Optional[Path] = typer.Option(None, "--qat", help="A quantization-aware fine-tuned run of RUN (trisr train RUN --qat): "
        "its int8 rows beside RUN's own (post-training) int8 rows, ΔPSNR against RUN's PyTorch fp32."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Benchmark a run in every available format beside PyTorch eager: status, size, PSNR, latency, LUT error."""
    from rich.console import Console

    from trisr.export.bench import TABLE_WIDTH, bench_protocol, bench_run, failed_rows, reasons, render_table
    from trisr.export.exporters import ExportOptions

    target = deploy_device(device, target_alias)
    fmts = parse_format_list(formats)
    precisions = _precisions(precision)
    spec = input_spec(shape)
    if time_s <= 0:
        raise TrisrError("--time-s must be > 0")
    protocol = bench_protocol(time_s)
    correction = None
    if kernel is not None:
        from trisr.correction.kernels import parse_kernel

        correction = parse_kernel(kernel, allow_estimate=False)
    if host is not None:
        if kernel is not None or qat is not None:
            raise TrisrError("--kernel and --qat are measured locally; run trisr bench on the host itself")
        from trisr.profile.remote import bench_remote

        if lut is not None:
            raise TrisrError("--lut is a local file; with --host, compare against the remote table afterwards")
        # --target: the alias every trisr release knows (an older trisr on the device has no deployment --device).
        remote_args = ["--peak-n", str(peak_n), "--shape", shape, "--target", target.value, "--reps", str(reps), "--time-s", str(time_s), "--calib-samples", str(calib_samples)]
        for flag, value in (("--format", formats), ("--precision", precision), ("--threads", threads)):
            if value is not None:
                remote_args += [flag, str(value)]
        report = bench_remote(host, run, remote_args, remote_trisr, ssh_config)
        report["host"] = host
    else:
        report = bench_run(
            run, fmts, precisions, spec, bench_target(target), threads, protocol, reps, out, lut,
            ExportOptions(calib_samples=calib_samples), log=lambda m: err_console.print(f"[dim]{m}[/]", highlight=False),
            correction=correction, peak_n=peak_n or None, qat_run=qat,
        )
    # Its own console: rich squeezes tables to 80 columns when stderr is not a terminal.
    Console(stderr=True, width=max(err_console.width, TABLE_WIDTH)).print(render_table(report))
    for line in reasons(report):
        err_console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    if report["lut"] is None:
        err_console.print(f"  LUT column: {report['lut_note']}", highlight=False)
    if as_json:
        print_json(report)
    if failed_rows(report):
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_cmd)

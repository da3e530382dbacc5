"""``trisr export`` and ``trisr bench``, registered on the main typer app by :func:`register`.

Exit status: 0 when every artifact verified, 1 when an export or a verification failed (reported, with
the numbers), 2 for a user error (one line: unknown format, missing runtime with its install hint, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from trisr.errors import TrisrError
from trisr.export.formats import PRECISIONS, help_text, parse_format_list

EXIT_CHECK_FAILED = 1


def _spec(shape: str, dynamic: bool, min_hw: Optional[str], opt_hw: Optional[str], max_hw: Optional[str]):
    from trisr.cli import _resolution
    from trisr.export.shapes import InputSpec

    if not dynamic and (min_hw or opt_hw or max_hw):
        raise TrisrError("--min/--opt/--max describe a dynamic input; add --dynamic")
    base = _resolution(opt_hw or shape)
    if not dynamic:
        return InputSpec(base)
    return InputSpec(base, True, _resolution(min_hw) if min_hw else None, _resolution(max_hw) if max_hw else None)


def _precisions(text: Optional[str]) -> list[str] | None:
    if text is None:
        return None
    out = [p.strip().lower() for p in text.split(",") if p.strip()]
    for p in out:
        if p not in PRECISIONS:
            raise TrisrError(f"unknown precision {p!r}; choose {', '.join(PRECISIONS)}")
    return out


def _keep_float(text: Optional[str]) -> tuple[str, ...]:
    if text is None:
        return ("first", "last")
    parts = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    if parts == ("none",):
        return ()
    if not parts or any(p not in ("first", "last") for p in parts):
        raise TrisrError(f"--keep-float takes first, last, first,last or none, not {text!r}")
    return parts


def _device_arg(device: str) -> str:
    from trisr.cli import _device

    return _device(device)


def export_cmd(
    run: Path = typer.Argument(..., help="Run folder (genotype.json + model.safetensors)."),
    fmt_name: str = typer.Option(..., "--format", "-f", help=f"Artifact format: {help_text()} (* = default precision)."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="fp32 | fp16 | int8 (default: the format's, see --format)."),
    shape: str = typer.Option("256x256", "--shape", help="LR input HxW of a static artifact (default 256x256)."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Dynamic height/width (range --min..--max, optimised for --opt)."),
    min_hw: Optional[str] = typer.Option(None, "--min", help="Smallest LR HxW of a dynamic artifact (default 32x32)."),
    opt_hw: Optional[str] = typer.Option(None, "--opt", help="LR HxW a dynamic artifact is optimised for (default --shape)."),
    max_hw: Optional[str] = typer.Option(None, "--max", help="Largest LR HxW of a dynamic artifact (default 1024x1024)."),
    out: Path = typer.Option(Path("export"), "--out", help="Output folder; artifacts go to OUT/<run-name>/."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Folder of LR images for INT8 calibration (default: embedded training photos)."),
    calib_samples: int = typer.Option(300, "--calib-samples", help="INT8 calibration patches."),
    keep_float: Optional[str] = typer.Option(None, "--keep-float", help="INT8: convolutions kept in float: first,last (default), first, last or none."),
    workspace_gb: Optional[float] = typer.Option(None, "--workspace-gb", help="TensorRT builder workspace (default 2 GB)."),
    device: Optional[str] = typer.Option(None, "--device", help="Where verification runs the artifact (default: the format's device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads for verification."),
    as_json: bool = typer.Option(False, "--json", help="Print the export result as JSON on stdout."),
) -> None:
    """Export a run to a deployment artifact and verify it against PyTorch on held-out images."""
    from trisr.cli import _print_json, err_console
    from trisr.export.exporters import ExportOptions
    from trisr.export.formats import get_format
    from trisr.export.pipeline import ExportRequest, export_run

    fmt = get_format(fmt_name)
    fmt.check_options({"dynamic": dynamic, "calib": calib is not None, "keep_float": keep_float is not None,
                       "workspace_gb": workspace_gb is not None})
    precision = fmt.check_precision((precision or fmt.default_precision).lower())
    if (calib is not None or keep_float is not None) and precision != "int8":
        raise TrisrError("--calib and --keep-float apply to --precision int8")
    spec = _spec(shape, dynamic, min_hw, opt_hw, max_hw)
    dev = None if device is None else _device_arg(device)
    fmt.require(precision, dev or fmt.devices[0])  # missing runtime: one line with the fix, before any work
    options = ExportOptions(calib_dir=calib, calib_samples=calib_samples, keep_float=_keep_float(keep_float),
                            workspace_gb=workspace_gb or 2.0)
    if fmt.name == "trt":
        err_console.print("building a TensorRT engine can take minutes; the timing cache makes later builds faster")
    with err_console.status(f"exporting {run.name} to {fmt.name} {precision}"):
        result = export_run(ExportRequest(run, fmt, precision, spec, out, options, dev, threads),
                            log=lambda m: err_console.print(f"[dim]{m}[/]", highlight=False))
    v = result.verification
    mark = "[green]✅ verified" if result.ok else "[yellow]❎ verification FAILED"
    err_console.print(f"{mark}[/] {fmt.name} {precision} {spec.describe()}: {v.summary()}", highlight=False, soft_wrap=True)
    if not result.ok:
        err_console.print(f"[yellow]failed checks:[/] {escape(result.reason or '')}", highlight=False, soft_wrap=True)
    err_console.print(f"artifact [bold]{escape(str(result.artifact))}[/] ({result.size_mb:.3f} MB, export {result.export_s:.2f} s), "
                      f"sidecar {escape(result.sidecar.name)}", highlight=False, soft_wrap=True)
    if as_json:
        _print_json({"schema_version": 1, "kind": "trisr-export", **result.to_dict()})
    if not result.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def bench_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    formats: Optional[str] = typer.Option(None, "--format", "-f", help=f"Comma list of formats (default: all). {help_text()}."),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="Comma list of precisions (default: each format's default)."),
    shape: str = typer.Option("256x256", "--shape", help="LR input HxW (static artifacts; latency measured at it)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto: the PyTorch baseline's device and the preferred device of each format."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads of every runtime (default: all cores)."),
    reps: int = typer.Option(5, "--reps", help="Timing repetitions per row, interleaved across rows (median of their medians)."),
    time_s: float = typer.Option(0.5, "--time-s", help="Minimum timed seconds per repetition (after its warm-up)."),
    out: Path = typer.Option(Path("export"), "--out", help="Where the benchmarked artifacts are written."),
    lut: Optional[Path] = typer.Option(None, "--lut", help="Latency table (trisr profile) for the predicted-latency column."),
    calib_samples: int = typer.Option(300, "--calib-samples", help="INT8 calibration patches."),
    host: Optional[str] = typer.Option(None, "--host", help="Benchmark on user@address over SSH (trisr installed there)."),
    ssh_config: Optional[Path] = typer.Option(None, "--ssh-config", help="ssh -F FILE for --host."),
    remote_trisr: str = typer.Option("trisr", "--remote-trisr", help="Shell command that runs trisr on the remote host."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Benchmark a run in every available format beside PyTorch eager: status, size, PSNR, latency, LUT error."""
    from trisr.cli import _print_json, err_console
    from rich.console import Console

    from trisr.export.bench import TABLE_WIDTH, bench_protocol, bench_run, failed_rows, reasons, render_table
    from trisr.export.exporters import ExportOptions

    fmts = parse_format_list(formats)
    precisions = _precisions(precision)
    spec = _spec(shape, False, None, None, None)
    if time_s <= 0:
        raise TrisrError("--time-s must be > 0")
    protocol = bench_protocol(time_s)
    if host is not None:
        from trisr.profile.remote import bench_remote

        if lut is not None:
            raise TrisrError("--lut is a local file; with --host, compare against the remote table afterwards")
        remote_args = ["--shape", shape, "--device", device, "--reps", str(reps), "--time-s", str(time_s), "--calib-samples", str(calib_samples)]
        for flag, value in (("--format", formats), ("--precision", precision), ("--threads", threads)):
            if value is not None:
                remote_args += [flag, str(value)]
        report = bench_remote(host, run, remote_args, remote_trisr, ssh_config)
        report["host"] = host
    else:
        report = bench_run(
            run, fmts, precisions, spec, _device_arg(device), threads, protocol, reps, out, lut,
            ExportOptions(calib_samples=calib_samples), log=lambda m: err_console.print(f"[dim]{m}[/]", highlight=False),
        )
    # Its own console: rich squeezes tables to 80 columns when stderr is not a terminal.
    Console(stderr=True, width=max(err_console.width, TABLE_WIDTH)).print(render_table(report))
    for line in reasons(report):
        err_console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    if report["lut"] is None:
        err_console.print(f"  LUT column: {report['lut_note']}", highlight=False)
    if as_json:
        _print_json(report)
    if failed_rows(report):
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``bench`` to the main app, with the CLI's one-line error handling."""
    from trisr.cli import _user_errors

    app.command("export")(_user_errors(export_cmd))
    app.command("bench")(_user_errors(bench_cmd))

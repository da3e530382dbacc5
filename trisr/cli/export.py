"""``trisr export``: a run to a deployment artifact, verified against PyTorch.

Exit status: 0 when the artifact verified, 1 when the export or its verification failed (reported, with
the numbers), 2 for a user error (one line: unknown format, missing runtime with its install hint, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from trisr.cli.errors import EXIT_CHECK_FAILED, err_console, user_errors
from trisr.cli.options import Target, deploy_device, input_spec, keep_float_option, print_json
from trisr.errors import TrisrError
from trisr.export.formats import help_text


@user_errors
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
    device: Optional[Target] = typer.Option(None, "--device", help="Deployment device the artifact is built for and verified on: cpu, cuda or jetson (default: the format's first)."),
    target_alias: Optional[Target] = typer.Option(None, "--target", hidden=True, help="Old name of --device."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads for verification."),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Fold the correction filter for LR made with this kernel "
        "into the artifact's input: gaussian:SIGMA (HR px) | aniso:S1,S2,THETA | FILE.npy (docs/correction.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print the export result as JSON on stdout."),
) -> None:
    """Export a run to a deployment artifact and verify it against PyTorch on held-out images."""
    from trisr.export.exporters import ExportOptions
    from trisr.export.formats import get_format
    from trisr.export.pipeline import ExportRequest, export_run

    fmt = get_format(fmt_name)
    fmt.check_options({"dynamic": dynamic, "calib": calib is not None, "keep_float": keep_float is not None,
                       "workspace_gb": workspace_gb is not None})
    precision = fmt.check_precision((precision or fmt.default_precision).lower())
    if (calib is not None or keep_float is not None) and precision != "int8":
        raise TrisrError("--calib and --keep-float apply to --precision int8")
    spec = input_spec(shape, dynamic, min_hw, opt_hw, max_hw)
    correction = None
    if kernel is not None:
        from trisr.correction.kernels import parse_kernel

        correction = parse_kernel(kernel, allow_estimate=False)
    target = deploy_device(device, target_alias, default=None)
    dev = None if target is None else target.value
    fmt.require(precision, dev or fmt.devices[0])  # missing runtime: one line with the fix, before any work
    options = ExportOptions(calib_dir=calib, calib_samples=calib_samples, keep_float=keep_float_option(keep_float),
                            workspace_gb=workspace_gb or 2.0)
    if fmt.export_note:
        err_console.print(fmt.export_note)
    with err_console.status(f"exporting {run.name} to {fmt.name} {precision}"):
        result = export_run(ExportRequest(run, fmt, precision, spec, out, options, dev, threads, correction),
                            log=lambda m: err_console.print(f"[dim]{m}[/]", highlight=False))
    v = result.verification
    mark = "[green]✅ verified" if result.ok else "[yellow]❎ verification FAILED"
    err_console.print(f"{mark}[/] {fmt.name} {precision} {spec.describe()}: {v.summary()}", highlight=False, soft_wrap=True)
    if not result.ok:
        err_console.print(f"[yellow]failed checks:[/] {escape(result.reason or '')}", highlight=False, soft_wrap=True)
    err_console.print(f"artifact [bold]{escape(str(result.artifact))}[/] ({result.size_mb:.3f} MB, export {result.export_s:.2f} s), "
                      f"sidecar {escape(result.sidecar.name)}", highlight=False, soft_wrap=True)
    if as_json:
        print_json({"schema_version": 1, "kind": "trisr-export", **result.to_dict()})
    if not result.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)

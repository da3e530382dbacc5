"""``trisr eval``: PSNR/SSIM of a run beside bicubic."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import TORCH_DEVICE_HELP, TorchDevice, pick_torch_device, print_json, torch_device
from trisr.cli.tables import metrics_table


@user_errors
def eval_cmd(
    run: Path = typer.Argument(..., help="Run folder with genotype.json or arch.json, and model.safetensors."),
    data: Optional[Path] = typer.Option(None, "--data", help="Benchmark folder (Set5, DIV2K valid, ...); default the embedded held-out photos."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Border crop (default: scale)."),
    torch_on: Optional[TorchDevice] = typer.Option(None, "--torch-device", help=TORCH_DEVICE_HELP),
    device_alias: Optional[TorchDevice] = typer.Option(None, "--device", hidden=True, help="Old name of --torch-device."),
    degrade: Optional[list[str]] = typer.Option(
        None, "--degrade", help="Also make LR with these kernels (HR blurred, then sampled; repeatable): "
        "gaussian:SIGMA[,SIGMA...] (HR px) | aniso:S1,S2,THETA | FILE.npy, and report PSNR/SSIM for matched bicubic LR, "
        "the mismatched LR as it is, with the known-kernel correction filter and with the estimated one."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """PSNR/SSIM on Y (BT.601, crop = scale) of a run, beside bicubic."""
    from trisr.data.pairs import load_pairs
    from trisr.evaluate import check_crop, evaluate, validation_images
    from trisr.rundir import load_model

    check_crop(crop)
    kernels = None
    if degrade:
        from trisr.correction.kernels import parse_kernels

        kernels = [k for text in degrade for k in parse_kernels(text)]  # bad kernels: one line before any work
    dev = torch_device(pick_torch_device(torch_on, device_alias))
    model = load_model(run, dev)
    scale = model.arch.scale
    pairs = load_pairs(data, scale, "val")
    if kernels:
        _eval_degraded(run, model, pairs, scale, kernels, dev, crop, validation_images(data, scale), as_json)
        return
    metrics = evaluate(model, pairs, scale, dev, crop=crop)
    metrics["data"] = str(data) if data else "embedded held-out"
    metrics["validated_on"] = validation_images(data, scale)
    err_console.print(metrics_table(f"{run} on {metrics['validated_on']}, x{scale}", metrics))
    if as_json:
        print_json(metrics)


def _eval_degraded(run, model, pairs, scale, kernels, dev, crop, validated_on, as_json) -> None:
    from rich.progress import Progress

    from trisr.cli.tables import degraded_table
    from trisr.correction.evaluate import degraded_eval

    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("mismatched kernels", total=len(kernels) * len(pairs))
        result = degraded_eval(model, pairs, scale, kernels, dev, crop, on_step=lambda: progress.advance(task))
    result["validated_on"] = validated_on
    for k in result["kernels"]:
        err_console.print(degraded_table(f"{run}, x{scale}, LR by {k['kernel']['spec']} on {validated_on}", k))
    if as_json:
        print_json({"schema_version": 1, "kind": "trisr-eval-degraded", **result})


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)

"""``trisr eval``: PSNR/SSIM of a run beside bicubic."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import DEVICE_HELP, TorchDevice, print_json, torch_device
from trisr.cli.tables import metrics_table


@user_errors
def eval_cmd(
    run: Path = typer.Argument(..., help="Run folder with genotype.json or arch.json, and model.safetensors."),
    data: Optional[Path] = typer.Option(None, "--data", help="Benchmark folder (Set5, DIV2K valid, ...); default the embedded held-out photos."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Border crop (default: scale)."),
    device: TorchDevice = typer.Option(TorchDevice.auto, "--device", help=DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """PSNR/SSIM on Y (BT.601, crop = scale) of a run, beside bicubic."""
    from trisr.data.pairs import load_pairs
    from trisr.evaluate import check_crop, evaluate, validation_images
    from trisr.rundir import load_model

    check_crop(crop)
    dev = torch_device(device)
    model = load_model(run, dev)
    scale = model.arch.scale
    pairs = load_pairs(data, scale, "val")
    metrics = evaluate(model, pairs, scale, dev, crop=crop)
    metrics["data"] = str(data) if data else "embedded held-out"
    metrics["validated_on"] = validation_images(data, scale)
    err_console.print(metrics_table(f"{run} on {metrics['validated_on']}, x{scale}", metrics))
    if as_json:
        print_json(metrics)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)

"""``trisr upscale``: super-resolve images with a run's network or an exported artifact."""

from __future__ import annotations

from pathlib import Path

import typer

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import DEVICE_HELP, TorchDevice, torch_device


@user_errors
def upscale(
    run: Path = typer.Argument(..., help="Run folder, or an exported artifact (.onnx, .xml, .engine with its sidecar)."),
    images: list[Path] = typer.Argument(..., help="Input images."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (or a .png file for one image)."),
    device: TorchDevice = typer.Option(TorchDevice.auto, "--device", help=DEVICE_HELP),
) -> None:
    """Super-resolve images with a run's network or an exported artifact; writes PNGs."""
    from rich.progress import track

    from trisr.data.images import load_image, save_image
    from trisr.evaluate import super_resolve, upscale_targets
    from trisr.rundir import load_model

    if run.is_file():  # an exported artifact: the deployed file is what runs
        from trisr.export.artifacts import load_artifact

        artifact = load_artifact(run, device.value)
        scale, sr_fn = artifact.scale, artifact.upscale
    else:
        dev = torch_device(device)
        model = load_model(run, dev)
        scale = model.arch.scale
        sr_fn = lambda img: super_resolve(model, img, dev)  # noqa: E731
    targets = upscale_targets(images, output, scale)  # distinct outputs, or one line before any work
    inputs = [(p, load_image(p)) for p in images]  # fail on a bad image before any work
    for (path, img), target in track(list(zip(inputs, targets)), description="upscaling", console=err_console):
        save_image(target, sr_fn(img))
        err_console.print(f"{path} {img.shape[1]}x{img.shape[0]} -> {target}")


def register(app: typer.Typer) -> None:
    app.command("upscale")(upscale)

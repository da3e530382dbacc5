"""``trisr upscale``: super-resolve images with a run's network or an exported artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import TORCH_DEVICE_HELP, TorchDevice, pick_torch_device, parse_hw, torch_device
from trisr.errors import TrisrError


@user_errors
def upscale(
    run: Path = typer.Argument(..., help="Run folder, or an exported artifact (.onnx, .xml, .engine with its sidecar)."),
    images: list[Path] = typer.Argument(..., help="Input images."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (or a .png file for one image)."),
    torch_on: Optional[TorchDevice] = typer.Option(None, "--torch-device", help=TORCH_DEVICE_HELP),
    device_alias: Optional[TorchDevice] = typer.Option(None, "--device", hidden=True, help="Old name of --torch-device."),
    tile: Optional[str] = typer.Option(
        None, "--tile", help="Run folders: LR tile size HxW for images larger than it (default 256x256; tiles "
        "overlap by the network's receptive field). Artifacts run in tiles of their input size."),
    kernel: Optional[str] = typer.Option(
        None, "--kernel", help="How the LR images were downsampled, to correct them for the bicubic-trained network "
        "(correction filter, docs/correction.md): bicubic (default: no change) | gaussian:SIGMA (HR px) | "
        "aniso:S1,S2,THETA | FILE.npy | estimate (per image, from the image itself)."),
    save_kernel: bool = typer.Option(False, "--save-kernel", help="With --kernel: write OUTPUT/<name>_x<s>.kernel.json "
        "(the kernel, estimated or given, and the correction filter's taps)."),
) -> None:
    """Super-resolve images with a run's network or an exported artifact; writes PNGs."""
    from rich.progress import track

    from trisr.data.images import load_image, save_image
    from trisr.evaluate import upscale_targets
    from trisr.export.tiling import to_uint8_image
    from trisr.rundir import load_model
    from trisr.tiled import plan_for_images, sr_float_tiled, super_resolve_tiled

    tile_hw = None if tile is None else parse_hw(tile)
    spec = None
    if kernel is not None:
        from trisr.correction.kernels import parse_kernel

        spec = parse_kernel(kernel)
    elif save_kernel:
        raise TrisrError("--save-kernel needs --kernel")
    model = plan = None
    if run.is_file():  # an exported artifact: the deployed file is what runs
        from trisr.export.artifacts import load_artifact

        if tile_hw is not None:
            raise TrisrError("--tile applies to run folders; an artifact runs in tiles of its own input size")
        artifact = load_artifact(run, pick_torch_device(torch_on, device_alias).value)
        folded = artifact.sidecar.get("correction")
        if folded and spec is not None:
            raise TrisrError(f"{run.name} already corrects its input for {folded['kernel']['spec']}; drop --kernel")
        scale, sr_fn = artifact.scale, artifact.upscale
        sr_float = lambda x: to_uint8_image(artifact.upscale_array(x))  # noqa: E731
    else:
        dev = torch_device(pick_torch_device(torch_on, device_alias))
        model = load_model(run, dev)
        scale = model.arch.scale
        sr_fn = lambda img: super_resolve_tiled(model, img, plan, dev)  # noqa: E731 - plan is set below
        sr_float = lambda x: sr_float_tiled(model, x, plan, dev)  # noqa: E731
    targets = upscale_targets(images, output, scale)  # distinct outputs, or one line before any work
    inputs = [(p, load_image(p)) for p in images]  # fail on a bad image before any work
    if model is not None:
        plan = plan_for_images(model, [img.shape[:2] for _, img in inputs], tile_hw)  # None: all fit in one pass
        if plan is not None:
            err_console.print(plan.describe())
    corrector = None
    if spec is not None:
        from trisr.correction.apply import Corrector

        corrector = Corrector(spec, scale)
        if corrector.is_identity:
            corrector = None  # bicubic: the input is the network's own kind, left untouched
    for (path, img), target in track(list(zip(inputs, targets)), description="upscaling", console=err_console):
        if corrector is None:
            save_image(target, sr_fn(img))
        else:
            x, record = corrector(img)
            save_image(target, sr_float(x))
            est = record.get("estimate")
            err_console.print(f"{path}: corrected for {est['spec'] + ' (estimated)' if est else record['kernel']}, "
                              f"{record['filter_px']}x{record['filter_px']} LR px filter", highlight=False)
            if save_kernel:
                import json

                target.with_suffix(".kernel.json").write_text(json.dumps({"schema_version": 1, "image": str(path), **record}, indent=1))
        tiles = "" if plan is None or plan.runs_whole(img.shape[:2]) else f" ({plan.count(img.shape[:2])} tiles)"
        err_console.print(f"{path} {img.shape[1]}x{img.shape[0]} -> {target}{tiles}")


def register(app: typer.Typer) -> None:
    app.command("upscale")(upscale)

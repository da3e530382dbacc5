"""``trisr train``: train or fine-tune a network with a preset's fine-tuning recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import TRAIN_DEVICE_HELP, TorchDevice, keep_float_option, print_json, train_device
from trisr.cli.tables import metrics_table
from trisr.errors import TrisrError


def zoo_spec(arch: str, scale: Optional[int], width: Optional[int], knobs: list[str]):
    """The ZooSpec of ``trisr train --arch``: knob values parsed by each knob's declared type (never evaluated)."""
    from trisr.zoo import ZooSpec, get_family

    family = get_family(arch)
    values: dict = {}
    for item in knobs:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise TrisrError(f"--knob takes NAME=VALUE, got {item!r}")
        if name in values:
            raise TrisrError(f"--knob {name} given twice")
        values[name] = value
    if width is not None:
        if "width" in values:
            raise TrisrError("give the width once: --width or --knob width=...")
        values["width"] = width
    return ZooSpec(family.name, 2 if scale is None else scale, values)


@user_errors
def train(
    source: Optional[Path] = typer.Argument(None, help="A run folder (fine-tune its weights) or a genotype / arch JSON (train from scratch). Or give --arch."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Train a zoo network (trisr zoo lists them) from scratch instead of SOURCE."),
    width: Optional[int] = typer.Option(None, "--width", help="With --arch: the family's width knob."),
    knob: list[str] = typer.Option([], "--knob", help="With --arch: NAME=VALUE, repeatable (e.g. --knob blocks=4 --knob skip=none)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="With --arch: upscaling factor (default 2)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder; default the embedded photos."),
    out: Path = typer.Option(..., "--out", help="Output run folder."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Take the fine-tuning recipe of this preset (what searched networks get after derivation). Default: the source run's own recipe, else quick's."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override the recipe's step count."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override the recipe's learning rate."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override the recipe's batch size."),
    lr_patch: Optional[int] = typer.Option(None, "--patch", help="Override the recipe's LR patch size."),
    qat: bool = typer.Option(False, "--qat", help="Quantization-aware fine-tuning for int8 export: train SOURCE's weights under int8 fake quantization as the CPU int8 exports quantize (default 2000 steps at a tenth of the recipe's lr); then trisr export --precision int8."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="With --qat: folder of LR images for the activation ranges (default: embedded training photos, as export)."),
    calib_samples: int = typer.Option(300, "--calib-samples", help="With --qat: calibration patches (as export)."),
    keep_float: Optional[str] = typer.Option(None, "--keep-float", help="With --qat: convolutions kept float: first,last (default, as export), first, last or none."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume"),
    train_on: Optional[TorchDevice] = typer.Option(None, "--train-device", help=TRAIN_DEVICE_HELP),
    device_alias: Optional[TorchDevice] = typer.Option(None, "--device", hidden=True, help="Old name of --train-device."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train or fine-tune a network with a preset's fine-tuning recipe (method.md §8.1 step 5): a run's network,
    a genotype, or a zoo network (--arch) from scratch, exactly as searched networks are trained after derivation.
    --arch bicubic has nothing to train: it is evaluated and written as a run folder as it is."""
    from dataclasses import replace

    from trisr.progress import RichReporter
    from trisr.rundir import CONFIG_FILE
    from trisr.search.config import preset as get_preset
    from trisr.train import train as run_train

    if (source is None) == (arch is None):
        raise TrisrError("give exactly one of SOURCE (run folder or architecture file) and --arch FAMILY")
    if arch is None and (width is not None or knob or scale is not None):
        raise TrisrError("--width, --knob and --scale apply to --arch only")
    start = zoo_spec(arch, scale, width, knob) if arch is not None else source
    if preset is None and source is not None and source.is_dir() and (source / CONFIG_FILE).exists():
        from trisr.baselines import run_recipe

        recipe = run_recipe(source)
    else:
        recipe = get_preset(preset or "quick").recipe()
    too_small = (steps, 1), (batch_size, 1), (lr_patch, 4)
    if any(v is not None and v < least for v, least in too_small) or (lr is not None and lr <= 0):
        raise TrisrError("--steps and --batch-size must be >= 1, --lr > 0 and --patch >= 4")
    qat_config = None
    if not qat and (calib is not None or keep_float is not None):
        raise TrisrError("--calib and --keep-float apply to --qat")
    if qat:
        from trisr.quant.fakequant import QAT_LR_FACTOR, QAT_STEPS, QatConfig

        if arch is not None or not source.is_dir():
            raise TrisrError("--qat fine-tunes a trained network: give its run folder as SOURCE")
        if calib_samples < 1:
            raise TrisrError("--calib-samples must be >= 1")
        qat_config = QatConfig(keep_float=keep_float_option(keep_float), calib_samples=calib_samples)
        steps = QAT_STEPS if steps is None else steps
        lr = recipe.phase.lr * QAT_LR_FACTOR if lr is None else lr
    changes = {k: v for k, v in (("steps", steps), ("lr", lr), ("batch_size", batch_size)) if v is not None}
    recipe = recipe.replace(**changes)
    if lr_patch is not None:
        recipe = replace(recipe, lr_patch=lr_patch)
    if source is not None and not source.exists():
        raise TrisrError(f"{source} does not exist")
    summary = run_train(start, out, recipe, data, seed, resume, RichReporter(err_console), train_device(train_on, device_alias),
                        qat=qat_config, calib_dir=calib)
    if summary:
        err_console.print(metrics_table(summary.get("validated_on", "held-out images"), summary["metrics"]))
        if "metrics_fakequant" in summary:
            err_console.print(metrics_table("int8 fake-quantized (what the int8 export runs)", summary["metrics_fakequant"]))
        if as_json:
            print_json(summary)


def register(app: typer.Typer) -> None:
    app.command("train")(train)

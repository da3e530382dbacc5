"""``trisr train``: train or fine-tune a network, resumable: a derived network from a genotype, or a zoo
network (:mod:`trisr.zoo`) from its spec.

Starts from a run's weights (fine-tune) or from scratch (a genotype or arch JSON, or an architecture object),
trains with L1 on random LR/HR patches, and writes the same run-folder files as a search (model, architecture,
summary, log). A network without parameters (the zoo's ``bicubic``) has nothing to train: it is evaluated as
it is and written as a run folder with its (empty) weights, its arch file and its summary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from trisr.checkpoint import load_checkpoint, save_checkpoint
from trisr.checks import check_out_dir
from trisr.data.pairs import ImagePair, load_pairs
from trisr.errors import TrisrError
from trisr.evaluate import evaluate, validation_images
from trisr.io import atomic_write_json
from trisr.progress import Reporter
from trisr.quant import fakequant
from trisr.quant.fakequant import QatConfig
from trisr.rundir import (
    CHECKPOINT_FILE, MODEL_FILE, RunLog, arch_from_record, arch_record, build_model, load_arch, load_model, save_model,
    write_summary,
)
from trisr.search import dist
from trisr.search.config import Recipe
from trisr.space.count import count_macs, count_params
from trisr.training import Trainer, is_trainable
from trisr.versions import versions


def load_start(source) -> tuple[torch.nn.Module, str]:
    """A run folder gives its trained network; an architecture file (genotype.json / arch.json), a folder with
    only one, or an architecture object (Genotype, ZooSpec) gives a freshly initialised one."""
    if not isinstance(source, (str, Path)):
        return build_model(source), f"{_describe(source)}, fresh weights"
    source = Path(source)
    if source.is_dir():
        if (source / MODEL_FILE).exists():
            return load_model(source), f"weights of run {source}"
        arch = load_arch(source)
        return build_model(arch), f"{arch.kind} architecture of {source}, fresh weights"
    arch = load_arch(source)
    return build_model(arch), f"{'genotype' if arch.kind == 'trisr' else 'arch'} {source}, fresh weights"


def _describe(arch) -> str:
    if arch.kind == "zoo":
        return f"zoo {arch.family} x{arch.scale} {json.dumps(arch.knobs, sort_keys=True)}"
    return f"genotype {arch.digest()}"


def arch_summary(arch) -> dict:
    """What a summary says about the architecture: ``arch`` for every kind (its record and digest), plus the
    historical ``genotype`` entry for trisr networks."""
    out: dict = {"arch": {**arch_record(arch), "digest": arch.digest()}}
    if arch.kind == "trisr":
        out["genotype"] = {"path": arch.path, "digest": arch.digest()}
    return out


def train(
    source,
    out: Path,
    recipe: Recipe,
    data_source: Path | None = None,
    seed: int = 0,
    resume: bool = False,
    reporter: Reporter | None = None,
    device: str = "cpu",
    checkpoint_every: int = 100,
    pairs: tuple[list[ImagePair], list[ImagePair]] | None = None,
    qat: QatConfig | None = None,
    calib_dir: Path | None = None,
) -> dict:
    """Train ``source`` (a run folder, an architecture file, or a Genotype / ZooSpec) into the run folder ``out``
    with ``recipe``.

    ``pairs`` = (train, val) overrides the images of ``data_source`` (development splits of the ablation
    benchmarks: hyper-parameters are chosen on images that are neither trained on nor held out).

    ``qat``: quantization-aware fine-tuning (:mod:`trisr.quant.fakequant`): the network trains with int8 fake
    quantization as the CPU int8 exports quantize, activation ranges from the export's calibration patches
    (``calib_dir`` or the embedded training photos); the run folder holds the float, QAT-adapted weights and the
    ranges (``quant.json``), from which ``trisr export --precision int8`` ships the trained int8 network
    (docs/export.md, INT8). The summary reports the fake-quantized model's held-out metrics
    (``metrics_fakequant``) beside the float ones."""
    from trisr.lock import locked

    out = check_out_dir(out)
    with locked(out, "run folder"):  # a second command on the same folder refuses instead of writing over it
        return _train(source, out, recipe, data_source, seed, resume, reporter, device, checkpoint_every, pairs, qat, calib_dir)


def _train(source, out, recipe, data_source, seed, resume, reporter, device, checkpoint_every, pairs, qat, calib_dir) -> dict:
    dev = torch.device(device)
    info = dist.init_distributed(dev)
    reporter = reporter if (reporter is not None and info.is_main) else Reporter()
    ckpt_path = out / CHECKPOINT_FILE
    ckpt = load_checkpoint(ckpt_path) if resume else None
    if not resume and ckpt_path.exists():
        raise TrisrError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if ckpt is not None:
        missing = [k for k in ("model", "origin", "recipe") if k not in ckpt] if isinstance(ckpt, dict) else ["model"]
        if missing or not ("arch" in ckpt or "genotype" in ckpt):
            raise TrisrError(f"checkpoint {ckpt_path} is not a trisr train checkpoint (it lacks "
                             f"{', '.join(missing or ['arch'])}); choose another --out, or drop --resume")
    log = RunLog(out, info.is_main)
    torch.manual_seed(seed)
    if ckpt is not None:
        record = json.loads(ckpt["arch"]) if "arch" in ckpt else json.loads(ckpt["genotype"])  # older checkpoints
        model = build_model(arch_from_record(record))
        qat = QatConfig.from_dict(json.loads(ckpt["qat"])) if "qat" in ckpt else None
        if qat is not None:
            fakequant.prepare(model, qat)  # before loading: the checkpoint holds the fake-quantized module
            calib_dir = ckpt.get("qat_calib_dir") or None  # the run's own calibration folder
            calib_dir = None if calib_dir is None else Path(calib_dir)
        model.load_state_dict(ckpt["model"])
        origin = ckpt["origin"]
        recipe = Recipe.from_dict(json.loads(ckpt["recipe"]))
    else:
        model, origin = load_start(source)
    calib = None
    if qat is not None:
        from trisr.export.calibration import calibration_images, calibration_patches

        if qat.precision != "int8":
            raise TrisrError(f"quantization-aware fine-tuning is for int8, not {qat.precision}")
        if not is_trainable(model):
            raise TrisrError(f"{_describe(model.arch)} has no parameters: nothing to fine-tune for int8")
        images, calib_source = calibration_images(calib_dir, int(model.arch.scale))
        calib = calibration_patches(images, qat.calib_hw, qat.calib_samples)
        if ckpt is None:
            fakequant.prepare(model, qat)
            reporter.message(f"QAT: int8 fake quantization of {len(fakequant.fake_quantized_convs(model))} convolutions; "
                             f"ranges from {len(calib)} patches of the {calib_source}")
            fakequant.calibrate(model, calib)
    model = model.to(dev)
    dist.broadcast_parameters(model, info)
    scale = model.arch.scale
    trainable = is_trainable(model)
    if not trainable:
        reporter.message(f"{_describe(model.arch)} has no parameters: nothing to train; evaluating it as it is")
        recipe = recipe.replace(steps=0)
    if pairs is None:
        train_pairs, val_pairs = load_pairs(data_source, scale, "train"), load_pairs(data_source, scale, "val")
    else:
        train_pairs, val_pairs = pairs
    phase = recipe.phase
    trainer = Trainer(model, recipe, train_pairs, seed, info, dev)
    elapsed = 0.0
    if ckpt is not None:
        trainer.load_state_dict(ckpt)  # the checkpoint keys are the trainer's own, plus those saved below
        elapsed = ckpt["elapsed"]
    log.event("train_start", origin=origin, resume=resume, step=trainer.step)

    def save() -> None:  # at trainer.step
        state = trainer.state_dict()  # every rank takes part (it gathers the ranks' samplers and RNG states)
        if info.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "arch": json.dumps(arch_record(model.arch)),
                    "origin": origin,
                    "recipe": json.dumps(recipe.to_dict()),
                    **({} if qat is None else {"qat": json.dumps(qat.to_dict()), "qat_calib_dir": str(calib_dir or "")}),
                    **state,
                    "elapsed": elapsed + time.time() - t0,
                },
            )
        dist.barrier(info)

    def on_step(done: int, loss: float) -> None:
        if done % 10 == 0 or done == phase.steps:
            reporter.step(done, {"loss": loss, "lr": trainer.lr})
            log.event("train", step=done, loss=loss)
        if done % checkpoint_every == 0 or done == phase.steps:
            save()

    t0 = time.time()
    reporter.phase("train", phase.steps, trainer.step)
    if trainable:
        trainer.run(on_step)
    else:
        save()
    reporter.end_phase()
    elapsed += time.time() - t0
    summary: dict = {}
    if info.is_main:
        reporter.phase("evaluate", len(val_pairs))
        model = trainer.shipped  # the weight average where the recipe keeps one
        extra: dict = {}
        if qat is not None:
            # Ranges re-measured on the final weights, as the export will; then the int8 model as PyTorch
            # simulates it, and the float weights that are saved and exported.
            fakequant.calibrate(model, calib)
            extra["metrics_fakequant"] = evaluate(model, val_pairs, scale, dev)
            extra["qat"] = {**qat.to_dict(), "calibration": calib_source,
                            "convs_quantized": len(fakequant.fake_quantized_convs(model)), "ranges": fakequant.QUANT_FILE}
            atomic_write_json(out / fakequant.QUANT_FILE, fakequant.ranges_record(model, qat))
            model = fakequant.strip(model)
        metrics = evaluate(model, val_pairs, scale, dev, on_image=lambda i: reporter.step(i, {}))
        reporter.end_phase()
        summary = {
            **arch_summary(model.arch),
            "origin": origin,
            "params": count_params(model),
            "macs": count_macs(model, (1, 3, 256, 256)),
            "macs_resolution": [256, 256],
            "metrics": metrics,
            "validated_on": "the given validation pairs" if pairs is not None else validation_images(data_source, scale),
            "settings": {"recipe": recipe.to_dict(), "seed": seed, "data": str(data_source)},
            "versions": versions(),
            "world_size": info.world_size,
            "wall_time_s": {"train": elapsed, "total": elapsed},
            **extra,
        }
        save_model(out, model)
        write_summary(out, summary)
        log.event("done", psnr_db=metrics["psnr_db"])
    return summary

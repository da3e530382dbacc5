"""``trisr train``: train or fine-tune a derived network from a genotype, resumable.

Starts from a run's weights (fine-tune) or from scratch (a genotype JSON), trains with L1 on random
LR/HR patches, and writes the same run-folder files as a search (model, genotype, summary, log)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from trisr.data.datasets import ImagePair, PatchSampler, load_pairs
from trisr.errors import TrisrError
from trisr.evaluate import evaluate
from trisr.progress import Reporter
from trisr.rundir import CHECKPOINT_FILE, GENOTYPE_FILE, RunLog, load_model, save_model, versions, write_summary
from trisr.search import dist
from trisr.search.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from trisr.search.config import Recipe
from trisr.search.engine import EMA, train_steps
from trisr.space.count import count_macs, count_params
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype


def load_start(source: Path) -> tuple[DerivedNet, str]:
    """A run folder gives its trained network; a genotype file gives a freshly initialised one."""
    if source.is_dir():
        if (source / "model.safetensors").exists():
            return load_model(source), f"weights of run {source}"
        return DerivedNet(Genotype.load(source / GENOTYPE_FILE)), f"genotype of {source}, fresh weights"
    return DerivedNet(Genotype.load(source)), f"genotype {source}, fresh weights"


def train(
    source: Path,
    out: Path,
    recipe: Recipe,
    data_source: Path | None = None,
    seed: int = 0,
    resume: bool = False,
    reporter: Reporter | None = None,
    device: str = "cpu",
    checkpoint_every: int = 100,
    pairs: tuple[list[ImagePair], list[ImagePair]] | None = None,
) -> dict:
    """Train ``source`` (a run folder or a genotype file) into the run folder ``out`` with ``recipe``.

    ``pairs`` = (train, val) overrides the images of ``data_source`` (development splits of the ablation
    benchmarks: hyper-parameters are chosen on images that are neither trained on nor held out)."""
    dev = torch.device(device)
    info = dist.init_distributed(dev)
    reporter = reporter if (reporter is not None and info.is_main) else Reporter()
    log = RunLog(out, info.is_main)
    ckpt_path = out / CHECKPOINT_FILE
    ckpt = load_checkpoint(ckpt_path) if resume else None
    if not resume and ckpt_path.exists():
        raise TrisrError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    torch.manual_seed(seed)
    if ckpt is not None:
        model = DerivedNet(Genotype.from_dict(json.loads(ckpt["genotype"])))
        model.load_state_dict(ckpt["model"])
        origin = ckpt["origin"]
        recipe = Recipe.from_dict(json.loads(ckpt["recipe"]))
    else:
        model, origin = load_start(source)
    model = model.to(dev)
    dist.broadcast_parameters(model, info)
    scale = model.genotype.space.scale
    if pairs is None:
        train_pairs, val_pairs = load_pairs(data_source, scale, "train"), load_pairs(data_source, scale, "val")
    else:
        train_pairs, val_pairs = pairs
    phase = recipe.phase
    sampler = PatchSampler(
        train_pairs, recipe.lr_patch, scale, seed, stream=(3,), augment=recipe.augment, sampling=recipe.sampling
    ).shard(info.rank, info.world_size)
    opt = torch.optim.Adam(model.parameters(), lr=phase.lr)
    sched = phase.scheduler(opt)
    ema = EMA(model, phase.ema) if phase.ema > 0 else None
    shipped = model if ema is None else ema.module  # what is evaluated and saved
    start, elapsed = 0, 0.0
    if ckpt is not None:
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        mine = json.loads(ckpt["ranks"])[info.rank]
        sampler.load_state_dict(mine["sampler"])
        set_rng_state(mine["rng"])
        start, elapsed = ckpt["step"], ckpt["elapsed"]
    log.event("train_start", origin=origin, resume=resume, step=start)

    def save(done: int) -> None:
        per_rank = dist.all_gather_object(
            {"sampler": sampler.state_dict(), "rng": rng_state()}, info
        )
        if info.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "genotype": json.dumps(model.genotype.to_dict()),
                    "model": model.state_dict(),
                    "origin": origin,
                    "recipe": json.dumps(recipe.to_dict()),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    **({} if ema is None else {"ema": ema.state_dict()}),
                    "ranks": json.dumps(per_rank),
                    "step": done,
                    "elapsed": elapsed + time.time() - t0,
                },
            )
        dist.barrier(info)

    def on_step(done: int, loss: float) -> None:
        if done % 10 == 0 or done == phase.steps:
            reporter.step(done, {"loss": loss, "lr": sched.get_last_lr()[0]})
            log.event("train", step=done, loss=loss)
        if done % checkpoint_every == 0 or done == phase.steps:
            save(done)

    t0 = time.time()
    reporter.phase("train", phase.steps, start)
    train_steps(model, sampler, opt, sched, phase, start, info, dev, on_step, ema)
    reporter.end_phase()
    elapsed += time.time() - t0
    summary: dict = {}
    if info.is_main:
        reporter.phase("evaluate", len(val_pairs))
        model = shipped
        metrics = evaluate(model, val_pairs, scale, dev, on_image=lambda i: reporter.step(i, {}))
        reporter.end_phase()
        summary = {
            "genotype": {"path": model.genotype.path, "digest": model.genotype.digest()},
            "origin": origin,
            "params": count_params(model),
            "macs": count_macs(model, (1, 3, 256, 256)),
            "macs_resolution": [256, 256],
            "metrics": metrics,
            "settings": {"recipe": recipe.to_dict(), "seed": seed, "data": str(data_source)},
            "versions": versions(),
            "world_size": info.world_size,
            "wall_time_s": {"train": elapsed, "total": elapsed},
        }
        save_model(out, model)
        write_summary(out, summary)
        log.event("done", psnr_db=metrics["psnr_db"])
    return summary

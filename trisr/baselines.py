"""Baselines trained exactly like a searched network: random architectures of the same space in the same cost
band, and the searched architecture itself trained from scratch (the single-phase claim, method.md §8).

The interface is architecture in (a genotype, or a ``trisr.zoo.ZooSpec``), trained run folder out
(:func:`train_arch`, alias ``train_genotype``); :func:`baselines_for_run`
builds the usual comparison for one finished search run. Every network goes through :func:`trisr.train.train`
with the run's own fine-tuning recipe and step count (:func:`run_recipe`), seed and data, so the only difference between
rows is the architecture and where its weights start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trisr.errors import TrisrError
from trisr.progress import Reporter
from trisr.rundir import (
    ARCH_FILE, CHECKPOINT_FILE, CONFIG_FILE, COST_TABLE_FILE, GENOTYPE_FILE, SUPERNET_FILE, is_finished, load_supernet,
    read_summary, save_model,
)
from trisr.io import atomic_write_json
from trisr.search.config import Recipe, RunConfig
from trisr.space.cost import CostModel, CostTable
from trisr.space.genotype import Genotype
from trisr.space.inherit import inherit
from trisr.space.sample import sample_in_band, space_tree
from trisr.training import StepPlan

INITS = ("scratch", "inherited")


def run_recipe(run: Path) -> Recipe:
    """The recipe a search run's network was fine-tuned with: its configuration's, with the step count it
    actually trained where a fine-tune time limit cut it (the summary's ``finetune_plan``), so that baselines
    and ``trisr train RUN`` train exactly the steps the searched network got."""
    run = Path(run)
    recipe = RunConfig.load(run / CONFIG_FILE).recipe()
    plan = read_summary(run).get("finetune_plan") if is_finished(run) else None
    return recipe if not plan else StepPlan.from_dict(plan).recipe(recipe)


def _run_cost_model(run: Path, cfg: RunConfig) -> CostModel:
    """The cost model of the table the run searched with (its analytic or latency table, kept in the run)."""
    return CostModel(CostTable.load(run / COST_TABLE_FILE), cfg.space, space_tree(cfg.space))


@dataclass(frozen=True)
class Candidate:
    """One network to train: ``kind`` is ``searched`` or ``random``; ``init`` is ``scratch`` or ``inherited``."""

    name: str
    kind: str
    init: str
    genotype: Genotype


def train_arch(
    arch,
    out: Path,
    recipe: Recipe,
    *,
    supernet_run: Path | None = None,
    data: Path | None = None,
    seed: int = 0,
    reporter: Reporter | None = None,
    resume: bool = False,
    device: str = "cpu",
) -> dict:
    """Train ``arch`` (a ``Genotype`` or a ``ZooSpec``) into the run folder ``out`` on ``device`` (PyTorch) and
    return its summary.

    With ``supernet_run`` (genotypes only) the weights start from that run's supernet by mapping and slicing (as
    a searched network's do); without, from the default initialisation. A finished folder is read back, not
    retrained.
    """
    from trisr.train import train

    out = Path(out)
    if is_finished(out):
        return read_summary(out)
    if supernet_run is not None and arch.kind != "trisr":
        raise TrisrError(f"only trisr genotypes inherit supernet weights; a {arch.kind} network trains from scratch")
    start = out.parent / f"{out.name}.start"
    start.mkdir(parents=True, exist_ok=True)
    if supernet_run is not None:
        save_model(start, inherit(load_supernet(supernet_run), arch))
    else:
        own, other = (GENOTYPE_FILE, ARCH_FILE) if arch.kind == "trisr" else (ARCH_FILE, GENOTYPE_FILE)
        (start / other).unlink(missing_ok=True)
        atomic_write_json(start / own, arch.to_dict())
    resume = resume or (out / CHECKPOINT_FILE).exists()
    return train(start, out, recipe, data, seed, resume, reporter, device)


train_genotype = train_arch  # the name before zoo networks existed


def candidates_for_run(run: Path, n_random: int, seed: int = 0, inits: tuple[str, ...] = INITS) -> list[Candidate]:
    """The searched genotype from scratch, plus ``n_random`` random genotypes of the run's space whose cost in the
    run's own cost table lies in the run's band ``[budget * (1 - band), budget]`` (without a budget: the band
    ``[0.9 c, c]`` under the searched network's cost ``c``), each with every init of ``inits`` (``inherited``
    needs the run's kept supernet)."""
    run = Path(run)
    bad = [i for i in inits if i not in INITS]
    if bad:
        raise TrisrError(f"unknown init(s) {bad}; choose from {INITS}")
    cfg = RunConfig.load(run / CONFIG_FILE)
    searched = Genotype.load(run / GENOTYPE_FILE)
    model = _run_cost_model(run, cfg)
    hi = cfg.budget if cfg.budget is not None else model.genotype_cost(searched)
    lo = hi * (1.0 - cfg.budget_band)
    if "inherited" in inits and not (run / SUPERNET_FILE).exists():
        raise TrisrError(f"{run} kept no supernet; use inits=('scratch',) or re-run the search")
    out = [Candidate("searched", "searched", "scratch", searched)] if "scratch" in inits else []
    picks = sample_in_band(model, lo, hi, n_random, seed=seed) if n_random else []
    for k, g in enumerate(picks):
        out += [Candidate(f"random{k}", "random", init, g) for init in inits]
    return out


def baselines_for_run(
    run: Path,
    out: Path,
    n_random: int = 5,
    seed: int = 0,
    inits: tuple[str, ...] = INITS,
    data: Path | None = None,
    reporter: Reporter | None = None,
) -> list[dict]:
    """Train every candidate of :func:`candidates_for_run` with the run's recipe; one row per network, the
    searched run itself first. Rows are also written to ``out/baselines.json`` after each network, and a killed
    call resumes (finished folders are read back, a half-trained one continues from its checkpoint)."""
    run, out = Path(run), Path(out)
    cfg = RunConfig.load(run / CONFIG_FILE)
    recipe = run_recipe(run)
    model = _run_cost_model(run, cfg)
    searched_summary = read_summary(run)
    rows = [_row("searched", "searched", "inherited", Genotype.load(run / GENOTYPE_FILE), searched_summary, model, run)]
    out.mkdir(parents=True, exist_ok=True)
    for cand in candidates_for_run(run, n_random, seed, inits):
        folder = out / f"{cand.name}-{cand.init}"
        summary = train_arch(
            cand.genotype, folder, recipe, supernet_run=run if cand.init == "inherited" else None,
            data=data, seed=cfg.seed, reporter=reporter,
        )
        rows.append(_row(cand.name, cand.kind, cand.init, cand.genotype, summary, model, folder))
        (out / "baselines.json").write_text(json.dumps(rows, indent=1))
    return rows


def _row(name: str, kind: str, init: str, g: Genotype, summary: dict, model: CostModel, folder: Path) -> dict:
    m = summary["metrics"]
    return {
        "name": name,
        "kind": kind,
        "init": init,
        "path": g.path,
        "digest": g.digest(),
        "cost": model.genotype_cost(g),
        "cost_unit": model.table.unit,
        "params": summary["params"],
        "psnr_db": m["psnr_db"],
        "ssim": m["ssim"],
        "gain_db": m["gain_db"],
        "per_image_gain_db": {r["name"]: r["psnr_db"] - r["bicubic_psnr_db"] for r in m["images"]},
        "folder": str(folder),
    }

"""Run configuration (search, training schedule, budget) and the presets ``quick`` and ``paper``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace

import torch

from trisr.data.patches import AUGMENTS, SAMPLINGS
from trisr.errors import TrisrError
from trisr.space.config import SpaceConfig
from trisr.space.cost import METRICS
from trisr.space.supernet import RelaxConfig
from trisr.search.strategies import STRATEGIES, STRATEGY_BY_NAME

RUN_CONFIG_SCHEMA_VERSION = 1
ORDER_PENALTIES = ("linear", "hinge", "none")


SCHEDULES = ("multistep", "cosine")


@dataclass(frozen=True)
class Phase:
    """One optimisation phase.

    ``schedule``: ``multistep`` halves the lr at ``milestones`` (fractions of ``steps``; method.md §13:
    epochs [25, 50, 75] of 100 and [75, 150, 225] of 300 are both quarters), ``cosine`` anneals it to
    ``lr * min_lr_ratio`` at the last step (ends calm, no late jumps). ``ema``: decay of an exponential
    moving average of the weights (BasicSR's ``ema_decay``; 0 = off); where a phase keeps one, the average is
    what is evaluated, saved and exported. ``lr_warmup_steps``: the lr rises linearly from ``lr / lr_warmup_steps`` to
    ``lr`` over the first steps (then the schedule runs over the remaining steps); 0 = none, the schedule
    starts at ``lr``."""

    steps: int
    lr: float
    batch_size: int
    milestones: tuple[float, ...] = (0.25, 0.5, 0.75)
    clip: float = 5.0
    schedule: str = "multistep"
    min_lr_ratio: float = 0.01
    ema: float = 0.0
    lr_warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise TrisrError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.ema < 1.0:
            raise TrisrError(f"ema decay must lie in [0, 1), got {self.ema}")
        if not 0 <= self.lr_warmup_steps <= max(0, self.steps):
            raise TrisrError(f"lr_warmup_steps must lie in [0, steps={self.steps}], got {self.lr_warmup_steps}")

    def lr_factor(self, step: int) -> float:
        """The lr multiplier at ``step`` with warm-up: linear from ``1 / lr_warmup_steps`` to 1, then cosine to
        ``min_lr_ratio`` or halvings at the milestones, over the remaining steps."""
        if step < self.lr_warmup_steps:
            return (step + 1) / self.lr_warmup_steps
        rest = max(1, self.steps - self.lr_warmup_steps)
        t = min(step - self.lr_warmup_steps, rest) / rest
        if self.schedule == "cosine":
            return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        return 0.5 ** sum(t >= m for m in self.milestones)

    def milestone_steps(self) -> list[int]:
        return [max(1, int(round(m * self.steps))) for m in self.milestones]

    def scheduler(self, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        if self.lr_warmup_steps:
            # A plain function: LambdaLR's state_dict keeps no state of it, so checkpoints stay weights-only loadable.
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: self.lr_factor(step))
        # Without warm-up, torch's own schedulers: runs and checkpoints made before warm-up existed stay bit-exact.
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, self.steps), eta_min=self.lr * self.min_lr_ratio)
        return torch.optim.lr_scheduler.MultiStepLR(opt, self.milestone_steps(), gamma=0.5)

    @classmethod
    def from_dict(cls, d: dict) -> "Phase":
        d = dict(d)
        d["milestones"] = tuple(d.get("milestones", ()))
        return cls(**d)


@dataclass(frozen=True)
class Recipe:
    """How a derived network is trained: the one recipe shared by fine-tuning after a search, ``trisr train``
    and every baseline (random picks, hand-designed networks), so that they are compared on equal terms."""

    phase: Phase
    lr_patch: int = 32
    augment: tuple[str, ...] = ("dihedral", "rgb_perm")
    sampling: str = "uniform"

    def to_dict(self) -> dict:
        return {"phase": asdict(self.phase), "lr_patch": self.lr_patch, "augment": list(self.augment), "sampling": self.sampling}

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(Phase.from_dict(d["phase"]), int(d["lr_patch"]), tuple(d["augment"]), str(d["sampling"]))

    def replace(self, **phase_changes) -> "Recipe":
        """The same recipe with some phase fields changed (``steps``, ``lr``, ``batch_size``, ...)."""
        return replace(self, phase=replace(self.phase, **phase_changes))


#: Losses of the search phase's passes: L1 (trilevel, the reference code) or HiNAS's L1 + 0.6 * -log(SSIM).
SEARCH_LOSSES = ("l1", "l1+logssim")


@dataclass(frozen=True)
class RunConfig:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    relax: RelaxConfig = field(default_factory=RelaxConfig)
    preset: str = "paper"
    seed: int = 0
    lr_patch: int = 32  # LR crop size; HR crops are lr_patch * scale (method.md §8.2)
    #: Patch augmentation and image sampling of every phase (trisr/data/patches.py::PatchSampler). The
    #: reference code flips horizontally and picks images uniformly: ("hflip",), "uniform". Area-proportional
    #: sampling measured worse on the development split (docs/benchmarks.md), so uniform stays.
    augment: tuple[str, ...] = ("dihedral", "rgb_perm")
    sampling: str = "uniform"
    warmup: Phase = Phase(steps=1000, lr=2e-4, batch_size=4)
    search: Phase = Phase(steps=1000, lr=1e-4, batch_size=2)
    finetune: Phase = Phase(steps=1000, lr=2e-4, batch_size=16)
    #: End-to-end wall-time limit in minutes (0 = none). The supernet phases run their steps; the fine-tune's steps
    #: are then cut to what fits in the time left, at the step time measured on this machine when it starts
    #: (trisr.search.engine.finetune_minutes, trisr.training.plan_steps), so that a preset keeps its time whatever
    #: network the search derives and however fast the machine; the count is kept in the checkpoint and summary.
    max_wall_min: float = 0.0
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    #: Network-level sorting device (method.md §6): the code's telescoping linear penalty (default, positive
    #: sign = toward shallow networks), the edge-wise hinge (stronger alternative), or none.
    order_penalty: str = "linear"
    order_lambda: float = 1e-5
    #: Split of the cost term between the op-relaxed and the width-sampled estimate (method.md §9.1).
    a_alpha: float = 2 / 7
    a_omega: float = 5 / 7
    #: Budget: None searches for accuracy only (the cost is still logged, in MACs).
    budget_metric: str | None = None
    budget: float | None = None
    #: Target band [budget * (1 - band), budget] for the adaptive cost weight (method.md §8.3).
    budget_band: float = 0.1
    #: After derivation, grow an argmax network that uses less than budget * (1 - band) into the band
    #: (trisr/search/derive.py); over-budget networks are always shrunk.
    fill_budget: bool = True
    #: The cost weight starts so that the cost term is this fraction of the reconstruction loss.
    cost_fraction: float = 0.5
    #: Deployment LR resolution (H, W) that cost tables are keyed by (method.md §11 item 7).
    cost_resolution: tuple[int, int] = (256, 256)
    #: Architecture steps between adaptive-weight updates ("validation epochs" in the code).
    control_every: int = 20
    #: Steps between progress log lines, and between checkpoints.
    log_every: int = 10
    checkpoint_every: int = 50
    #: Held-out images scored during search/fine-tuning progress (the final evaluation uses all).
    val_images: int = 4
    #: Search strategy (trisr/search/strategies.py): the trilevel search of the paper, HiNAS, NetAdaptV2 or random
    #: search with weight sharing, on the same space, table, budget and fine-tuning.
    strategy: str = "trilevel"
    #: Loss of the supernet passes during the search phase (SEARCH_LOSSES); warm-up and fine-tuning use L1.
    search_loss: str = "l1"
    schema_version: int = RUN_CONFIG_SCHEMA_VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {', '.join(STRATEGIES)}")
        elif STRATEGY_BY_NAME[self.strategy].needs_budget and self.budget is None:
            problems.append(f"strategy {self.strategy} needs a budget (--latency-ms, --macs-g or --params-k)")
        if self.search_loss not in SEARCH_LOSSES:
            problems.append(f"search_loss must be one of {', '.join(SEARCH_LOSSES)}")
        if self.order_penalty not in ORDER_PENALTIES:
            problems.append(f"order_penalty must be one of {ORDER_PENALTIES}")
        if (self.budget is None) != (self.budget_metric is None):
            problems.append("budget and budget_metric go together")
        if self.budget_metric is not None and self.budget_metric not in METRICS:
            problems.append(f"budget metric must be one of {sorted(METRICS)}")
        if self.budget is not None and not (isinstance(self.budget, (int, float)) and math.isfinite(self.budget) and self.budget > 0):
            problems.append(f"the budget must be a finite positive number, got {self.budget}")
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad or ("hflip" in self.augment and "dihedral" in self.augment):
            problems.append(f"augment must be distinct names from {AUGMENTS} (dihedral includes hflip)")
        if self.sampling not in SAMPLINGS:
            problems.append(f"sampling must be one of {SAMPLINGS}")
        if self.lr_patch < 4:
            problems.append("lr_patch must be at least 4")
        for name in ("warmup", "search", "finetune"):
            ph = getattr(self, name)
            if ph.steps < 0 or ph.batch_size < 1:
                problems.append(f"{name}: steps must be >= 0 and batch_size >= 1")
        if self.search.steps < 1:
            problems.append("the search phase needs at least one step")
        if not (math.isfinite(self.max_wall_min) and self.max_wall_min >= 0):
            problems.append(f"max_wall_min must be a finite number >= 0 (0 = no limit), got {self.max_wall_min}")
        if problems:
            raise TrisrError("invalid run configuration: " + "; ".join(problems))

    def recipe(self) -> Recipe:
        """The fine-tuning recipe of this configuration (what derived networks are trained with)."""
        return Recipe(self.finetune, self.lr_patch, self.augment, self.sampling)

    @property
    def cost_metric(self) -> str:
        return self.budget_metric or "macs_g"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["space"] = self.space.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        if d.get("schema_version") != RUN_CONFIG_SCHEMA_VERSION:
            raise TrisrError(f"run config schema version {d.get('schema_version')} is not supported")
        d = dict(d)
        d["space"] = SpaceConfig.from_dict(d["space"])
        d["relax"] = RelaxConfig(**d["relax"])
        for name in ("warmup", "search", "finetune"):
            d[name] = Phase.from_dict(d[name])
        d["arch_betas"] = tuple(d["arch_betas"])
        # Configurations written before the recipe options existed used the reference recipe.
        d["augment"] = tuple(d.get("augment", ("hflip",)))
        d.setdefault("sampling", "uniform")
        d["cost_resolution"] = tuple(d["cost_resolution"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path) -> "RunConfig":
        """A run configuration file (e.g. a run's config.json), with one-line errors."""
        from trisr.io import read_json

        d = read_json(path, "config file", not_json="is not a valid run configuration (not JSON text)",
                      folder_hint="pass its config.json")
        if not isinstance(d, dict):
            raise TrisrError(f"config file {path} is not a valid run configuration (expected a JSON object, got a {type(d).__name__})")
        try:
            return cls.from_dict(d)
        except TrisrError as exc:
            raise TrisrError(f"config file {path} is not a valid run configuration: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
            raise TrisrError(f"config file {path} is not a valid run configuration: {exc.__class__.__name__}: {exc}") from None

    def replace(self, **changes) -> "RunConfig":
        return replace(self, **changes)


def _paper() -> RunConfig:
    # method.md §13. Epoch counts become steps: 100 epochs x (3450 // 2 // 2) = 86,200 search iterations with
    # the author's batch 2; fine-tuning 300 epochs x 215 = 64,500 iterations at batch 16.
    return RunConfig(
        preset="paper",
        space=SpaceConfig(),
        warmup=Phase(steps=86_200, lr=2e-4, batch_size=2),
        search=Phase(steps=86_200, lr=1e-4, batch_size=2),
        finetune=Phase(steps=64_500, lr=2e-4, batch_size=16),
        control_every=862,
        log_every=50,
        checkpoint_every=500,
    )


def _quick() -> RunConfig:
    # Sized to finish end to end in under 10 minutes on a 2-core CPU (docs/benchmarks.md): nf 32 (widths
    # {16, 24, 32}), 1 stem + 2 searchable cells + 1 up block (9 nodes), x2. Learning rates are raised
    # because the schedule is ~100x shorter than the paper's.
    return RunConfig(
        preset="quick",
        space=SpaceConfig(nf=32, num_cell=3, num_up=1, num_cell_path_search=2, scale=2),
        lr_patch=24,
        # Scale augmentation (copies of the photos downscaled by 0.9 ... 0.6, FSRCNN's remedy for small sets) on top
        # of dihedral + RGB permutations: on the development split +0.09 dB on a 7.6 GMAC network of this space
        # (14,000 steps) and +0.12 dB on a 13.7 GMAC one of the cpu space (16,000 steps), docs/benchmarks.md §6.11.
        augment=("dihedral", "rgb_perm", "rescale"),
        warmup=Phase(steps=100, lr=1e-3, batch_size=8),
        search=Phase(steps=150, lr=5e-4, batch_size=8),
        # Fine-tuning the small derived network is cheap (~25-35 ms/step here, channels_last) and is where the PSNR
        # comes from: it gets what the 10-minute budget leaves after the supernet. The split was measured on the
        # development split (docs/benchmarks.md §6.9): 2x the supernet steps or half of them, at equal time,
        # both scored 0.08 dB below this balance. Recipe chosen on a development split
        # (benchmarks/recipe_ablation.py, docs/benchmarks.md): lr 4e-3, cosine to 1 %, EMA 0.999.
        finetune=Phase(steps=14_000, lr=4e-3, batch_size=16, schedule="cosine", ema=0.999),
        arch_lr=3e-3,
        control_every=10,
        log_every=5,
        checkpoint_every=25,
    )


def _cpu() -> RunConfig:
    # Between quick and paper, sized to finish within 45 minutes on a 2-core CPU (docs/benchmarks.md §6.8):
    # nf 48 (widths {16, 24, 32, 40, 48}), 1 stem + 3 searchable cells + 1 up block (14 tree nodes), x2.
    # The 350 supernet steps took 7-8 min there (search steps get cheaper as sparsestmax prunes); the fine-tune steps
    # fill the rest of the 45 minutes at the 50-66 ms/step of 17 GMAC derived networks, set by time, not by a score
    # (as quick's). Networks of equal MACs differ 1.6x in step time (side by side), and machines differ too
    # (docs/benchmarks.md §6.11, §6.12), so the run also has a 45-minute limit: a slower network or machine
    # fine-tunes fewer steps instead. Its networks are 2-3x quick's, so the fine-tune lr is halved: on a 13.7 GMAC network of this
    # space (development split, 6,000 steps) lr 2e-3 scored +0.09 dB over quick's 4e-3, and an LR patch of 48
    # (batch 4, equal pixels) tied it at 1.3x the step time, so the patch stays 24.
    quick = _quick()
    return quick.replace(
        preset="cpu",
        space=SpaceConfig(nf=48, num_cell=4, num_up=1, num_cell_path_search=3, scale=2),
        warmup=Phase(steps=150, lr=1e-3, batch_size=8),
        search=Phase(steps=200, lr=5e-4, batch_size=8),
        finetune=replace(quick.finetune, steps=32_000, lr=2e-3),
        max_wall_min=45.0,
        control_every=20,
        log_every=10,
        checkpoint_every=50,
    )


PRESETS = {"quick": _quick, "cpu": _cpu, "paper": _paper}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise TrisrError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None

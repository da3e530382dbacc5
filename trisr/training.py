"""Training a derived network: the one loop and the one training state of fine-tuning after a search
(``trisr.search.engine``), ``trisr train`` (:mod:`trisr.train`) and so every baseline (searched, random and
hand-designed networks alike), so that they are trained, checkpointed and resumed the same way.

* :func:`optimizer_step` — backward, gradient averaging across ranks, clipping, step (the supernet phases of
  the search use it too);
* :class:`EMA` — the exponential moving average of the weights that a phase may ship instead of the weights;
* :func:`train_steps` — the plain L1 loop;
* :class:`Trainer` — model, optimiser, schedule, EMA and patch sampler of one training run, with
  ``state_dict`` / ``load_state_dict`` for a bit-exact resume;
* :func:`plan_steps` — how many of a recipe's steps fit in a wall-time limit, from the step time measured on
  this machine before training starts (:class:`StepPlan`).
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from trisr.checkpoint import rng_state, set_rng_state
from trisr.data.pairs import ImagePair
from trisr.data.patches import PatchSampler
from trisr.search import dist
from trisr.search.config import Phase, Recipe

__all__ = [
    "EMA", "STREAM", "StepPlan", "Trainer", "is_trainable", "optimizer_step", "plan_steps", "probe_step_ms",
    "to_device", "train_steps", "training_memory_format",
]

#: The sampler stream of training a derived network. It is the fine-tune stream of a search (0 is the warm-up,
#: 1 and 2 the architecture and weight halves), and ``trisr train`` uses it too, so that training a searched
#: architecture draws the same patches whichever command runs it.
STREAM = 3


def training_memory_format(device: torch.device | str) -> torch.memory_format:
    """Layout of weights and activations while training. On CPU, NHWC (channels_last): oneDNN's convolutions,
    the backward pass above all, run 1.18-1.47x faster per fine-tune step of derived networks, 1.4x per
    supernet warm-up step and ~1.08x per search iteration than in NCHW (measured side by side,
    docs/benchmarks.md §9). The layout changes
    only the order of floating-point sums, not the model; saved weights are always written contiguous. CUDA
    keeps NCHW (fp32 gains nothing measured there)."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def to_device(batch: tuple[torch.Tensor, ...], device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """A sampled batch on ``device`` in the training layout (:func:`training_memory_format`)."""
    fmt = training_memory_format(device)
    return tuple(t.to(device).contiguous(memory_format=fmt) for t in batch)


def optimizer_step(loss, params, opt, info, clip: float | None = None, sched=None, also_zero=()) -> None:
    """Backward, average gradients across ranks, clip, step. ``also_zero`` clears the other optimiser's
    parameters too, so the architecture and weight steps never leak gradients into each other."""
    for o in (opt, *also_zero):
        o.zero_grad(set_to_none=True)
    loss.backward()
    dist.average_gradients(params, info)
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    if sched is not None:
        sched.step()


class EMA:
    """Exponential moving average of a model's weights (BasicSR's ``net_g_ema``), kept in a copy of the model
    so that it can be evaluated and saved like the model itself. The decay warms up as
    ``min(decay, (1 + n) / (10 + n))`` so that short runs are not dominated by the initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema = list(self.module.state_dict().values())
        cur = list(model.state_dict().values())
        torch._foreach_mul_(ema, d)
        torch._foreach_add_(ema, cur, alpha=1 - d)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def train_steps(
    model, sampler, opt, sched, phase: Phase, start: int, info, device, on_step, ema: EMA | None = None
) -> None:
    """Plain L1 training of a derived network from step ``start`` to ``phase.steps``; grads averaged across
    ranks; ``on_step(done, loss)`` after every step."""
    params = list(model.parameters())
    model.to(memory_format=training_memory_format(device)).train()  # in place: the optimiser keeps its params
    for step in range(start, phase.steps):
        lr, hr = to_device(sampler.sample(phase.batch_size), device)
        loss = F.l1_loss(model(lr), hr)
        optimizer_step(loss, params, opt, info, phase.clip, sched)
        if ema is not None:
            ema.update(model)
        on_step(step + 1, loss.item())
    model.to(memory_format=torch.contiguous_format).eval()


def is_trainable(model: torch.nn.Module) -> bool:
    """Whether ``model`` has anything to train (the zoo's ``bicubic`` has no parameters)."""
    return any(p.requires_grad for p in model.parameters())


class Trainer:
    """The training state of one network (derived or zoo) under a :class:`~trisr.search.config.Recipe`: the
    model, Adam, the phase's lr schedule, the EMA (when the phase keeps one), this rank's patch sampler, and
    the number of steps done.

    :meth:`state_dict` holds everything a bit-exact resume needs, under the keys of ``trisr train``
    checkpoints: ``model``, ``opt``, ``sched``, ``ema`` (only with an EMA), ``step`` and ``ranks`` (every rank's
    sampler and torch RNG state, ``[{"sampler": ..., "rng": ...}, ...]``, as the JSON string that checkpoints
    have always held). The caller builds the trainer the same way (same architecture, recipe, images, seed
    and ranks) before :meth:`load_state_dict`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        recipe: Recipe,
        pairs: Sequence[ImagePair],
        seed: int,
        info: dist.DistInfo = dist.DistInfo(),
        device: str | torch.device = "cpu",
    ) -> None:
        phase = recipe.phase
        self.model, self.phase, self.info, self.device = model, phase, info, torch.device(device)
        self.trainable = is_trainable(model)
        self.sampler = PatchSampler(
            pairs, recipe.lr_patch, model.arch.scale, seed,
            stream=(STREAM,), augment=recipe.augment, sampling=recipe.sampling,
        ).shard(info.rank, info.world_size)
        # A parameter-free network gets a dummy parameter for the (unused) optimiser state, so that its
        # checkpoint and resume look like any other.
        params = model.parameters() if self.trainable else [torch.nn.Parameter(torch.zeros(1))]
        self.opt = torch.optim.Adam(params, lr=phase.lr)
        self.sched = phase.scheduler(self.opt)
        self.ema = EMA(model, phase.ema) if phase.ema > 0 and self.trainable else None
        self.step = 0

    @property
    def shipped(self) -> torch.nn.Module:
        """What is evaluated, saved and exported: the weight average where the phase keeps one, else the model."""
        return self.model if self.ema is None else self.ema.module

    @property
    def lr(self) -> float:
        """The learning rate of the next step (for progress and logs)."""
        return self.sched.get_last_lr()[0]

    def run(self, on_step: Callable[[int, float], None]) -> None:
        """Train from :attr:`step` to the phase's last step; ``on_step(done, loss)`` after every step (progress,
        logs, checkpoints: :attr:`step` is already ``done`` there, so :meth:`state_dict` saves that step)."""

        def stepped(done: int, loss: float) -> None:
            self.step = done
            on_step(done, loss)

        train_steps(self.model, self.sampler, self.opt, self.sched, self.phase, self.step, self.info, self.device,
                    stepped, self.ema)

    def state_dict(self) -> dict:
        """The full training state (see the class). A collective call under ``torchrun``: every rank calls it,
        every rank gets every rank's sampler and RNG state."""
        ranks = dist.all_gather_object({"sampler": self.sampler.state_dict(), "rng": rng_state()}, self.info)
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            **({} if self.ema is None else {"ema": self.ema.state_dict()}),
            "ranks": json.dumps(ranks),
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (extra keys are ignored); this rank takes its own sampler and RNG state."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        mine = json.loads(state["ranks"])[self.info.rank]
        self.sampler.load_state_dict(mine["sampler"])
        set_rng_state(mine["rng"])
        self.step = int(state["step"])


#: Steps of a step-time probe: the first are discarded (oneDNN builds its kernels, the allocator warms up), the
#: median of the rest is the step time.
PROBE_SKIP, PROBE_STEPS = 5, 20


@dataclass(frozen=True)
class StepPlan:
    """How many steps a training run takes: the recipe's ``requested_steps``, or fewer where they would not fit
    in the ``max_min`` minutes the steps were given, at the step time ``step_ms`` measured before training
    (``max_min`` None: no limit, nothing measured, ``step_ms`` None); never fewer than ``min_steps``. Saved in
    checkpoints and summaries so that a resumed run keeps the count it started with, and baselines train exactly
    the steps the searched network got."""

    steps: int
    requested_steps: int
    max_min: float | None = None
    step_ms: float | None = None
    min_steps: int = 1

    @property
    def capped(self) -> bool:
        return self.steps < self.requested_steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StepPlan":
        def num(key):
            return None if d.get(key) is None else float(d[key])

        return cls(int(d["steps"]), int(d["requested_steps"]), num("max_min"), num("step_ms"), int(d.get("min_steps", 1)))

    def recipe(self, recipe: Recipe) -> Recipe:
        """``recipe`` with this plan's step count (a warm-up longer than the steps is shortened with them)."""
        return recipe.replace(steps=self.steps, lr_warmup_steps=min(recipe.phase.lr_warmup_steps, self.steps))

    def describe(self) -> str:
        if self.step_ms is None or self.max_min is None:
            return f"{self.steps:,} steps"

        def took(n: int) -> str:
            return f"{n * self.step_ms / 60_000:.1f} min"
        head = f"{self.max_min:.1f} min for the steps at {self.step_ms:.1f} ms/step"
        if not self.capped:
            return f"{head}: all {self.steps:,} steps ({took(self.steps)})"
        if self.steps == self.min_steps and self.steps * self.step_ms > self.max_min * 60_000:
            return (f"{head}: the floor of {self.steps:,} of {self.requested_steps:,} steps ({took(self.steps)}), "
                    f"past the time limit")
        return f"{head}: {self.steps:,} of {self.requested_steps:,} steps ({took(self.steps)}; all would take {took(self.requested_steps)})"


def probe_step_ms(
    model: torch.nn.Module,
    recipe: Recipe,
    pairs: Sequence[ImagePair],
    seed: int,
    info: dist.DistInfo = dist.DistInfo(),
    device: str | torch.device = "cpu",
    skip: int = PROBE_SKIP,
    steps: int = PROBE_STEPS,
) -> float:
    """Median wall time in ms of one training step of ``model`` under ``recipe`` (sampling, forward, backward,
    Adam, EMA), measured on a copy: the model, its sampler and the torch RNG are left as they were, so the
    training that follows is bit-identical to one without the probe. Under ``torchrun`` the slowest rank's."""
    saved = rng_state()
    marks: list[float] = []
    try:
        probe = Trainer(copy.deepcopy(model), recipe.replace(steps=skip + steps, lr_warmup_steps=0), pairs, seed, info, device)
        marks.append(time.perf_counter())
        probe.run(lambda done, loss: marks.append(time.perf_counter()))  # loss.item() synchronises CUDA each step
    finally:
        set_rng_state(saved)
    step_ms = statistics.median(1000 * (b - a) for a, b in zip(marks[skip:], marks[skip + 1:]))
    return max(dist.all_gather_object(step_ms, info))


def plan_steps(
    model: torch.nn.Module,
    recipe: Recipe,
    pairs: Sequence[ImagePair],
    seed: int,
    max_min: float | None,
    info: dist.DistInfo = dist.DistInfo(),
    device: str | torch.device = "cpu",
    min_steps: int = 1,
) -> StepPlan:
    """The recipe's steps, cut to what fits in ``max_min`` minutes at the step time :func:`probe_step_ms`
    measures here, but not below ``min_steps`` (``max_min`` None: no limit and no probe). ``max_min`` covers
    the training steps alone: held-out evaluations and checkpoints during training are the caller's to leave
    room for."""
    requested = recipe.phase.steps
    if max_min is None or requested == 0 or not is_trainable(model):
        return StepPlan(requested, requested)
    step_ms = probe_step_ms(model, recipe, pairs, seed, info, device)
    floor = max(1, min(min_steps, requested))
    fit = int(max(0.0, max_min) * 60_000 / step_ms)
    return StepPlan(max(floor, min(requested, fit)), requested, max_min, step_ms, floor)

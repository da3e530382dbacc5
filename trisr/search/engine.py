"""The single-phase search and training run (method.md §7-§10):

1. supernet warm-up: weights only, r = 0, sandwich of 4 passes (max, min, 2 random widths);
2. search: per iteration one first-order architecture step on the architecture half of the data
   (three-pass sandwich L1 + order penalty + adaptive-weight expected cost), then one weight step on the
   weight half; the sparsestmax radius rises linearly 0 -> 1 and one-hot rows freeze;
3. derive by argmax (shrunk into the budget if needed), inherit weights by mapping and slicing;
4. fine-tune the derived network on all training images; evaluate on held-out images.

Every phase checkpoints atomically and a killed run resumes where it stopped (``resume=True``). Under
``torchrun`` every rank runs the same loop on its own data stream; gradients are averaged, so every rank
holds identical weights and architecture parameters, and only rank 0 writes outputs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from trisr import relax as R
from trisr.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from trisr.checks import check_out_dir
from trisr.data.pairs import ImagePair, load_pairs
from trisr.data.patches import PatchSampler
from trisr.errors import BudgetError, DataError, TrisrError
from trisr.evaluate import evaluate
from trisr.progress import Reporter
from trisr.rundir import CHECKPOINT_FILE, CONFIG_FILE, COST_TABLE_FILE, RunLog, save_model, save_supernet, write_summary
from trisr.search import dist
from trisr.search.budget import BudgetController
from trisr.io import atomic_write_json, atomic_write_text
from trisr.losses import LOSSES
from trisr.search.config import RunConfig
from trisr.search.derive import fit_to_budget
from trisr.search.strategies import STRATEGY_BY_NAME
from trisr.space.cost import CostModel, CostTable, analytic_cost_table
from trisr.space.count import count_macs, count_params
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.inherit import inherit
from trisr.space.supernet import ArchWeights, Supernet
from trisr.training import StepPlan, Trainer, optimizer_step, plan_steps, to_device, training_memory_format
from trisr.versions import versions

PHASES = ("warmup", "search", "finetune", "done")
#: How many times derivation may re-aim the table after measuring its pick over the budget (_fit_measured).
MEASURED_REFITS = 3
#: A pick is accepted when it measures within this share under the budget: the run-to-run spread of one
#: measurement here (a random-strategy pick measured 29.70 ms at derivation and 30.51 ms at the end of its run).
MEASURED_MARGIN = 0.03


#: An end-to-end time limit (``RunConfig.max_wall_min``) gives the fine-tune's steps what the run has not yet
#: spent, less ``FINISH_RESERVE_MIN`` for the final evaluation and summary, over ``1 + FINETUNE_OVERHEAD`` for the
#: held-out evaluations and checkpoints during the fine-tune and the probe's error (two cpu-preset runs took 2 %
#: less and 7 % more than probed, docs/benchmarks.md §6.12); never fewer than ``MIN_FINETUNE_FRACTION`` of its
#: steps: on a machine too slow for the limit the run passes it rather than ship a barely trained network.
FINISH_RESERVE_MIN, FINETUNE_OVERHEAD, MIN_FINETUNE_FRACTION = 1.0, 0.10, 0.1


def finetune_minutes(limit_min: float, spent_min: float) -> float:
    """Minutes the fine-tune's steps may take under an end-to-end limit of ``limit_min`` after ``spent_min``."""
    return max(0.0, (limit_min - spent_min - FINISH_RESERVE_MIN) / (1 + FINETUNE_OVERHEAD))


@dataclass
class Data:
    train: list[ImagePair]
    val: list[ImagePair]


def load_data(source: Path | None, scale: int, lr_patch: int) -> Data:
    train = load_pairs(source, scale, "train")
    val = load_pairs(source, scale, "val")
    if len(train) < 2:
        raise DataError(f"the search needs at least 2 training images (architecture and weight halves), found {len(train)}")
    PatchSampler(train, lr_patch, scale)  # validates that every image holds a patch
    return Data(train, val)


def order_penalty(gamma_logits: torch.Tensor, tree, kind: str, lam: float) -> torch.Tensor:
    """Network-level sorting device (method.md §6) on the raw node logits.

    The search does not put this term in the Adam loss: it applies its gradient as a decoupled plain step
    after the Adam step (:func:`order_step`, like AdamW's decoupled weight decay). Inside Adam, a node outside
    the sparsestmax support (zero weight, zero reconstruction gradient) sees only the penalty's constant
    gradient, which Adam normalises to a step of about ``arch_lr`` whatever λ is: over the quick preset's 150
    steps every such leaf logit fell by 0.45 and the root's rose by 0.45 for λ = 1e-5, 1e-3 and 1e-1 alike
    (``python -m benchmarks.order_penalty``). Decoupled, a step moves a logit by ``arch_lr`` times the
    gradient (``arch_lr·λ`` on a complete leaf, ``arch_lr·λ·n_leaves`` on the root), so λ sets the strength.
    """
    if kind == "none" or lam == 0.0:
        return gamma_logits.new_zeros(())
    if kind == "linear":
        # Sum over complete root-to-leaf paths of consecutive differences telescopes to
        # sum(leaves) - n_leaves * root (§6.2).
        leaves = tree.complete_leaves
        return lam * (gamma_logits[leaves].sum() - len(leaves) * gamma_logits[0])
    # Edge-wise hinge (§6.4): zero once logits are non-increasing along every edge.
    child = torch.tensor([n.index for n in tree.nodes[1:]])
    parent = torch.tensor([n.parent for n in tree.nodes[1:]])
    return lam * F.relu(gamma_logits[child] - gamma_logits[parent]).sum()


@torch.no_grad()
def order_step(gamma: torch.Tensor, tree, kind: str, lam: float, lr: float, frozen: torch.Tensor | None = None) -> None:
    """Decoupled sorting step: ``gamma -= lr * d(order_penalty)/d(gamma)``, in place, outside Adam's
    normalisation (see :func:`order_penalty`). Deterministic and stateless, so resume stays bit-exact, and
    identical on every rank (gamma is). A frozen gamma row (``frozen >= 0``) is left untouched."""
    if kind == "none" or lam == 0.0 or (frozen is not None and bool((frozen >= 0).any())):
        return
    with torch.enable_grad():
        g = gamma.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(order_penalty(g, tree, kind, lam), g)
    gamma.sub_(lr * grad)


def _peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _digest(tensors) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class SearchRun:
    """One run in one output folder; ``run()`` executes (or resumes) every remaining phase."""

    def __init__(
        self,
        config: RunConfig,
        out: Path,
        data_source: Path | None = None,
        resume: bool = False,
        reporter: Reporter | None = None,
        device: str | torch.device = "cpu",
        cost_table: CostTable | None = None,
        extra_summary: Callable[[DerivedNet], dict] | None = None,
        measure: Callable[[Genotype], float] | None = None,
    ) -> None:
        self.out = check_out_dir(out)
        self.device = torch.device(device)
        self.info = dist.init_distributed(self.device)
        if self.device.type == "cuda" and self.info.enabled:
            self.device = torch.device("cuda", self.info.local_rank)
            torch.cuda.set_device(self.device)
        self.reporter = reporter if (reporter is not None and self.info.is_main) else Reporter()
        self.log = RunLog(self.out, self.info.is_main)
        self.data_source = data_source
        ckpt_path = self.out / CHECKPOINT_FILE
        self.ckpt: dict | None = None
        if resume:
            self.ckpt = load_checkpoint(ckpt_path)
            if self.info.is_main:  # half-written temporary files of a write the kill interrupted
                for stale in self.out.glob(f".{CHECKPOINT_FILE}.*.tmp"):
                    stale.unlink(missing_ok=True)
            config = RunConfig.from_dict(json.loads(self.ckpt["config"]))
            if self.ckpt.get("world_size", 1) != self.info.world_size:
                raise TrisrError(
                    f"the run was started with {self.ckpt.get('world_size', 1)} process(es); resume it with the same number"
                )
        elif ckpt_path.exists():
            raise TrisrError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        self.config = config
        space = config.space
        torch.manual_seed(config.seed)  # identical supernet initialisation on every rank
        #: The strategy's row of trisr/search/strategies.py: what differs between strategies.
        self.strategy = STRATEGY_BY_NAME[config.strategy]
        self.supernet = Supernet(space, config.relax, network=self.strategy.network).to(self.device)
        if self.strategy.share_cells_by_depth:
            from trisr.search.hinas import share_cells_by_depth

            share_cells_by_depth(self.supernet, tie_now=True)  # a resumed run then loads its own (tied) rows
        self.search_loss = LOSSES[config.search_loss]
        table = cost_table or self._stored_cost_table()
        if table is None:
            if config.cost_metric == "latency_ms":
                raise TrisrError("a latency budget needs a measured latency table (trisr profile, or --profile FILE)")
            table = analytic_cost_table(space, config.cost_metric, config.cost_resolution)
        if tuple(table.resolution) != tuple(config.cost_resolution):
            raise TrisrError(
                f"cost table is keyed by {table.resolution[0]}x{table.resolution[1]} LR but the run's cost resolution "
                f"is {config.cost_resolution[0]}x{config.cost_resolution[1]}"
            )
        self.cost_table = table
        self.extra_summary = extra_summary
        #: The derived network's latency measured in the target runtime (ms); with a latency budget, derivation
        #: checks the table's pick against it (:meth:`_fit_measured`). Single-process runs only: ranks measuring
        #: apart could disagree on the network.
        self.measure = measure if self.info.world_size == 1 else None
        self.cost_model = CostModel(table, space, self.supernet.tree)
        if config.budget is not None:
            self.cost_model.check_budget(config.budget)
        self.controller = BudgetController(config.budget, config.budget_band)
        self.trace_dir = os.environ.get("TRISR_SYNC_TRACE")
        self.elapsed = dict(self.ckpt["elapsed"]) if self.ckpt else {}
        self._spent_before_s = sum(self.elapsed.values())
        self.history: list[dict] = list(json.loads(self.ckpt["history"])) if self.ckpt else []
        #: Held-out PSNR of the shipped (EMA) weights during fine-tuning: logged, never used to choose anything.
        self.curve: list[dict] = list(json.loads(self.ckpt.get("curve", "[]"))) if self.ckpt else []
        #: Peak resident memory through the search phase and derivation, and at the end (MiB; the process's own,
        #: so a standalone run's "search" is what its search strategy needed).
        self.peak_rss: dict = dict(json.loads(self.ckpt.get("peak_rss_mib", "{}"))) if self.ckpt else {}
        #: The fine-tune's step count (fixed when it starts, kept across resumes; set by :meth:`_finetune`).
        self.finetune_plan: StepPlan | None = None

    # -- plumbing -------------------------------------------------------------------------------------------

    def _stored_cost_table(self) -> CostTable | None:
        """A resumed run reuses the cost table it started with (a copy lives in the run folder)."""
        path = self.out / COST_TABLE_FILE
        return CostTable.load(path) if (self.ckpt is not None and path.exists()) else None

    def _phase_seed(self, phase: str) -> None:
        """Seed a phase that starts at step 0, so a run resumed at a phase boundary draws the same
        Gumbel/width samples as an uninterrupted one. Per-rank streams: ranks draw differently."""
        torch.manual_seed(self.config.seed + 7919 * (self.info.rank + 1) + 104729 * PHASES.index(phase))

    def _sampler(self, pairs: list[ImagePair], part: int) -> PatchSampler:
        # part: 0 warm-up, 1 and 2 the architecture and weight halves; fine-tuning's is trisr.training.STREAM (3).
        cfg = self.config
        base = PatchSampler(
            pairs, cfg.lr_patch, cfg.space.scale, cfg.seed, stream=(part,), augment=cfg.augment, sampling=cfg.sampling
        )
        return base.shard(self.info.rank, self.info.world_size)

    def _checkpoint(self, phase: str, step: int, state: dict, samplers: dict[str, PatchSampler] | None) -> None:
        # Every rank contributes its own sampler and RNG state; rank 0 writes the file. Fine-tuning passes
        # samplers=None: its trainer's state already holds every rank's (``ranks``, :func:`_finetune_keys`).
        per_rank = None
        if samplers is not None:
            mine = {
                "samplers": {k: s.state_dict() for k, s in samplers.items()},
                "rng": rng_state(),
            }
            per_rank = dist.all_gather_object(mine, self.info)
        if self.info.is_main:
            ckpt = {
                "config": self.config.to_json(),
                "phase": phase,
                "step": step,
                "world_size": self.info.world_size,
                **({} if per_rank is None else {"ranks": json.dumps(per_rank)}),
                "elapsed": self.elapsed,
                "history": json.dumps(self.history),
                "curve": json.dumps(self.curve),
                "peak_rss_mib": json.dumps(self.peak_rss),
                "controller": json.dumps(self.controller.state_dict()),
                **state,
            }
            save_checkpoint(self.out / CHECKPOINT_FILE, ckpt)
        dist.barrier(self.info)

    def _restore_rank_state(self, samplers: dict[str, PatchSampler]) -> None:
        mine = json.loads(self.ckpt["ranks"])[self.info.rank]
        for k, s in samplers.items():
            s.load_state_dict(mine["samplers"][k])
        set_rng_state(mine["rng"])

    def _trace(self, phase: str, step: int, radius: float, module: torch.nn.Module, batch: torch.Tensor | None = None) -> None:
        """Debug aid for distributed runs (env TRISR_SYNC_TRACE=DIR): each rank appends what must agree
        (radius, cost weight, a digest of every parameter and buffer) and a digest of its own batch,
        which must differ between ranks (data sharding)."""
        if not self.trace_dir:
            return
        rec = {
            "phase": phase,
            "step": step,
            "radius": radius,
            "cost_weight": self.controller.weight,
            "params": _digest(list(module.parameters()) + list(module.buffers())),
            "batch": None if batch is None else _digest([batch]),
        }
        with open(Path(self.trace_dir) / f"rank{self.info.rank}.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _val_psnr(self, model: Callable[[], torch.nn.Module]) -> float | None:
        """Held-out PSNR (Y, crop = scale) of a derived network, for progress and the log. Rank 0 only, so
        ``model`` is a factory: other ranks never build it."""
        pairs = self.val_pairs[: self.config.val_images]
        if not self.info.is_main or not pairs:
            return None
        return evaluate(model(), pairs, self.config.space.scale, self.device)["psnr_db"]

    def _timed(self, phase: str, t0: float) -> None:
        self.elapsed[phase] = self.elapsed.get(phase, 0.0) + time.time() - t0

    # -- main entry --------------------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.config
        self._run_t0 = time.time()  # with the checkpoint's phase times: what an end-to-end time limit has spent
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / CONFIG_FILE, cfg.to_json() + "\n")
            atomic_write_json(self.out / COST_TABLE_FILE, self.cost_table.to_dict())
        self.log.event("start", resume=self.ckpt is not None, world_size=self.info.world_size, device=str(self.device))
        t0 = time.time()
        data = load_data(self.data_source, cfg.space.scale, cfg.lr_patch)
        self.val_pairs = data.val
        self._timed("data", t0)
        phase = self.ckpt["phase"] if self.ckpt else "warmup"
        if phase == "done":
            self.reporter.message(f"run in {self.out} is already complete")
            return json.loads(self.ckpt["summary"])
        dist.broadcast_parameters(self.supernet, self.info)
        if phase in ("warmup", "search"):
            if self.ckpt:
                self.supernet.load_state_dict(self.ckpt["supernet"])
            self.supernet.to(memory_format=training_memory_format(self.device))
            if phase == "warmup":
                self._warmup(data)
            derived = self._search(data)
        else:  # finetune: the derived network's weights come from the checkpoint
            derived = DerivedNet(Genotype.from_dict(json.loads(self.ckpt["genotype"]))).to(self.device)
        derived = self._finetune(data, derived)
        return self._finish(data, derived)

    # -- phase 1: warm-up ----------------------------------------------------------------------------------

    def _warmup(self, data: Data) -> None:
        cfg, net = self.config, self.supernet
        phase = cfg.warmup
        samplers = {"warmup": self._sampler(data.train, 0)}
        params = net.weight_parameters()
        opt = torch.optim.Adam(params, lr=phase.lr, betas=(0.9, 0.999))
        sched = phase.scheduler(opt)
        start = 0
        self._phase_seed("warmup")
        if self.ckpt and self.ckpt["phase"] == "warmup":
            opt.load_state_dict(self.ckpt["opt"])
            sched.load_state_dict(self.ckpt["sched"])
            self._restore_rank_state(samplers)
            start = self.ckpt["step"]
        self.reporter.phase("warm-up", phase.steps, start)
        with torch.no_grad():
            alpha, gamma = net.relaxed_alpha(0.0), net.relaxed_gamma(0.0)  # r = 0, logits fixed
        t0 = time.time()
        for step in range(start, phase.steps):
            lr, hr = to_device(samplers["warmup"].sample(phase.batch_size), self.device)
            loss = lr.new_zeros(())
            for mode in ("max", "min", "random", "random"):  # sandwich rule, pretraining form
                widths, _ = net.width_distribution(mode, 0.0)
                links = net.link_weights()  # dense level: a connection drawn per pass from the (near-uniform) start
                links = None if links is None else links.detach()
                loss = loss + F.l1_loss(net(lr, ArchWeights(alpha, gamma, widths, links=links)), hr)
            optimizer_step(loss, params, opt, self.info, phase.clip, sched)
            done = step + 1
            self._trace("warmup", done, 0.0, net, lr)
            if done % cfg.log_every == 0 or done == phase.steps:
                metrics = {"loss": loss.item() / 4, "lr": sched.get_last_lr()[0]}
                self.reporter.step(done, metrics)
                self.log.event("warmup", step=done, **metrics)
            if done % cfg.checkpoint_every == 0 or done == phase.steps:
                self._timed("warmup", t0)
                t0 = time.time()
                nxt = ("search", 0) if done == phase.steps else ("warmup", done)
                state = {"supernet": net.state_dict()}
                if nxt[0] == "warmup":
                    state.update(opt=opt.state_dict(), sched=sched.state_dict())
                self._checkpoint(nxt[0], nxt[1], state, samplers if nxt[0] == "warmup" else {})
        self.reporter.end_phase()
        self.ckpt = None  # later phases start fresh

    # -- phase 2: search -------------------------------------------------------------------------------------

    def _expected_cost(self, alpha: torch.Tensor, gamma: torch.Tensor, radius: float) -> tuple[torch.Tensor, dict]:
        """F-bar of method.md §9.1: a_alpha * F(alpha relaxed, widths max, gamma) +
        a_omega * F(alpha uniform, widths sampled/relaxed, gamma)."""
        net, cfg, cm = self.supernet, self.config, self.cost_model
        links = net.link_weights("probs")  # dense level: each node's expected add; None on the tree
        max_w, _ = net.width_distribution("max", 0.0)
        f_ops = cm.expected(alpha, max_w, gamma, links)
        if net.space.num_widths == 1:
            return f_ops, {"cost_ops": f_ops.item()}
        widths, _ = net.width_distribution("sample", radius)
        uniform = torch.full_like(alpha, 1.0 / alpha.shape[-1])
        f_widths = cm.expected(uniform, widths, gamma, links)
        total = cfg.a_alpha * f_ops + cfg.a_omega * f_widths
        return total, {"cost_ops": f_ops.item(), "cost_widths": f_widths.item()}

    def _search(self, data: Data) -> DerivedNet:
        others = {"random": self._random_search, "netadapt": self._netadapt_search}
        return others.get(self.strategy.phase, self._differentiable_search)(data)

    def _differentiable_search(self, data: Data) -> DerivedNet:
        """trilevel and hinas: architecture and weight steps alternate; the strategy row sets the passes per
        step and the cell sharing, its defaults the relaxation and the sorting term."""
        cfg, net, info = self.config, self.supernet, self.info
        passes, loss_fn = self.strategy.passes, self.search_loss
        phase = cfg.search
        arch_half, weight_half = data.train[0::2], data.train[1::2]
        samplers = {"arch": self._sampler(arch_half, 1), "weight": self._sampler(weight_half, 2)}
        w_params, a_params = net.weight_parameters(), net.arch_parameters()
        w_opt = torch.optim.Adam(w_params, lr=phase.lr, betas=(0.9, 0.999))
        w_sched = phase.scheduler(w_opt)
        a_opt = torch.optim.Adam(a_params, lr=cfg.arch_lr, betas=cfg.arch_betas, weight_decay=0.0)
        start = 0
        self._phase_seed("search")
        if self.ckpt and self.ckpt["phase"] == "search" and "w_opt" in self.ckpt:
            w_opt.load_state_dict(self.ckpt["w_opt"])
            w_sched.load_state_dict(self.ckpt["w_sched"])
            a_opt.load_state_dict(self.ckpt["a_opt"])
            self.controller.load_state_dict(json.loads(self.ckpt["controller"]))
            self._restore_rank_state(samplers)
            start = self.ckpt["step"]
        self.reporter.phase("search", phase.steps, start)
        t0 = time.time()
        for step in range(start, phase.steps):
            # r rises linearly over the search phase, updated every iteration (method.md §4.4).
            r = step / phase.steps
            # Architecture step: first order, on the architecture half.
            lr, hr = to_device(samplers["arch"].sample(phase.batch_size), self.device)
            alpha, gamma = net.relaxed_alpha(r), net.relaxed_gamma(r)
            rec = lr.new_zeros(())
            for mode in passes:
                widths, masked = net.width_distribution(mode, r)
                links = net.link_weights()  # dense level: path-level sampling, one draw per pass
                rec = rec + loss_fn(net(lr, ArchWeights(alpha, gamma, widths, masked, links)), hr)
            cost, cost_parts = self._expected_cost(alpha, gamma, r)
            # Calibrate the cost weight from rank 0's first step so every rank uses the same value.
            if cfg.budget is not None and not self.controller.calibrated:
                calib = dist.all_gather_object((rec.item(), cost.item()), info)[0]
                self.controller.calibrate(calib[0], calib[1], cfg.cost_fraction)
            arch_loss = rec
            if cfg.budget is not None:
                arch_loss = arch_loss + self.controller.weight * cost.to(arch_loss.dtype)
            optimizer_step(arch_loss, a_params, a_opt, info, also_zero=(w_opt,))
            # Sorting device as a decoupled plain-gradient step, so that λ sets its strength (order_penalty).
            order_step(net.gamma, net.tree, cfg.order_penalty, cfg.order_lambda, cfg.arch_lr, net.gamma_frozen)
            with torch.no_grad():
                arch_now = net.arch_weights(r, "sample")
                frozen = net.freeze_one_hot(arch_now)
            # Weight step on the weight half, architecture fixed (trilevel: three-pass sandwich).
            lr, hr = to_device(samplers["weight"].sample(phase.batch_size), self.device)
            with torch.no_grad():
                alpha, gamma = net.relaxed_alpha(r), net.relaxed_gamma(r)
            loss = lr.new_zeros(())
            for mode in passes:
                widths, masked = net.width_distribution(mode, r)
                links = net.link_weights()
                links = None if links is None else links.detach()
                loss = loss + loss_fn(net(lr, ArchWeights(alpha, gamma, widths.detach(), masked, links)), hr)
            optimizer_step(loss, w_params, w_opt, info, phase.clip, w_sched, also_zero=(a_opt,))
            done = step + 1
            if done % cfg.control_every == 0 or done == phase.steps:
                # "Validation epoch" (method.md §8.3): cost of the argmax network drives the cost weight;
                # its held-out PSNR with inherited weights is logged.
                genotype_now = net.derive()
                derived_cost = self.cost_model.genotype_cost(genotype_now)
                action = self.controller.update(derived_cost)
                psnr = self._val_psnr(lambda: inherit(net, genotype_now))
                self.history.append(
                    {"step": done, "radius": r, "derived_cost": derived_cost, "cost_weight": self.controller.weight,
                     "action": action, "argmax_psnr_db": psnr}
                )
            self._trace("search", done, r, net, lr)
            if done % cfg.log_every == 0 or done == phase.steps:
                metrics = {
                    "loss": loss.item() / len(passes),
                    "arch_loss": rec.item() / len(passes),
                    "psnr_db": self.history[-1]["argmax_psnr_db"] if self.history else None,
                    "r": r,
                    "nnz_op": float((alpha != 0).sum(-1).float().mean()),
                    "nnz_node": int((gamma != 0).sum()),
                    "frozen_op": frozen["alpha"],
                    **cost_parts,
                    "cost_expected": cost.item(),
                    "cost_argmax": self.cost_model.genotype_cost(net.derive()),
                    "cost_weight": self.controller.weight,
                }
                self.reporter.step(done, metrics)
                self.log.event("search", step=done, **metrics)
            if done % cfg.checkpoint_every == 0 and done < phase.steps:
                self._timed("search", t0)
                t0 = time.time()
                state = {
                    "supernet": net.state_dict(),
                    "w_opt": w_opt.state_dict(),
                    "w_sched": w_sched.state_dict(),
                    "a_opt": a_opt.state_dict(),
                }
                self._checkpoint("search", done, state, samplers)
        self.reporter.end_phase()
        self._timed("search", t0)
        return self._derive()

    def _random_search(self, data: Data) -> DerivedNet:
        """``--strategy random`` (trisr/search/random_ws.py): the search phase's steps train the supernet's weights
        on single random paths (no architecture parameters), then in-band candidates are scored with inherited
        weights and the best is derived. Not checkpointed inside the phase: a killed run redoes it from the
        warm-up's end (a fixed seed makes the redo identical)."""
        from trisr.search import random_ws
        from trisr.space.sample import sample_genotype, sample_in_band

        cfg, net = self.config, self.supernet
        arch_half = data.train[0::2]
        t0 = time.time()
        self._train_paths(data, "random paths", [])
        n = random_ws.CANDIDATES
        if cfg.budget is not None:
            lower = cfg.budget * (1.0 - cfg.budget_band)
            candidates = sample_in_band(self.cost_model, lower, cfg.budget, n, cfg.seed)
        else:
            rng = np.random.default_rng(cfg.seed)
            candidates = list({g.digest(): g for g in (sample_genotype(cfg.space, rng) for _ in range(n))}.values())
        scores = random_ws.score(net, candidates, self._score_batches(arch_half))
        order = sorted(range(len(candidates)), key=lambda i: scores[i])
        rows = [{"path": candidates[i].path, "digest": candidates[i].digest(), "cost": self.cost_model.genotype_cost(candidates[i]),
                 "score_l1": scores[i]} for i in order]
        self._timed("search", t0)
        measured: list[dict] = []
        pick = 0
        if cfg.budget is not None and cfg.budget_metric == "latency_ms" and self.measure is not None:
            pick, measured = self._pick_measured([candidates[i] for i in order])
        genotype = candidates[order[pick]]
        self.reporter.message(
            f"random search: {len(candidates)} in-band architectures scored with shared weights; "
            f"best {genotype.path} (L1 {scores[order[pick]]:.5f}, {self.cost_model.genotype_cost(genotype):.4g} "
            f"{self.cost_model.table.unit})"
        )
        self.derivation = {"strategy": "random", "candidates": rows, "pick": pick, "measured": measured,
                           "budget_steps": []}
        return self._commit(genotype)

    def _score_batches(self, arch_half: list[ImagePair]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed patches of the architecture half that shared-weight scores are taken on. Unsharded: every rank
        scores on the same patches, so every rank picks the same network."""
        from trisr.search import random_ws

        cfg = self.config
        sampler = PatchSampler(arch_half, cfg.lr_patch, cfg.space.scale, cfg.seed, stream=(1,),
                               augment=cfg.augment, sampling=cfg.sampling)
        return [to_device(sampler.sample(cfg.search.batch_size), self.device) for _ in range(random_ws.SCORE_BATCHES)]

    def _train_paths(self, data: Data, title: str, fixed: list[Genotype]) -> None:
        """The search phase's weight steps of the one-shot strategies: each step sums the loss of the ``fixed``
        networks and of one uniformly drawn path (one op per slot, a node, random widths) on the weight half;
        no architecture parameters. Leaves the supernet in eval mode."""
        from trisr.search import random_ws

        cfg, net = self.config, self.supernet
        phase = cfg.search
        sampler = self._sampler(data.train[1::2], 2)
        params = net.weight_parameters()
        opt = torch.optim.Adam(params, lr=phase.lr, betas=(0.9, 0.999))
        sched = phase.scheduler(opt)
        self._phase_seed("search")
        gen = torch.Generator().manual_seed(cfg.seed + 15485863 * (self.info.rank + 1))

        fixed_aw = [net.one_hot_arch(g).to(self.device) for g in fixed]
        self.reporter.phase(title, phase.steps)
        net.train()
        for step in range(phase.steps):
            lr, hr = to_device(sampler.sample(phase.batch_size), self.device)
            archs = fixed_aw + [random_ws.random_path(net, gen).to(self.device)]
            loss = sum(self.search_loss(net(lr, aw), hr) for aw in archs)
            optimizer_step(loss, params, opt, self.info, phase.clip, sched)
            done = step + 1
            if done % cfg.log_every == 0 or done == phase.steps:
                metrics = {"loss": loss.item() / len(archs), "lr": sched.get_last_lr()[0]}
                self.reporter.step(done, metrics)
                self.log.event("search", step=done, **metrics)
        self.reporter.end_phase()
        net.eval()

    def _netadapt_search(self, data: Data) -> DerivedNet:
        """``--strategy netadapt`` (trisr/search/netadapt.py): ordered-dropout supernet training (the largest
        network and one random path per step), then multi-layer coordinate descent from the largest network by
        latency-table steps, candidates scored with shared weights. A pick that measures over the budget continues
        the descent, aimed lower by the measured ratio. Not checkpointed inside the phase: a killed run redoes it
        from the warm-up's end, identically."""
        from trisr.search import netadapt, random_ws

        cfg, net = self.config, self.supernet
        arch_half = data.train[0::2]
        moves = netadapt.SpaceMoves(net, self.cost_model)
        start = moves.largest()
        largest = moves.genotype(start)
        t0 = time.time()
        self._train_paths(data, "ordered dropout", [largest])
        self._timed("search", t0)
        t0 = time.time()
        batches = self._score_batches(arch_half)
        rng = np.random.default_rng(cfg.seed)
        evaluated = [0]

        def score(archs) -> list[float]:
            evaluated[0] += len(archs)
            return random_ws.score(net, [moves.genotype(a) for a in archs], batches)

        def descend(arch, target: float, step: float | None = None):
            self.reporter.message(f"netadapt: descending from {moves.cost(arch):.4g} to {target:.4g} {self.cost_model.table.unit}")
            return netadapt.coordinate_descent(arch, moves.cost, score, moves.coordinates, moves.shrink, target, rng,
                                               step=step, key=moves.key, describe=netadapt.describe)

        arch, history = descend(start, cfg.budget)
        step = (moves.cost(start) - cfg.budget) / netadapt.ITERATIONS
        genotype = moves.genotype(arch)
        measured: list[dict] = []
        if cfg.budget_metric == "latency_ms" and self.measure is not None:
            archs = {genotype.digest(): arch}

            def refit(g: Genotype, predicted: float, ms: float) -> Genotype | None:
                try:
                    a, more = descend(archs[g.digest()], predicted * cfg.budget * (1.0 - MEASURED_MARGIN) / ms, step)
                except BudgetError:
                    return None  # nothing smaller: the final measurement will say FAIL
                history.extend(more)
                g2 = moves.genotype(a)
                archs[g2.digest()] = a
                return g2

            genotype, measured = self._measured_refits(genotype, refit)
            arch = archs[genotype.digest()]
        self._timed("descent", t0)
        self.reporter.message(
            f"netadapt: {len(history)} iterations, {evaluated[0]} candidates scored with shared weights; "
            f"{genotype.path} at {moves.cost(arch):.4g} {self.cost_model.table.unit}"
        )
        self.derivation = {"strategy": "netadapt", "start": {"path": largest.path, "digest": largest.digest(),
                           "cost": moves.cost(start)}, "step": step, "iterations": history,
                           "candidates_scored": evaluated[0], "measured": measured, "budget_steps": []}
        return self._commit(genotype)

    def _pick_measured(self, ranked: list[Genotype]) -> tuple[int, list[dict]]:
        """The best-scored candidate that meets the budget when measured: the first one is measured; when it
        misses, candidates whose table cost is not below ``cost x budget / measured`` are passed over, at most
        ``MEASURED_REFITS`` times (the random counterpart of :meth:`_fit_measured`)."""
        cfg = self.config
        state = {"i": 0, "limit": float("inf")}

        def refit(g: Genotype, predicted: float, ms: float) -> Genotype | None:
            state["limit"] = min(state["limit"], predicted * cfg.budget * (1.0 - MEASURED_MARGIN) / ms)
            nxt = next((j for j in range(state["i"] + 1, len(ranked))
                        if self.cost_model.genotype_cost(ranked[j]) <= state["limit"]), None)
            if nxt is None:
                return None
            state["i"] = nxt
            return ranked[nxt]

        _, record = self._measured_refits(ranked[0], refit)
        return state["i"], record

    def _measured_refits(
        self, genotype: Genotype, refit: Callable[[Genotype, float, float], Genotype | None]
    ) -> tuple[Genotype, list[dict]]:
        """Every strategy's check of its pick in the target runtime: measure it; while it misses the budget (less
        ``MEASURED_MARGIN``), ask ``refit(genotype, predicted_ms, measured_ms)`` for another pick (None: nothing
        else to try), at most ``MEASURED_REFITS`` times. Returns the last pick and every measurement."""
        budget = self.config.budget
        record: list[dict] = []
        for attempt in range(MEASURED_REFITS + 1):
            predicted = self.cost_model.genotype_cost(genotype)
            ms = float(self.measure(genotype))
            record.append({"path": genotype.path, "digest": genotype.digest(), "predicted_ms": predicted, "measured_ms": ms})
            if ms <= budget * (1.0 - MEASURED_MARGIN) or attempt == MEASURED_REFITS:
                break
            nxt = refit(genotype, predicted, ms)
            if nxt is None:
                break
            genotype = nxt
        return genotype, record

    # -- phase 3: derive and inherit -----------------------------------------------------------------------

    def _derive(self) -> DerivedNet:
        net, cfg = self.supernet, self.config
        genotype = net.derive()
        margins = {
            "op_min": float(R.top2_margin(net.alpha.detach()).min()),
            "node": float(R.top2_margin(net.gamma.detach()[None])[0]),
            "width_min": float(R.top2_margin(net.omega.detach()).min()),
        }
        if net.dense and len(net.tree) > 1:  # strongest against second connection of each block (valid columns only)
            beta = net.beta.detach().masked_fill(~net.beta_valid, float("-inf"))[1:]
            margins["link_min"] = float(beta.topk(2, dim=-1).values.diff(dim=-1).abs().min())
        argmax_cost = self.cost_model.genotype_cost(genotype)
        steps: list[str] = []
        if cfg.budget is not None:
            lower = cfg.budget * (1.0 - cfg.budget_band) if cfg.fill_budget else None
            genotype, steps = fit_to_budget(net, self.cost_model, cfg.budget, lower)
            if steps:
                unit = self.cost_model.table.unit
                self.reporter.message(
                    f"argmax architecture costs {argmax_cost:.4g} {unit}, outside [{lower or 0:.4g}, {cfg.budget:g}] {unit}; "
                    f"moved to {self.cost_model.genotype_cost(genotype):.4g} {unit} in {len(steps)} step(s)"
                )
        measured: list[dict] = []
        if cfg.budget is not None and cfg.budget_metric == "latency_ms" and self.measure is not None:
            genotype, more, measured = self._fit_measured(genotype)
            steps += more
        self.derivation = {
            "argmax_cost": argmax_cost,
            "margins": margins,
            "budget_steps": steps,
            "measured": measured,
            "frozen": {
                "alpha": int((net.alpha_frozen >= 0).sum()),
                "omega": int((net.omega_frozen >= 0).sum()),
                "gamma": int((net.gamma_frozen >= 0).sum()),
            },
        }
        return self._commit(genotype)

    def _commit(self, genotype: Genotype) -> DerivedNet:
        """Log the derivation, keep the supernet, inherit the genotype's weights and checkpoint the fine-tune start."""
        net = self.supernet
        self.peak_rss["search"] = _peak_rss_mib()
        self.log.event("derive", genotype=genotype.path, node=genotype.node_index, **self.derivation)
        if self.info.is_main:  # kept so that baselines can inherit from the same supernet (trisr.baselines)
            save_supernet(self.out, net)
        derived = inherit(net, genotype)
        self._checkpoint(
            "finetune",
            0,
            {"genotype": json.dumps(genotype.to_dict()), "derived": derived.state_dict(), "derivation": json.dumps(self.derivation)},
            {},
        )
        self.ckpt = None
        return derived

    def _fit_measured(self, genotype: Genotype) -> tuple[Genotype, list[str], list[dict]]:
        """Measure the table's pick in the target runtime; while it misses the budget (less ``MEASURED_MARGIN``),
        aim the table lower by the measured ratio (``predicted x budget / measured``, minus half the band for
        margin) and derive again from the supernet's preferences -- at most ``MEASURED_REFITS`` times. A table is accurate to a few per cent on
        average but not on every network (bf16: 83 % within ±10 %, docs/benchmarks.md §11.1), and a budget is
        a promise about the measured network, not the predicted one."""
        cfg, net = self.config, self.supernet
        band = cfg.budget_band
        steps: list[str] = []
        refits = [0]

        def refit(g: Genotype, predicted: float, measured: float) -> Genotype | None:
            target = predicted * cfg.budget / measured * (1.0 - band / 2)
            self.reporter.message(
                f"derived network measures {measured:.2f} ms (table {predicted:.2f} ms) > {cfg.budget * (1 - MEASURED_MARGIN):.2f} ms "
                f"(budget {cfg.budget:g} ms less its {100 * MEASURED_MARGIN:g} % measurement margin): "
                f"deriving again for a table cost <= {target:.2f} ms"
            )
            try:
                g2, more = fit_to_budget(net, self.cost_model, target, target * (1.0 - band) if cfg.fill_budget else None)
            except BudgetError:
                return None  # nothing smaller in the space: keep the network, the final measurement will say FAIL
            refits[0] += 1
            steps.extend(f"measured refit {refits[0]}: {m}" for m in more)
            return g2

        genotype, record = self._measured_refits(genotype, refit)
        return genotype, steps, record

    # -- phase 4: fine-tune ----------------------------------------------------------------------------------

    def _finetune(self, data: Data, derived: DerivedNet) -> DerivedNet:
        cfg = self.config
        phase = cfg.finetune
        ckpt = self.ckpt
        if ckpt is not None:
            derived.load_state_dict(ckpt["derived"])
            self.derivation = json.loads(ckpt["derivation"])
        self._phase_seed("finetune")
        resuming = ckpt is not None and "opt" in ckpt  # else the checkpoint of the derivation: fine-tuning starts
        if resuming:
            # The step count fixed when this fine-tune started (checkpoints from before time limits: the config's).
            stored = ckpt.get("finetune_plan")
            plan = StepPlan.from_dict(json.loads(stored)) if stored else StepPlan(phase.steps, phase.steps)
        else:
            max_min = None
            if cfg.max_wall_min > 0:
                max_min = finetune_minutes(cfg.max_wall_min, (self._spent_before_s + time.time() - self._run_t0) / 60)
            plan = plan_steps(derived, cfg.recipe(), data.train, cfg.seed, max_min, self.info, self.device,
                              min_steps=math.ceil(MIN_FINETUNE_FRACTION * phase.steps))
            if plan.step_ms is not None:
                self.reporter.message(f"fine-tune: {plan.describe()}")
                self.log.event("finetune_plan", **plan.to_dict())
        self.finetune_plan = plan
        trainer = Trainer(derived, plan.recipe(cfg.recipe()), data.train, cfg.seed, self.info, self.device)
        phase = trainer.phase
        if resuming:
            trainer.load_state_dict(_trainer_keys(ckpt))
        shipped = trainer.shipped  # what is evaluated, saved and exported

        def save(done: int) -> None:
            state = {
                "genotype": json.dumps(derived.genotype.to_dict()),
                "derivation": json.dumps(self.derivation),
                "finetune_plan": json.dumps(plan.to_dict()),
                **_finetune_keys(trainer.state_dict()),
            }
            self._checkpoint("finetune", done, state, None)

        val_every = max(1, phase.steps // 10)
        psnr: list[float | None] = [None]

        def on_step(done: int, loss: float) -> None:
            self._trace("finetune", done, 1.0, derived)
            if done % val_every == 0:
                psnr[0] = self._val_psnr(lambda: shipped)
                if psnr[0] is not None:
                    self.curve.append({"step": done, "psnr_db": psnr[0]})
            if done % cfg.log_every == 0 or done == phase.steps:
                metrics = {"loss": loss, "lr": trainer.lr, "psnr_db": psnr[0]}
                self.reporter.step(done, metrics)
                self.log.event("finetune", step=done, **metrics)
            if done % cfg.checkpoint_every == 0 and done < phase.steps:
                save(done)

        self.reporter.phase("fine-tune", phase.steps, trainer.step)
        t0 = time.time()
        trainer.run(on_step)
        self.reporter.end_phase()
        self._timed("finetune", t0)
        return shipped

    # -- finish ------------------------------------------------------------------------------------------------

    def _finish(self, data: Data, derived: DerivedNet) -> dict:
        cfg = self.config
        summary: dict = {}
        if self.info.is_main:
            t0 = time.time()
            self.reporter.phase("evaluate", len(data.val))
            metrics = evaluate(derived, data.val, cfg.space.scale, self.device, on_image=lambda i: self.reporter.step(i, {}))
            self.reporter.end_phase()
            self._timed("evaluate", t0)
            summary = build_summary(cfg, derived, metrics, self.cost_model, self.derivation, self.elapsed, self.history, self.info.world_size, self.device)
            summary["finetune_curve"] = self.curve
            summary["finetune_plan"] = self.finetune_plan.to_dict()
            summary["peak_rss_mib"] = {**self.peak_rss, "end": _peak_rss_mib()}
            if self.extra_summary is not None:
                summary.update(self.extra_summary(derived))
            save_model(self.out, derived)
            write_summary(self.out, summary)
            self.log.event("done", psnr_db=metrics["psnr_db"], bicubic_psnr_db=metrics["bicubic_psnr_db"], wall_s=summary["wall_time_s"]["total"])
        self._checkpoint("done", 0, {"summary": json.dumps(summary)}, {})
        return summary


def _finetune_keys(state: dict) -> dict:
    """A :class:`~trisr.training.Trainer` state under the keys fine-tune checkpoints have always had (the
    weights under ``derived``, each rank's sampler under ``samplers.finetune``), so that the file format of the
    search is unchanged and older checkpoints resume."""
    ranks = [{"samplers": {"finetune": r["sampler"]}, "rng": r["rng"]} for r in json.loads(state["ranks"])]
    rest = {k: v for k, v in state.items() if k not in ("model", "ranks")}
    return {"derived": state["model"], **rest, "ranks": json.dumps(ranks)}


def _trainer_keys(ckpt: dict) -> dict:
    """The inverse of :func:`_finetune_keys`: a fine-tune checkpoint as a :class:`~trisr.training.Trainer` state."""
    ranks = [{"sampler": r["samplers"]["finetune"], "rng": r["rng"]} for r in json.loads(ckpt["ranks"])]
    return {**ckpt, "model": ckpt["derived"], "ranks": json.dumps(ranks)}


def build_summary(cfg, model, metrics, cost_model, derivation, elapsed, history, world_size, device) -> dict:
    g = model.genotype
    h, w = cfg.cost_resolution
    cost = cost_model.genotype_cost(g)
    return {
        "genotype": {"path": g.path, "node_index": g.node_index, "digest": g.digest(),
                     **({"links": g.links} if g.links is not None else {})},
        "params": count_params(model),
        "macs": count_macs(model, (1, 3, h, w)),
        "macs_resolution": [h, w],
        "cost": {
            "metric": cost_model.table.metric,
            "unit": cost_model.table.unit,
            "table": cost_model.table.descriptor,
            "derived": cost,
            "budget": cfg.budget,
            "within_budget": None if cfg.budget is None else cost <= cfg.budget,
        },
        "metrics": metrics,
        "derivation": derivation,
        "controller_history": history,
        "settings": cfg.to_dict(),
        "versions": versions(),
        "device": str(device),
        "world_size": world_size,
        "wall_time_s": {**elapsed, "total": sum(elapsed.values())},
    }

"""Does the order penalty's strength depend on lambda? (docs/method.md "Relaxations and sorting")

    OMP_NUM_THREADS=1 python -m benchmarks.order_penalty --part a
    OMP_NUM_THREADS=1 python -m benchmarks.order_penalty --part b --warmup-steps 20 --search-steps 60 \
        --batch-size 4 --lr-patch 16

(a) Simulation on the quick preset's tree: gamma logits start at ``1e-3 * randn`` and take T architecture
    steps driven by the order penalty alone, i.e. the situation of every node outside the sparsestmax support
    (zero weight, so zero reconstruction gradient). ``adam`` puts the penalty in the Adam loss (the search's
    architecture optimiser: lr ``arch_lr``, betas ``arch_betas``), which is what the search did before the
    penalty was decoupled; ``decoupled`` runs the Adam step on the (zero) reconstruction gradient and then the
    search's own decoupled step (``trisr.search.engine.order_step``). Reports the mean logit displacement of
    the complete leaves, of the root and of the other nodes, per lambda.
(b) Short real searches (quick preset, embedded images, shortened warm-up/search, 1 fine-tune step) with
    the order penalty off and linear at two lambdas, using whatever the engine currently does. Reports the final
    gamma logits per node, the relaxed gamma at the last search step's radius, the derived node and its depth
    (number of C blocks in ``tree.blocks(node)``, stem included).

Prints one JSON object.

Run from the repository root (not installed with trisr; see benchmarks/__init__.py):
``python -m benchmarks.order_penalty ...`` or ``python benchmarks/order_penalty.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/x.py): the repository root holds trisr and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import tempfile
import time
from dataclasses import replace

import torch

from trisr.search import engine
from trisr.search.config import preset
from trisr.space.supernet import Supernet


def _round(x, nd: int = 6):
    if isinstance(x, (list, tuple)):
        return [_round(v, nd) for v in x]
    return float(f"{x:.{nd}g}")


def simulate(cfg, lam: float, steps: int, mode: str, seed: int, rec_steps: int = 0, rec_rms: float = 0.0) -> dict:
    """Displacement of the logits over ``steps`` penalty-only steps; before them, ``rec_steps`` steps in which
    every node also gets a N(0, rec_rms²) "reconstruction" gradient (a node that was in the support earlier:
    Adam's second moment remembers it for ~1/(1 - beta2) steps). Displacements are also reported at the
    powers of ten below ``steps``."""
    torch.manual_seed(seed)
    tree = Supernet(cfg.space, cfg.relax).tree
    n = len(tree)
    gamma = torch.nn.Parameter(1e-3 * torch.randn(n))
    opt = torch.optim.Adam([gamma], lr=cfg.arch_lr, betas=cfg.arch_betas, weight_decay=0.0)
    leaves = tree.complete_leaves
    others = [i for i in range(1, n) if i not in leaves]
    marks = {10**k for k in range(1, 8) if 10**k < steps} | {steps}
    at: dict[int, dict] = {}
    start = gamma.detach().clone()
    for t in range(rec_steps + steps):
        opt.zero_grad(set_to_none=True)
        rec = rec_rms * torch.randn(n) if t < rec_steps else torch.zeros(n)
        if mode == "adam":
            engine.order_penalty(gamma, tree, "linear", lam).backward()
            gamma.grad += rec
            opt.step()
        else:
            gamma.grad = rec
            opt.step()
            engine.order_step(gamma, tree, "linear", lam, cfg.arch_lr)
        if t + 1 == rec_steps:
            start = gamma.detach().clone()
        if t + 1 - rec_steps in marks:
            d = (gamma.detach() - start).tolist()
            at[t + 1 - rec_steps] = {
                "leaf_mean": _round(sum(d[i] for i in leaves) / len(leaves)),
                "root": _round(d[0]),
                "other_max_abs": _round(max((abs(d[i]) for i in others), default=0.0)),
            }
    return {"lam": lam, **at.pop(steps), "at_step": at}


def search(cfg, kind: str, lam: float, warmup: int, steps: int, batch: int | None, lr_patch: int | None) -> dict:
    batch_w, batch_s = (batch, batch) if batch else (cfg.warmup.batch_size, cfg.search.batch_size)
    cfg = cfg.replace(
        order_penalty=kind,
        order_lambda=lam,
        lr_patch=lr_patch or cfg.lr_patch,
        warmup=replace(cfg.warmup, steps=warmup, batch_size=batch_w),
        search=replace(cfg.search, steps=steps, batch_size=batch_s),
        finetune=replace(cfg.finetune, steps=1),
        # The held-out PSNR of the argmax network is only logged (no budget here): score it once, at the end.
        control_every=steps,
    )
    t0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        run = engine.SearchRun(cfg, Path(tmp) / "run", data_source=None)
        summary = run.run()
        events = [json.loads(line) for line in (Path(tmp) / "run" / "events.jsonl").read_text().splitlines()]
    # Support size of the relaxed gamma (nodes with nonzero weight) at the logged search steps.
    support = {e["step"]: e["nnz_node"] for e in events if e["event"] == "search"}
    net = run.supernet
    tree = net.tree
    r_last = (steps - 1) / steps
    with torch.no_grad():
        relaxed = net.relaxed_gamma(r_last)
    node = summary["genotype"]["node_index"]
    argmax = int(net.gamma.detach().argmax())
    return {
        "order_penalty": kind,
        "lam": lam,
        "gamma_logits": {tree.blocks(i): _round(float(v), 4) for i, v in enumerate(net.gamma.detach())},
        "gamma_relaxed": {tree.blocks(i): _round(float(v), 4) for i, v in enumerate(relaxed) if v != 0},
        "gamma_frozen": int(net.gamma_frozen[0]),
        "support_size_by_step": support,
        "derived_node": node,
        "derived_blocks": tree.blocks(node),
        "derived_depth": tree.blocks(node).count("C"),
        "argmax_logit_node": tree.blocks(argmax),
        "cpu_s": round(time.process_time() - t0, 1),
        "wall_s": {k: round(v, 1) for k, v in summary["wall_time_s"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("a", "b", "ab"), default="ab")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--modes", default="adam,decoupled", help="part (a): adam (penalty inside Adam), decoupled")
    ap.add_argument("--lams", default="1e-5,1e-3,1e-1", help="part (a) lambdas")
    ap.add_argument("--steps", type=int, default=None, help="part (a) steps (default: the preset's search steps)")
    ap.add_argument("--rec-steps", type=int, default=0, help="part (a): steps with a reconstruction gradient first")
    ap.add_argument("--rec-rms", type=float, default=1.0, help="part (a): RMS of that gradient")
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--search-steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=None, help="part (b) warm-up and search batch (default: preset)")
    ap.add_argument("--lr-patch", type=int, default=None, help="part (b) LR crop size (default: preset)")
    ap.add_argument("--runs", default="none:0,linear:1e-5,linear:1e-2", help="part (b): kind:lambda,...")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = preset(args.preset)
    out: dict = {
        "preset": args.preset,
        "arch_lr": cfg.arch_lr,
        "arch_betas": list(cfg.arch_betas),
    }
    if "a" in args.part:
        steps = args.steps or cfg.search.steps
        out["a"] = {
            "steps": steps,
            "rec_steps": args.rec_steps,
            "rec_rms": args.rec_rms,
            **{
                mode: [
                    simulate(cfg, float(lam), steps, mode, args.seed, args.rec_steps, args.rec_rms)
                    for lam in args.lams.split(",")
                ]
                for mode in args.modes.split(",")
            },
        }
    if "b" in args.part:
        runs = [r.split(":") for r in args.runs.split(",")]
        out["b"] = {
            "warmup_steps": args.warmup_steps,
            "search_steps": args.search_steps,
            "batch_size": args.batch_size,
            "lr_patch": args.lr_patch,
            "runs": [
                search(cfg, kind, float(lam), args.warmup_steps, args.search_steps, args.batch_size, args.lr_patch)
                for kind, lam in runs
            ],
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""The strategies of ``trisr search --strategy`` (issue 11): one table carries every strategy's differences.

Every strategy shares the data, preset, space, budget flags, latency table, warm-up, derivation checks,
inheritance, fine-tuning recipe, evaluation and run folder (trisr/search/engine.py). A row says what is
different: which search phase runs, which run-configuration defaults the strategy brings (applied before the
user's own flags, so ``--relax-op`` etc. still override them), and, for the differentiable ones, how many
passes each step takes and whether cells at the same depth share one architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from trisr.errors import TrisrError


@dataclass(frozen=True)
class Strategy:
    name: str
    #: One line for ``--help`` and docs/strategies.md.
    help: str
    #: Which search phase of :class:`trisr.search.engine.SearchRun` runs: "differentiable" (architecture and
    #: weight steps alternate on relaxed weights, then argmax derivation), "random" or "netadapt".
    phase: str
    #: Width modes of the passes every differentiable step sums (trisr.space.supernet.WIDTH_MODES).
    passes: tuple[str, ...] = ("sample", "max", "min")
    #: Layer-wise cell sharing (HiNAS): every cell at the same depth of the tree has one architecture.
    share_cells_by_depth: bool = False
    #: The search runs down to a budget and cannot run without one (netadapt's descent).
    needs_budget: bool = False
    #: Network level of the supernet (trisr.space.supernet.NETWORKS): the paper's tree, or DCNAS's dense chain.
    network: str = "tree"
    #: RunConfig fields this strategy sets unless the user overrides them (``relax``: RelaxConfig fields). Plain
    #: values, so that the CLI reads this table without importing torch.
    defaults: dict = field(default_factory=dict)

    def config_changes(self, cfg) -> dict:
        """``RunConfig.replace`` arguments that give ``cfg`` this strategy and its defaults."""
        changes = {k: v for k, v in self.defaults.items() if k != "relax"}
        if "relax" in self.defaults:
            changes["relax"] = replace(cfg.relax, **self.defaults["relax"])
        return {"strategy": self.name, **changes}


STRATEGY_TABLE: tuple[Strategy, ...] = (
    Strategy(
        "trilevel",
        "the paper's search: sparsestmax relaxation, sorting at network level, sandwich of 3 width passes",
        "differentiable",
    ),
    Strategy(
        "hinas",
        "HiNAS: DARTS-style softmax relaxation over ops, widths and nodes, cells at the same depth share one "
        "architecture, no sorting term, one pass per step, softmax argmax derivation",
        "differentiable",
        passes=("sample",),
        share_cells_by_depth=True,
        defaults={"relax": {"op": "softmax", "node": "softmax", "width": "softmax"}, "order_penalty": "none"},
    ),
    Strategy(
        "dcnas",
        "DCNAS: densely connected network level (one chain of blocks, each may add one earlier output, head "
        "included), path-level sampling of the connections and channel-level sampling of the widths, softmax "
        "over ops and depths, strongest connection kept per block",
        "differentiable",
        passes=("sample",),
        network="dense",
        defaults={"relax": {"op": "softmax", "node": "softmax", "width": "gumbel"}, "order_penalty": "none"},
    ),
    Strategy(
        "netadapt",
        "NetAdaptV2: ordered-dropout supernet (largest network + one random sub-network per step), then multi-layer "
        "coordinate descent from the largest network, scored with shared weights, by latency-table steps",
        "netadapt",
        needs_budget=True,
    ),
    Strategy(
        "random",
        "random search with weight sharing: single random paths train the supernet, 32 in-band architectures are "
        "scored with shared weights, the best is fine-tuned",
        "random",
    ),
)
STRATEGY_BY_NAME = {s.name: s for s in STRATEGY_TABLE}
STRATEGIES = tuple(STRATEGY_BY_NAME)
#: Strategies named by an issue but not built yet: refused by name with one line.
PLANNED_STRATEGIES: tuple[str, ...] = ()


def get_strategy(name: str) -> Strategy:
    """The table row of ``name``, with a one-line error for planned and unknown names."""
    key = name.strip().lower()
    if key in PLANNED_STRATEGIES:
        raise TrisrError(f"--strategy {key} is not built yet; choose one of {', '.join(STRATEGIES)}")
    try:
        return STRATEGY_BY_NAME[key]
    except KeyError:
        raise TrisrError(f"unknown --strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None


def strategy_help() -> str:
    planned = f". Not built yet: {', '.join(PLANNED_STRATEGIES)}" if PLANNED_STRATEGIES else ""
    return "; ".join(f"{s.name}: {s.help}" for s in STRATEGY_TABLE) + planned + "."

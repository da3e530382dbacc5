"""Cost tables and the expected cost of the architecture distribution (method.md §9).

A :class:`CostTable` maps entry keys (one per candidate op at each input/output width, plus head, up
block and tail) to a cost in one metric, at one deployment resolution. Analytic tables (MACs in G,
parameters in k) are computed here; measured latency tables have the same shape and plug into the
same :class:`CostModel`, so the search loop does not care where the numbers come from.

A missing entry raises :class:`CostTableError`; it is never counted as 0.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trisr.errors import BudgetError, CostTableError, TrisrError
from trisr.space.config import SpaceConfig
from trisr.space.count import count_macs, count_params
from trisr.space.genotype import Genotype
from trisr.space.ops import Head, Tail, TailEntry, UpBlock, create_op
from trisr.space.tree import Tree

COST_TABLE_SCHEMA_VERSION = 1
#: metric name -> (unit, description). Latency tables come from measurement (``trisr profile``).
METRICS = {
    "macs_g": ("GMAC", "multiply-accumulates at the deployment resolution, in 1e9"),
    "params_k": ("k params", "parameters, in 1e3"),
    "latency_ms": ("ms", "measured latency at the deployment resolution"),
}


def op_key(op: str, c_in: int, c_out: int) -> str:
    return f"op:{op}:{c_in}:{c_out}"


#: A dense connection of ``--strategy dcnas``: one elementwise add of two nf-channel maps at LR. Tables written
#: before it existed lack the entry, so pricing a dense network with them fails (never 0 ms).
ADD_KEY = "add"


@dataclass
class CostTable:
    metric: str
    space_fingerprint: str
    resolution: tuple[int, int]  # LR input (H, W) the entries are keyed by
    entries: dict[str, float]
    descriptor: dict = field(default_factory=dict)  # where the numbers come from (analytic, device, ...)
    schema_version: int = COST_TABLE_SCHEMA_VERSION

    @property
    def unit(self) -> str:
        return METRICS[self.metric][0]

    def get(self, key: str) -> float:
        try:
            return self.entries[key]
        except KeyError:
            raise CostTableError(
                f"cost table ({self.metric}, {self.descriptor.get('kind', '?')}) has no entry {key!r}"
            ) from None

    def check_space(self, space: SpaceConfig) -> None:
        if self.space_fingerprint != space.fingerprint():
            raise CostTableError(
                f"cost table covers search space {self.space_fingerprint}, not this one ({space.fingerprint()})"
            )

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "metric": self.metric,
            "unit": self.unit,
            "space_fingerprint": self.space_fingerprint,
            "resolution": list(self.resolution),
            "descriptor": self.descriptor,
            "entries": self.entries,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CostTable":
        if d.get("schema_version") != COST_TABLE_SCHEMA_VERSION:
            raise CostTableError(f"cost table schema version {d.get('schema_version')} is not supported")
        if d.get("metric") not in METRICS:
            raise CostTableError(f"cost table metric {d.get('metric')!r} is unknown")
        return cls(
            metric=d["metric"],
            space_fingerprint=d["space_fingerprint"],
            resolution=tuple(d["resolution"]),
            entries={str(k): float(v) for k, v in d["entries"].items()},
            descriptor=d.get("descriptor", {}),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "CostTable":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise CostTableError(f"cost table not found: {path}") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CostTableError(f"cost table {path} is malformed: {exc}") from None


def analytic_cost_table(space: SpaceConfig, metric: str, resolution: tuple[int, int]) -> CostTable:
    """Parameters or MACs of every entry, counted on the derived-network modules (thop convention)."""
    if metric not in ("macs_g", "params_k"):
        raise TrisrError(f"analytic cost tables support macs_g and params_k, not {metric!r}")
    h, w = resolution
    conv_sc = space.derived_shortcut == "conv"

    def cost(module, shape) -> float:
        if metric == "params_k":
            return count_params(module) / 1e3
        return count_macs(module, shape) / 1e9

    feat = (1, space.nf, h, w)
    entries = {
        "head": cost(Head(space.nf), (1, 3, h, w)),
        "up": cost(UpBlock(space.nf, space.variant), feat),
        "tail": cost(TailEntry(Tail(space.nf, space.scale, space.variant, space.skip, space.output)), feat),
        # thop convention (trisr/space/count.py): additions count zero MACs, and an add has no parameters.
        ADD_KEY: 0.0,
    }
    for op, c_in, c_out in itertools.product(space.ops, space.widths, space.widths):
        module = create_op(op, c_in, c_out, conv_shortcut=conv_sc, dws_expansion=space.dws_expansion)
        entries[op_key(op, c_in, c_out)] = cost(module, (1, c_in, h, w))
    return CostTable(
        metric=metric,
        space_fingerprint=space.fingerprint(),
        resolution=(h, w),
        entries=entries,
        descriptor={"kind": "analytic", "convention": "thop: conv MACs + 1 per output element per bias"},
    )


class CostModel:
    """Expected cost of the relaxed architecture, as a differentiable function of the relaxed weights
    (method.md §9.2): per mixed op ``sum_o a_o T[o, c_in, c_out]`` under the width distributions, per
    cell the sum over slots, per node the cumulative cost of its prefix (head, stem, cells and ups on
    the path, tail), and for the network ``sum_v g_v cost(v)``."""

    def __init__(self, table: CostTable, space: SpaceConfig, tree: Tree) -> None:
        """A chain tree (``tree.chain``, the dense network level) needs the table's ``add`` entry up front."""
        table.check_space(space)
        if space.variant != "B":
            raise TrisrError("cost models cover variant B (all blocks at LR resolution)")
        self.table, self.space, self.tree = table, space, tree
        ws = space.widths
        self.op_table = torch.tensor(
            [[[table.get(op_key(op, ci, co)) for co in ws] for ci in ws] for op in space.ops], dtype=torch.float64
        )  # (ops, widths_in, widths_out)
        self.head, self.up, self.tail = table.get("head"), table.get("up"), table.get("tail")
        cells, ups = tree.incidence
        self.cell_incidence, self.up_incidence = cells.double(), ups.double()
        self.add = self._add_cost() if tree.chain else None
        if tree.chain:
            # node x node: which blocks (tree nodes after the root) lie on each node's prefix.
            inc = torch.zeros(len(tree), len(tree), dtype=torch.float64)
            for n in tree.nodes:
                for p in tree.path(n.index):
                    inc[n.index, p.index] = 1.0
            self.node_incidence = inc

    def _add_cost(self) -> float:
        try:
            return self.table.get(ADD_KEY)
        except CostTableError:
            raise CostTableError(
                f"cost table ({self.table.metric}, {self.table.descriptor.get('kind', '?')}) has no '{ADD_KEY}' entry, "
                "which dense networks (--strategy dcnas) need; profile the target again with this trisr version"
            ) from None

    def cell_costs(self, alpha: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """alpha (cells, slots, ops), widths (cells, edges, n_widths) distributions -> (cells,) cost."""
        alpha, widths = alpha.double(), widths.double()
        n_cells, n_w = widths.shape[0], widths.shape[-1]
        full = torch.zeros(n_cells, 1, n_w, dtype=widths.dtype, device=widths.device)
        full[..., -1] = 1.0  # cell input and output are always nf = the widest option
        q = torch.cat([full, widths, full], dim=1)  # (cells, slots + 1, widths)
        table = self.op_table.to(widths.device)
        return torch.einsum("cso,csk,csl,okl->c", alpha, q[:, :-1], q[:, 1:], table)

    def node_costs(self, alpha: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        cells = self.cell_costs(alpha, widths)
        dev = cells.device
        per_node = self.cell_incidence.to(dev) @ cells
        if self.tree.num_ups:
            per_node = per_node + self.up_incidence.to(dev).sum(1) * self.up
        return per_node + self.head + self.tail

    def expected(
        self, alpha: torch.Tensor, widths: torch.Tensor, gamma: torch.Tensor, links: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``links`` (dense network level): (nodes, 1 + sources) link distributions, column 0 = no link; each
        node on a prefix adds ``P(link) x add``."""
        per_node = self.node_costs(alpha, widths)
        if links is not None:
            assert self.add is not None, "link distributions need a chain tree"
            p_link = 1.0 - links.double()[:, 0]
            per_node = per_node + self.add * (self.node_incidence.to(p_link.device) @ p_link)
        return gamma.double() @ per_node

    def genotype_cost(self, genotype: Genotype) -> float:
        """Table sum of a derived network (what the expectation gives at one-hot weights)."""
        if genotype.space.fingerprint() != self.space.fingerprint():
            raise TrisrError("genotype and cost model describe different search spaces")
        total = self.head + self.tail + self.up * genotype.path.count("U")
        if genotype.num_links:
            total += genotype.num_links * (self.add if self.add is not None else self._add_cost())
        for c in range(len(genotype.ops)):
            chans = genotype.cell_channels(c)
            for i, name in enumerate(genotype.cell_op_names(c)):
                total += self.table.get(op_key(name, chans[i], chans[i + 1]))
        return float(total)

    def min_cell_cost(self) -> float:
        """Cheapest cell: dynamic programming over the width chain with the cheapest op per slot."""
        best_op = self.op_table.min(dim=0).values  # (w_in, w_out)
        n_w = best_op.shape[0]
        reach = torch.full((n_w,), float("inf"), dtype=torch.float64)
        reach[-1] = 0.0  # starts at nf
        for _ in range(self.space.edges_per_cell):
            reach = (reach[:, None] + best_op).min(dim=0).values
        return float((reach + best_op[:, -1]).min())  # ends at nf

    def min_cost(self) -> float:
        """The cheapest architecture of the space: the stem-only network with the cheapest cells."""
        return self.head + self.tail + self.space.num_stem * self.min_cell_cost()

    def check_budget(self, budget: float) -> None:
        minimum = self.min_cost()
        if budget < minimum * (1 - 1e-9):  # tolerance: the DP and a table sum add in different orders
            raise BudgetError(
                f"budget {budget:g} {self.table.unit} is below the smallest architecture of the search space "
                f"({minimum:.4g} {self.table.unit} at {self.table.resolution[0]}x{self.table.resolution[1]} LR)"
            )


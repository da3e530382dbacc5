"""Random architectures of the search space, unconstrained or at a given predicted cost.

These are the "random picks" baselines: networks of the same space as the searched one, drawn without
any search, optionally with their predicted cost (any :class:`~trisr.space.cost.CostTable`: analytic
MACs or parameters, or a calibrated latency table via ``LatencyTable.to_cost_table()``) inside a band
``[lo, hi]``.

Distribution of :func:`sample_in_band`
--------------------------------------
1. **Depth**: a tree node uniformly among the nodes whose cost range (cheapest..dearest ops and widths,
   by dynamic programming over each cell's width chain) intersects the band.
2. **Start**: ops and widths drawn slot by slot, each (op, output width) pair uniformly among the pairs
   from which the band can still be reached (prefix cost + min/max of the rest). With a band wider than
   the node's range this is exactly the uniform draw of :func:`sample_genotype`.
3. **Repair** (rarely needed: only when the band falls into a gap between reachable costs): a random
   walk of the moves below, accepting those that do not increase the distance to the band; a candidate
   that does not reach the band is dropped (it counts as a try).
4. **Mixing**: a random walk accepting exactly the moves that stay inside the band. A move sets ``m``
   distinct coordinates (op slots and internal width edges of the node's cells; m = 1, 2, 3, ... with
   probability 1/2, 1/4, ...) to uniform *different* values. The proposal is symmetric, so this is a
   Metropolis chain whose stationary distribution is uniform over the node's in-band architectures;
   multi-coordinate moves connect the islands a narrow band splits into. It removes the pull of steps
   2-3 toward the band edge nearest to the start.

So each draw is approximately: node uniform among the reachable nodes, then ops/widths uniform among
that node's architectures whose cost lies in the band (checked by chi-square against enumeration on tiny
spaces). It is *not* uniform over all in-band architectures of the space (deep nodes have far more of
them than shallow ones), which matches the unconstrained :func:`sample_genotype` (node uniform, then
ops/widths uniform). Duplicates are redrawn, so a node with only a handful of in-band architectures
contributes at most that many to a set of distinct samples.

Everything is deterministic given the seed.
"""

from __future__ import annotations

import math

import numpy as np

from trisr.errors import BudgetError, TrisrError
from trisr.space.config import SpaceConfig
from trisr.space.cost import CostModel
from trisr.space.genotype import Genotype
from trisr.space.tree import Tree

#: Relative tolerance on band membership: the DP bounds and a genotype's table sum add in different orders.
REL_TOL = 1e-9


def space_tree(space: SpaceConfig) -> Tree:
    """The network-level tree of ``space`` (the same one the supernet builds)."""
    return Tree(space.num_cell_path_search, space.num_up, space.num_stem)


def valid_nodes(space: SpaceConfig, tree: Tree | None = None) -> list[int]:
    """Tree nodes that are networks of the space: all of them for variant B; for variant A only those
    with exactly ``num_up`` up blocks."""
    tree = tree or space_tree(space)
    if space.variant == "A":
        return [n.index for n in tree.nodes if n.prefix.count("U") == space.num_up]
    return [n.index for n in tree.nodes]


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def sample_genotype(space: SpaceConfig, rng: np.random.Generator | int | None = None) -> Genotype:
    """One architecture drawn uniformly per choice: the tree node (depth) uniformly among all nodes of
    the tree (variant A: those with all ``num_up`` up blocks), then every cell's op per slot and width per
    internal edge independently and uniformly. ``rng`` is a numpy Generator or a seed."""
    rng = _as_rng(rng)
    tree = space_tree(space)
    nodes = valid_nodes(space, tree)
    v = nodes[int(rng.integers(len(nodes)))]
    path = tree.blocks(v)
    k = path.count("C")
    ops = rng.integers(0, space.num_ops, (k, space.ops_per_cell)).tolist()
    widths = rng.integers(0, space.num_widths, (k, space.edges_per_cell)).tolist()
    return Genotype(space, path, ops, widths, node_index=v)


class _CostBounds:
    """Per-slot cost table as Python lists plus suffix min/max of a cell's remaining slots."""

    def __init__(self, model: CostModel) -> None:
        space = model.space
        if space.widths[-1] != space.nf:
            raise TrisrError("the widest width option must be nf")  # CostModel assumes it too
        self.model, self.space = model, space
        self.T: list[list[list[float]]] = model.op_table.tolist()  # [op][w_in][w_out]
        self.n_ops, self.n_w, self.P = space.num_ops, space.num_widths, space.ops_per_cell
        self.full = self.n_w - 1
        tmin = model.op_table.min(dim=0).values.tolist()
        tmax = model.op_table.max(dim=0).values.tolist()
        W, P, inf = self.n_w, self.P, math.inf
        # rest_min[j][a]: cheapest cost of slots j..P-1 of a cell given the chain width c_j = a (c_P = nf).
        self.rest_min = [[inf] * W for _ in range(P + 1)]
        self.rest_max = [[-inf] * W for _ in range(P + 1)]
        self.rest_min[P][self.full] = self.rest_max[P][self.full] = 0.0
        for j in range(P - 1, -1, -1):
            for a in range(W):
                self.rest_min[j][a] = min(tmin[a][b] + self.rest_min[j + 1][b] for b in range(W))
                self.rest_max[j][a] = max(tmax[a][b] + self.rest_max[j + 1][b] for b in range(W))
        self.cell_min = self.rest_min[0][self.full]
        self.cell_max = self.rest_max[0][self.full]
        self.tree = model.tree
        self.nodes = valid_nodes(space, self.tree)

    def fixed(self, path: str) -> float:
        return self.model.head + self.model.tail + self.model.up * path.count("U")

    def node_range(self, v: int) -> tuple[float, float]:
        path = self.tree.blocks(v)
        k = path.count("C")
        f = self.fixed(path)
        return f + k * self.cell_min, f + k * self.cell_max

    def cell_cost(self, row: list[int], chain: list[int]) -> float:
        T = self.T
        return sum(T[o][chain[j]][chain[j + 1]] for j, o in enumerate(row))


def node_cost_ranges(cost_model: CostModel) -> dict[int, tuple[float, float]]:
    """Tree node index -> (min, max) cost over that node's ops and widths, for every network node."""
    b = _CostBounds(cost_model)
    return {v: b.node_range(v) for v in b.nodes}


def cost_range(cost_model: CostModel) -> tuple[float, float]:
    """(cheapest, dearest) predicted cost of any architecture of the space."""
    ranges = node_cost_ranges(cost_model).values()
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


class _Walker:
    """Draws one in-band candidate for a given node (steps 2-4 of the module docstring)."""

    def __init__(
        self, b: _CostBounds, lo: float, hi: float, tol: float, rng: np.random.Generator, mix_steps: int | None
    ) -> None:
        self.b, self.lo, self.hi, self.tol, self.rng = b, lo, hi, tol, rng
        self.mix_steps = mix_steps

    def dist(self, x: float) -> float:
        return max(self.lo - self.tol - x, 0.0, x - self.hi - self.tol)

    def start(self, k: int, fixed: float) -> tuple[list[list[int]], list[list[int]]]:
        b, rng = self.b, self.rng
        T, P, full = b.T, b.P, b.full
        acc = fixed
        ops: list[list[int]] = []
        chains: list[list[int]] = []
        lo, hi = self.lo - self.tol, self.hi + self.tol
        for c in range(k):
            left = k - c - 1
            rest_lo, rest_hi = left * b.cell_min, left * b.cell_max
            row, ch = [], [full]
            for j in range(P):
                a = ch[-1]
                outs = [full] if j == P - 1 else range(b.n_w)
                pairs, ok = [], []
                for o in range(b.n_ops):
                    for w in outs:
                        x = acc + T[o][a][w]
                        pairs.append((o, w))
                        if x + b.rest_min[j + 1][w] + rest_lo <= hi and x + b.rest_max[j + 1][w] + rest_hi >= lo:
                            ok.append((o, w))
                pool = ok or pairs  # empty only over a gap in the reachable costs: the repair walk follows
                o, w = pool[int(rng.integers(len(pool)))]
                acc += T[o][a][w]
                row.append(o)
                ch.append(w)
            ops.append(row)
            chains.append(ch)
        return ops, chains

    def _propose(self, ops, chains, coords) -> dict[int, tuple[list[int], list[int]]]:
        """A symmetric random change: ``m`` distinct coordinates (m = 1, 2, 3, ... with probability
        1/2, 1/4, 1/8, ..., capped at the number of coordinates), each set to a uniform *different*
        value. Reversing it has the same probability, so accepting by the band alone is Metropolis for
        the uniform distribution. Multi-coordinate moves join in-band regions that single changes
        cannot connect (a narrow band often splits into islands). Returns {cell: (new ops row, new
        chain)}."""
        b, rng = self.b, self.rng
        m = 1
        while m < len(coords) and rng.random() < 0.5:
            m += 1
        picked = rng.choice(len(coords), size=m, replace=False)
        rows: dict[int, tuple[list[int], list[int]]] = {}
        for idx in picked:
            kind, c, j = coords[int(idx)]
            if c not in rows:
                rows[c] = (list(ops[c]), list(chains[c]))
            row, ch = rows[c]
            vec, n_vals = (row, b.n_ops) if kind == "op" else (ch, b.n_w)
            new = int(rng.integers(n_vals - 1))
            vec[j] = new + (new >= vec[j])
        return rows

    def walk(self, k: int, fixed: float, ops, chains) -> bool:
        """Repair toward the band, then mix inside it; edits ``ops``/``chains`` in place. False when the
        repair did not reach the band."""
        b = self.b
        coords = []  # ("op", cell, slot) and ("w", cell, chain position 1..P-1)
        for c in range(k):
            if b.n_ops > 1:
                coords += [("op", c, j) for j in range(b.P)]
            if b.n_w > 1:
                coords += [("w", c, j) for j in range(1, b.P)]
        cell_cost = [b.cell_cost(ops[c], chains[c]) for c in range(k)]
        cost = fixed + sum(cell_cost)
        if not coords:
            return self.dist(cost) == 0.0

        def step(accept) -> None:
            nonlocal cost
            rows = self._propose(ops, chains, coords)
            new_costs = {c: b.cell_cost(*rc) for c, rc in rows.items()}
            new = cost + sum(new_costs[c] - cell_cost[c] for c in rows)
            if accept(new):
                for c, (row, ch) in rows.items():
                    ops[c][:], chains[c][:] = row, ch
                    cell_cost[c] = new_costs[c]
                cost = fixed + sum(cell_cost)

        # Repair: random changes that do not move away from the band.
        for _ in range(50 * len(coords)):
            d = self.dist(cost)
            if d == 0.0:
                break
            step(lambda new: self.dist(new) <= d)
        if self.dist(cost) > 0.0:
            return False
        # Mixing: Metropolis for the uniform distribution over the node's in-band architectures.
        n_mix = self.mix_steps if self.mix_steps is not None else 10 * len(coords)
        for _ in range(n_mix):
            step(lambda new: self.dist(new) == 0.0)
        return True


def sample_in_band(
    cost_model: CostModel,
    lo: float,
    hi: float,
    n: int,
    seed: int,
    max_tries: int = 200_000,
    *,
    mix_steps: int | None = None,
) -> list[Genotype]:
    """``n`` distinct architectures (by :meth:`Genotype.digest`) whose ``cost_model.genotype_cost`` lies
    in ``[lo, hi]`` (up to a relative ``1e-9`` for float summation order), in the order found.

    Distribution: node (depth) uniform among the nodes that can reach the band, then ops/widths
    approximately uniform among that node's in-band architectures (see the module docstring: constrained
    sequential draw, repair walk, then ``mix_steps`` Metropolis steps inside the band; default 10 per
    choice). Deterministic given ``seed``.

    Raises :class:`BudgetError` when no architecture of the space can reach the band, or when fewer than
    ``n`` distinct ones turn up within ``max_tries`` draws (a try is one candidate; duplicates count).
    """
    if n < 1:
        raise TrisrError(f"n must be >= 1, got {n}")
    if not lo <= hi:
        raise TrisrError(f"empty cost band [{lo:g}, {hi:g}]")
    b = _CostBounds(cost_model)
    unit = cost_model.table.unit
    res = cost_model.table.resolution
    tol = REL_TOL * max(abs(lo), abs(hi))
    ranges = {v: b.node_range(v) for v in b.nodes}
    smin = min(r[0] for r in ranges.values())
    smax = max(r[1] for r in ranges.values())
    feasible = [v for v, (a, z) in ranges.items() if a <= hi + tol and z >= lo - tol]
    if not feasible:
        raise BudgetError(
            f"no architecture of the search space costs within [{lo:g}, {hi:g}] {unit}: the space spans "
            f"{smin:.4g}..{smax:.4g} {unit} at {res[0]}x{res[1]} LR"
        )
    rng = np.random.default_rng(seed)
    walker = _Walker(b, lo, hi, tol, rng, mix_steps)
    space = cost_model.space
    found: dict[str, Genotype] = {}
    for _ in range(max_tries):
        v = feasible[int(rng.integers(len(feasible)))]
        path = b.tree.blocks(v)
        k, fixed = path.count("C"), b.fixed(path)
        ops, chains = walker.start(k, fixed)
        if not walker.walk(k, fixed, ops, chains):
            continue
        g = Genotype(space, path, ops, [ch[1:-1] for ch in chains], node_index=v)
        if walker.dist(cost_model.genotype_cost(g)) > 0.0:
            continue
        found.setdefault(g.digest(), g)
        if len(found) == n:
            return list(found.values())
    raise BudgetError(
        f"found only {len(found)} of {n} distinct architectures within [{lo:g}, {hi:g}] {unit} "
        f"in {max_tries} tries (the space spans {smin:.4g}..{smax:.4g} {unit})"
    )


__all__ = ["sample_genotype", "sample_in_band", "cost_range", "node_cost_ranges", "valid_nodes", "space_tree"]

"""NetAdaptV2 (Yang, Liao, Sze, CVPR 2021; peers.md §1.4) as ``trisr search --strategy netadapt`` (issue 11).

Its three stages, on trisr's space and latency table:

1. **Super-network training with ordered dropout.** Widths are channel prefixes in the supernet (a narrower edge
   runs the first k channels of the wide one), and depth is a bypass: a node of the tree is the network with the
   blocks after it removed, which is NetAdaptV2's "zero channels bypass the layer" merging depth into width. Each
   step trains two sub-networks: the largest network the descent starts from, and one uniformly drawn path (ops,
   node, widths). NetAdaptV2 trains several sub-networks in one pass by dropping channels per sample; trisr sums
   two passes instead, because its sub-networks also differ in ops and depth, which one pass cannot mix.
2. **Multi-layer coordinate descent** (:func:`coordinate_descent`), from the largest network of the space. Each
   iteration proposes ``CANDIDATES`` networks; each shrinks ``LAYERS_PER_CANDIDATE`` randomly chosen coordinates
   (an edge's width, a slot's op or the depth by one block, each to its next cheaper option) in turn until
   the table's latency falls by the iteration's step; every candidate is scored with the supernet's weights on
   fixed batches of the architecture half of the images (no training) and the best one is kept, until the
   budget is met. The step is ``(cost of the largest network - budget) / ITERATIONS``.
3. **Final training**: the common inherit -> fine-tune path.

Measured latency: as NetAdapt works with a black-box metric, a pick that measures over the budget continues the
descent from where it stopped, aimed lower by the measured ratio (trisr.search.engine, ``_netadapt_search``).
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence, TypeVar

import numpy as np

from trisr.errors import BudgetError

#: Candidates proposed and scored per iteration.
CANDIDATES = 12
#: Coordinates (layers) every candidate shrinks together: NetAdaptV2's multi-layer perturbation.
LAYERS_PER_CANDIDATE = 2
#: Iterations from the largest network down to the budget: the latency step is the gap over this.
ITERATIONS = 10

A = TypeVar("A")


def coordinate_descent(
    start: A,
    cost: Callable[[A], float],
    score: Callable[[list[A]], Sequence[float]],
    coordinates: Callable[[A], list[Hashable]],
    shrink: Callable[[A, Hashable], A | None],
    target: float,
    rng: np.random.Generator,
    *,
    step: float | None = None,
    candidates: int = CANDIDATES,
    layers: int = LAYERS_PER_CANDIDATE,
    key: Callable[[A], Hashable] = lambda a: a,
    describe: Callable[[Hashable], str] = str,
) -> tuple[A, list[dict]]:
    """Shrink ``start`` until ``cost <= target``, keeping at every iteration the best-scored (lowest ``score``) of
    ``candidates`` proposals. A proposal picks ``layers`` coordinates of the current network at random and
    applies ``shrink`` to them in turn until the cost has fallen by ``step`` (or by what is left to the target);
    ``shrink`` returns None when a coordinate cannot shrink. Returns the network and one record per iteration."""
    arch, c = start, cost(start)
    step = (c - target) / ITERATIONS if step is None else step
    history: list[dict] = []
    while c > target:
        need = min(step, c - target)
        proposals: dict[Hashable, tuple[A, float, list[str]]] = {}
        for _ in range(candidates):
            coords = coordinates(arch)
            if not coords:
                break
            chosen = [coords[i] for i in rng.choice(len(coords), size=min(layers, len(coords)), replace=False)]
            new, cn, active = arch, c, list(chosen)
            while c - cn < need and active:
                for coord in list(active):
                    nxt = shrink(new, coord)
                    if nxt is None:
                        active.remove(coord)
                        continue
                    new, cn = nxt, cost(nxt)
                    if c - cn >= need:
                        break
            if cn < c:
                proposals.setdefault(key(new), (new, cn, [describe(x) for x in chosen]))
        if not proposals:
            raise BudgetError(f"coordinate descent cannot shrink the network below {c:.4g} (budget {target:.4g})")
        pool = list(proposals.values())
        scores = list(score([p[0] for p in pool]))
        best = int(np.argmin(scores))
        arch, c = pool[best][0], pool[best][1]
        history.append({"cost": c, "score": scores[best], "proposals": len(pool), "coordinates": pool[best][2],
                        "scores": [float(s) for s in scores]})
    return arch, history


class SpaceMoves:
    """The coordinates of trisr's space for :func:`coordinate_descent`: an architecture is ``(node, ops, widths)``
    (trisr/search/derive.py's ``Arch``: full cells x slots and cells x edges index tensors), its cost is the
    table sum of its derived network."""

    def __init__(self, net, cost_model) -> None:
        from trisr.space.sample import valid_nodes

        self.net, self.cost_model = net, cost_model
        self.valid = set(valid_nodes(net.space, net.tree))
        self._cost: dict[str, float] = {}

    def genotype(self, arch):
        return self.net.derive(*arch)

    def key(self, arch) -> str:
        return self.genotype(arch).digest()

    def cost(self, arch) -> float:
        k = self.key(arch)
        if k not in self._cost:
            self._cost[k] = self.cost_model.genotype_cost(self.genotype(arch))
        return self._cost[k]

    def largest(self):
        """The dearest network of the space by the table: widest edges, in every slot the op dearest at full
        width, on the dearest valid node."""
        import torch

        net, cm = self.net, self.cost_model
        n_cells, slots = net.alpha.shape[:2]
        op = int(cm.op_table[:, -1, -1].argmax())
        ops = torch.full((n_cells, slots), op, dtype=torch.long)
        widths = torch.full((n_cells, net.omega.shape[1]), net.space.num_widths - 1, dtype=torch.long)
        node = max(sorted(self.valid), key=lambda v: self.cost((v, ops, widths)))
        return node, ops, widths

    def _shallower(self, node: int) -> list[int]:
        """Nodes one block shorter: the parent (last block dropped) and the path with its last cell dropped."""
        tree = self.net.tree
        prefix = tree.nodes[node].prefix
        out = []
        if tree.nodes[node].parent is not None:
            out.append(tree.nodes[node].parent)
        if "C" in prefix:
            i = prefix.rindex("C")
            out.append(tree.node(prefix[:i] + prefix[i + 1:]).index)
        return [v for v in dict.fromkeys(out) if v in self.valid]

    def coordinates(self, arch) -> list[tuple]:
        node, ops, widths = arch
        coords: list[tuple] = [("depth",)] if self._shallower(node) else []
        for c in self.net.cells_on_path(node):
            coords += [("width", c, e) for e in range(widths.shape[1]) if int(widths[c, e]) > 0]
            coords += [("op", c, i) for i in range(ops.shape[1])]
        return coords

    def shrink(self, arch, coord):
        """The smallest cost-lowering change of one coordinate, or None."""
        node, ops, widths = arch
        now = self.cost(arch)
        if coord[0] == "width":
            _, c, e = coord
            if c not in self.net.cells_on_path(node) or int(widths[c, e]) == 0:
                return None
            options = []
            for k in range(int(widths[c, e])):  # every narrower option: a table need not fall at each one
                w2 = widths.clone()
                w2[c, e] = k
                options.append((node, ops, w2))
        elif coord[0] == "op":
            _, c, i = coord
            if c not in self.net.cells_on_path(node):
                return None
            options = []
            for o in range(self.net.space.num_ops):
                o2 = ops.clone()
                o2[c, i] = o
                options.append((node, o2, widths))
        else:
            options = [(v, ops, widths) for v in self._shallower(node)]
        cheaper = [(self.cost(a), a) for a in options if self.cost(a) < now]
        return max(cheaper, key=lambda t: t[0])[1] if cheaper else None


def describe(coord: tuple) -> str:
    return coord[0] if coord[0] == "depth" else f"{coord[0]} c{coord[1]}.{coord[2]}"

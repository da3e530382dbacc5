"""Derivation into a budget (a [project] rule; method.md has none).

The argmax architecture normally meets the budget because the adaptive cost weight steers the search.
When it does not, shrink it greedily inside the space instead of giving up: among all single moves that
lower the table cost -- drop the last block of the path (move to the parent node), narrow one internal
edge by one width option, or swap one slot to a cheaper op -- take the one that gives up the least
architecture preference per unit of cost saved, ``(logit_now - logit_new) / saving``, and repeat until
the cost fits. Only if no move lowers the cost any further is the budget declared unreachable.
"""

from __future__ import annotations

from trisr.errors import BudgetError
from trisr.space.cost import CostModel
from trisr.space.genotype import Genotype
from trisr.space.supernet import Supernet


def fit_to_budget(net: Supernet, cost_model: CostModel, budget: float) -> tuple[Genotype, list[str]]:
    alpha, omega, gamma = (p.detach().double().cpu() for p in net.arch_parameters())
    node = net.node_choice()
    ops = net.op_choice().cpu().clone()
    widths = net.width_choice().cpu().clone()
    steps: list[str] = []
    genotype = net.derive(node, ops, widths)
    cost = cost_model.genotype_cost(genotype)
    while cost > budget:
        best = None  # (score, description, node, ops, widths, cost)
        cells = net.cells_on_path(node)

        def consider(desc: str, pref_loss: float, n, o, w) -> None:
            nonlocal best
            c = cost_model.genotype_cost(net.derive(n, o, w))
            saving = cost - c
            if saving <= 0:
                return
            score = max(pref_loss, 0.0) / saving
            if best is None or score < best[0]:
                best = (score, desc, n, o, w, c)

        parent = net.tree.nodes[node].parent
        if parent is not None:
            consider(f"node {node}->{parent}", float(gamma[node] - gamma[parent]), parent, ops, widths)
        for c in cells:
            for e in range(widths.shape[1]):
                k = int(widths[c, e])
                if k > 0:
                    w2 = widths.clone()
                    w2[c, e] = k - 1
                    consider(f"cell {c} edge {e} width {k}->{k - 1}", float(omega[c, e, k] - omega[c, e, k - 1]), node, ops, w2)
            for i in range(ops.shape[1]):
                o_now = int(ops[c, i])
                for o_new in range(alpha.shape[-1]):
                    if o_new == o_now:
                        continue
                    o2 = ops.clone()
                    o2[c, i] = o_new
                    consider(f"cell {c} slot {i} op {o_now}->{o_new}", float(alpha[c, i, o_now] - alpha[c, i, o_new]), node, o2, widths)
        if best is None:
            raise BudgetError(
                f"no architecture reachable by shrinking meets the budget {budget:g} {cost_model.table.unit} "
                f"(stuck at {cost:.4g})"
            )
        _, desc, node, ops, widths, cost = best
        steps.append(desc)
    return net.derive(node, ops, widths), steps


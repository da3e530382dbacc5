"""Derivation into a budget band (a [project] rule; method.md has none).

The argmax architecture normally lands in the band [budget * (1 - band), budget] because the adaptive
cost weight steers the search. When it does not, it is moved there greedily inside the space, one single
change at a time, instead of giving up or wasting the budget:

* moves: go to the parent node (drop the last block) or to a child node (add a block, with that cell's own
  argmax ops and widths), narrow or widen one internal edge by one width option, or swap one slot's op; on
  the dense network level (dcnas) also change one block's extra connection (to none or another output);
* **shrink** while the cost exceeds the budget: take the cost-lowering move that gives up the least
  architecture preference per unit of cost saved, ``(logit_now - logit_new) / saving``;
* **fill** while the cost is below the band: take the cost-raising move that stays within the budget and
  gives up the least preference per unit of cost added. SR accuracy grows with capacity, and every
  candidate's weights were trained in the supernet, so inherited weights exist for whatever is added.

Only if no move lowers the cost below the budget is the budget declared unreachable.
"""

from __future__ import annotations

from typing import Iterator

import torch

from trisr.errors import BudgetError
from trisr.space.cost import CostModel
from trisr.space.genotype import Genotype
from trisr.space.supernet import Supernet

#: node, ops (cells x slots), widths (cells x edges), links (dense level: a connection column per node, else None)
Arch = tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]


def _moves(net: Supernet, arch: Arch, logits) -> Iterator[tuple[str, float, Arch]]:
    """Every single change: (description, preference given up, new architecture)."""
    alpha, omega, gamma = logits[:3]
    node, ops, widths, links = arch
    tree = net.tree
    parent = tree.nodes[node].parent
    if parent is not None:
        yield f"node {node}->{parent}", float(gamma[node] - gamma[parent]), (parent, ops, widths, links)
    for child in tree.children(node):
        yield f"node {node}->{child}", float(gamma[node] - gamma[child]), (child, ops, widths, links)
    if links is not None:
        beta, valid = logits[3], net.beta_valid.cpu()
        for n in tree.path(node):
            now = int(links[n.index])
            for new in range(beta.shape[-1]):
                if new != now and bool(valid[n.index, new]):
                    l2 = links.clone()
                    l2[n.index] = new
                    yield f"node {n.index} link {now - 1}->{new - 1}", float(beta[n.index, now] - beta[n.index, new]), (node, ops, widths, l2)
    for c in net.cells_on_path(node):
        for e in range(widths.shape[1]):
            k = int(widths[c, e])
            for k2 in (k - 1, k + 1):
                if 0 <= k2 < omega.shape[-1]:
                    w2 = widths.clone()
                    w2[c, e] = k2
                    yield f"cell {c} edge {e} width {k}->{k2}", float(omega[c, e, k] - omega[c, e, k2]), (node, ops, w2, links)
        for i in range(ops.shape[1]):
            o_now = int(ops[c, i])
            for o_new in range(alpha.shape[-1]):
                if o_new != o_now:
                    o2 = ops.clone()
                    o2[c, i] = o_new
                    yield f"cell {c} slot {i} op {o_now}->{o_new}", float(alpha[c, i, o_now] - alpha[c, i, o_new]), (node, o2, widths, links)


def fit_to_budget(
    net: Supernet, cost_model: CostModel, budget: float, lower: float | None = None
) -> tuple[Genotype, list[str]]:
    """Move the argmax architecture into [lower, budget] (``lower=None``: only enforce the budget)."""
    logits = tuple(p.detach().double().cpu() for p in net.arch_parameters())
    links = net.link_choice().cpu().clone() if net.dense else None
    arch: Arch = (net.node_choice(), net.op_choice().cpu().clone(), net.width_choice().cpu().clone(), links)

    def cost_of(a: Arch) -> float:
        return cost_model.genotype_cost(net.derive(*a))

    cost = cost_of(arch)
    steps: list[str] = []
    while cost > budget:
        best = None
        for desc, pref, new in _moves(net, arch, logits):
            c = cost_of(new)
            if c < cost:
                score = max(pref, 0.0) / (cost - c)
                if best is None or score < best[0]:
                    best = (score, desc, new, c)
        if best is None:
            raise BudgetError(
                f"no architecture reachable by shrinking meets the budget {budget:g} {cost_model.table.unit} "
                f"(stuck at {cost:.4g})"
            )
        _, desc, arch, cost = best
        steps.append("shrink " + desc)
    while lower is not None and cost < lower:
        best = None
        for desc, pref, new in _moves(net, arch, logits):
            c = cost_of(new)
            if cost < c <= budget:
                score = max(pref, 0.0) / (c - cost)
                if best is None or score < best[0]:
                    best = (score, desc, new, c)
        if best is None:
            break  # nothing more fits
        _, desc, arch, cost = best
        steps.append("fill " + desc)
    return net.derive(*arch), steps

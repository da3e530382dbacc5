"""HiNAS's layer-wise architecture sharing (Zhang et al., IJCV 2022; peers.md §1.2) on trisr's tree supernet.

HiNAS lets cells in different layers differ while cells in the same layer share one architecture. In the tree
every C edge owns a cell instance, so several instances sit at the same depth (the k-th searchable cell of
paths ``CC``, ``UCC`` and ``CUC`` alike). ``--strategy hinas`` ties the op and width logits of the instances at
one depth: they start equal and every architecture gradient is replaced by the group's sum (the gradient of one
shared parameter), so Adam, which is element-wise, keeps them equal step after step. The supernet's parameter
shapes do not change, so derivation, fit-to-budget, inheritance and checkpoints work unchanged; a derived network
holds one cell per depth, so the sharing is a search-time device, as in HiNAS.
"""

from __future__ import annotations

import torch

from trisr.space.supernet import Supernet
from trisr.space.tree import Tree


def depth_groups(tree: Tree) -> list[list[int]]:
    """Cell instances grouped by depth: each stem cell alone, then the tree's cells by how many C blocks their
    node's prefix holds (1 = the first searchable cell of a path)."""
    groups: dict[int, list[int]] = {}
    for n in tree.nodes:
        if n.prefix.endswith("C"):
            groups.setdefault(n.prefix.count("C"), []).append(n.instance)
    return [[c] for c in range(tree.num_stem)] + [sorted(groups[d]) for d in sorted(groups)]


def _sum_rows(grad: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    out = grad.clone()
    for g in groups:
        if len(g) > 1:
            out[g] = grad[g].sum(0, keepdim=True).expand(len(g), *grad.shape[1:])
    return out


def share_cells_by_depth(net: Supernet, tie_now: bool) -> list[list[int]]:
    """Tie ``net``'s op and width logits by depth (``tie_now``: copy each group's first row to the others first;
    a resumed run loads rows that are already tied). Returns the groups."""
    groups = depth_groups(net.tree)
    for p in (net.alpha, net.omega):
        if tie_now:
            with torch.no_grad():
                for g in groups:
                    p[g] = p[g[0]].expand(len(g), *p.shape[1:]).clone()
        p.register_hook(lambda grad, groups=groups: _sum_rows(grad, groups))
    return groups

"""Network level: the tree of cells (C) and up blocks (U) after the stem (method.md §3.2).

A node is a prefix of block types; every node is a candidate network. Every tree edge owns its own
module instance, so a C edge is a cell instance and a U edge an up-block instance. Nodes are numbered
by the reference code's iterative DFS (pop, number, push C child, then push U child), so reference
node indices (22 = CU, 54 = CCCCUU, ...) carry over.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class TreeNode:
    index: int
    prefix: str  # block types after the stem, e.g. "CCU"
    parent: int | None  # parent node index, None for the root
    instance: int | None  # index of the cell (C edge) or up block (U edge) that leads here


class Tree:
    """The network-level tree for ``max_cells`` searchable cells and ``max_ups`` up blocks per path.

    Cell instance ids start after the ``num_stem`` stem cells, so ``cell ids`` index directly into the
    supernet's cell list (stem cells first, then C edges in node order).
    """

    def __init__(self, max_cells: int, max_ups: int, num_stem: int = 1, chain: bool = False) -> None:
        """``chain=True``: the dense network level (``--strategy dcnas``) has no branching, one fixed block order
        (every cell, then every up block) whose prefixes are the candidate depths, node ``v`` = ``v`` blocks."""
        self.max_cells = max_cells
        self.max_ups = max_ups
        self.num_stem = num_stem
        self.chain = chain
        nodes: list[TreeNode] = []
        n_cells, n_ups = num_stem, 0
        stack: list[tuple[str, int | None]] = [("", None)]
        while stack:
            prefix, parent = stack.pop()
            instance = None
            if prefix.endswith("C"):
                instance, n_cells = n_cells, n_cells + 1
            elif prefix.endswith("U"):
                instance, n_ups = n_ups, n_ups + 1
            index = len(nodes)
            nodes.append(TreeNode(index, prefix, parent, instance))
            more_cells, more_ups = prefix.count("C") < max_cells, prefix.count("U") < max_ups
            if more_cells:
                stack.append((prefix + "C", index))
            if more_ups and not (chain and more_cells):
                stack.append((prefix + "U", index))  # pushed last, so its branch is numbered first
        self.nodes: tuple[TreeNode, ...] = tuple(nodes)
        self.num_cells = n_cells  # stem included
        self.num_ups = n_ups
        self._by_prefix = {n.prefix: n for n in nodes}

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, prefix: str) -> TreeNode:
        try:
            return self._by_prefix[prefix]
        except KeyError:
            raise KeyError(f"no tree node with prefix {prefix!r}") from None

    def path(self, index: int) -> list[TreeNode]:
        """Nodes from the root's first child to ``index`` (the root itself is the stem output)."""
        chain = []
        node = self.nodes[index]
        while node.parent is not None:
            chain.append(node)
            node = self.nodes[node.parent]
        return chain[::-1]

    def blocks(self, index: int) -> str:
        """The stem-prefixed block string of a node, e.g. node 22 -> "CCU" with one stem cell."""
        return "C" * self.num_stem + self.nodes[index].prefix

    @cached_property
    def complete_leaves(self) -> list[int]:
        return [
            n.index
            for n in self.nodes
            if n.prefix.count("C") == self.max_cells and n.prefix.count("U") == self.max_ups
        ]

    def children(self, index: int) -> list[int]:
        return [n.index for n in self.nodes if n.parent == index]

    @cached_property
    def incidence(self) -> tuple[torch.Tensor, torch.Tensor]:
        """0/1 matrices (nodes x cells) and (nodes x ups): which instances lie on each node's prefix,
        stem cells included. Cumulative node costs are then ``cells @ c + ups @ u`` (method.md §9.2)."""
        cells = torch.zeros(len(self.nodes), self.num_cells)
        ups = torch.zeros(len(self.nodes), self.num_ups)
        cells[:, : self.num_stem] = 1.0
        for n in self.nodes:
            for p in self.path(n.index):
                if p.prefix.endswith("C"):
                    cells[n.index, p.instance] = 1.0
                else:
                    ups[n.index, p.instance] = 1.0
        return cells, ups

    def needed(self, live: list[bool]) -> list[bool]:
        """Which nodes must be computed, given which have a non-zero weight: a node whose whole subtree
        has weight 0 contributes nothing and receives no gradient, so skipping it is exact
        (method.md §5 item 5)."""
        need = list(live)
        # Children always have larger indices than their parent (DFS pre-order), so one reverse sweep
        # propagates "needed" from descendants to ancestors.
        for n in reversed(self.nodes):
            if need[n.index] and n.parent is not None:
                need[n.parent] = True
        return need

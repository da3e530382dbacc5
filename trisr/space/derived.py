"""The derived network: a plain ``nn.Module`` built from a genotype, with no search machinery inside
(method.md §10.3). It is what gets fine-tuned, evaluated, exported and deployed."""

from __future__ import annotations

import torch
from torch import nn

from trisr.space.genotype import Genotype
from trisr.space.ops import Head, Tail, UpBlock, create_op


class DerivedCell(nn.Module):
    """A chain of fixed ops with widths nf -> w1 -> ... -> nf; output = 0.2 * x_P + x_0 (method.md §3.3)."""

    def __init__(self, op_names: list[str], channels: list[int], conv_shortcut: bool, dws_expansion: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            create_op(name, channels[i], channels[i + 1], conv_shortcut, dws_expansion)
            for i, name in enumerate(op_names)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for op in self.ops:
            h = op(h)
        return 0.2 * h + x


class DerivedNet(nn.Module):
    def __init__(self, genotype: Genotype) -> None:
        super().__init__()
        space = genotype.space
        self.genotype = genotype
        self.scale = space.scale
        self.head = Head(space.nf)
        blocks: list[nn.Module] = []
        cell = 0
        for kind in genotype.path:
            if kind == "C":
                blocks.append(
                    DerivedCell(
                        genotype.cell_op_names(cell),
                        genotype.cell_channels(cell),
                        conv_shortcut=space.derived_shortcut == "conv",
                        dws_expansion=space.dws_expansion,
                    )
                )
                cell += 1
            else:
                blocks.append(UpBlock(space.nf, space.variant))
        self.blocks = nn.Sequential(*blocks)
        #: Dense connections (schema v2): block k also adds output ``links[k-1]`` to its input; None = chain.
        self.links = None if genotype.links is None else list(genotype.links)
        self.tail = Tail(space.nf, space.scale, space.variant, space.skip, space.output)

    @property
    def arch(self) -> Genotype:
        """The architecture interface every trisr network has (``.kind``, ``.scale``, ``.digest()``,
        ``.to_dict()``); for a derived network it is its genotype."""
        return self.genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.links is None:
            return self.tail(self.blocks(self.head(x)), x)
        outs = [self.head(x)]  # outs[k] = output of block k, outs[0] the head's
        for block, j in zip(self.blocks, self.links):
            h = outs[-1] if j < 0 else outs[-1] + outs[j]
            outs.append(block(h))
        return self.tail(outs[-1], x)

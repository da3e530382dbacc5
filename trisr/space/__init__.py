"""The trilevel search space: network-level tree, cell-level ops, kernel-level widths."""

from trisr.space.config import SpaceConfig, make_divisible
from trisr.space.genotype import Genotype
from trisr.space.tree import Tree

__all__ = ["SpaceConfig", "make_divisible", "Genotype", "Tree"]

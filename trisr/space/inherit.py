"""Weight inheritance from the supernet to a derived network by mapping and slicing (method.md §10.4).

Every tensor of the derived network gets its value from exactly one supernet tensor: the chosen
candidate's weights, cut to the derived widths by the leading slice ``W[:c_out, :c_in]`` (bias ``[:c_out]``,
the ``dwsblock`` expansion to ``e*c_in``). A derived tensor without a source is an error, never a silent
skip. The supernet's 1x1 shortcuts of ops whose derived widths match are dropped (identity shortcut,
the paper's counts); fine-tuning repairs that change (method.md §10.4 item 4).
"""

from __future__ import annotations

import torch

from trisr.errors import TrisrError
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.supernet import Supernet, check_network_level


def source_names(supernet: Supernet, genotype: Genotype) -> dict[str, str]:
    """Derived-network parameter name -> supernet parameter name (prefix mapping per block)."""
    if genotype.node_index is None:
        raise TrisrError("inheritance needs the genotype's tree node index")
    if genotype.space.fingerprint() != supernet.space.fingerprint():
        raise TrisrError("the genotype was derived from a different search space than this supernet")
    check_network_level(supernet, genotype)
    prefixes = {"head.": "head.", "tail.": "tail."}
    cells = supernet.cells_on_path(genotype.node_index)
    ups = [n.instance for n in supernet.tree.path(genotype.node_index) if n.prefix.endswith("U")]
    cell_row = up_row = 0
    for j, kind in enumerate(genotype.path):
        if kind == "C":
            c = cells[cell_row]
            for i, o in enumerate(genotype.ops[cell_row]):
                prefixes[f"blocks.{j}.ops.{i}."] = f"cells.{c}.ops.{i}.candidates.{o}."
            cell_row += 1
        else:
            prefixes[f"blocks.{j}."] = f"ups.{ups[up_row]}."
            up_row += 1
    mapping = {}
    for name in DerivedNet(genotype).state_dict():
        matches = [p for p in prefixes if name.startswith(p)]
        if len(matches) != 1:
            raise TrisrError(f"inheritance: derived tensor {name!r} has no unique supernet source")
        mapping[name] = prefixes[matches[0]] + name[len(matches[0]) :]
    return mapping


@torch.no_grad()
def inherit(supernet: Supernet, genotype: Genotype) -> DerivedNet:
    """Build the derived network of ``genotype`` with weights sliced from ``supernet``."""
    derived = DerivedNet(genotype).to(next(supernet.parameters()).device)
    src = supernet.state_dict()
    mapping = source_names(supernet, genotype)
    state = {}
    for name, target in derived.state_dict().items():
        src_name = mapping[name]
        if src_name not in src:
            raise TrisrError(f"inheritance: supernet has no tensor {src_name!r} for {name!r}")
        full = src[src_name]
        if full.dim() != target.dim() or any(t > f for t, f in zip(target.shape, full.shape)):
            raise TrisrError(f"inheritance: cannot slice {src_name} {tuple(full.shape)} to {tuple(target.shape)}")
        state[name] = full[tuple(slice(0, n) for n in target.shape)].clone()
    derived.load_state_dict(state, strict=True)
    return derived


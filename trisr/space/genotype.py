"""A derived architecture as a typed, JSON-serialised genotype (method.md §10.2)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from trisr.errors import TrisrError
from trisr.io import read_json
from trisr.space.config import SpaceConfig

#: Version 2 adds ``links`` (the dense network level of ``--strategy dcnas``). A chain genotype (no links) is still
#: written as version 1, so its file and digest are what they always were and older trisr versions read it.
GENOTYPE_SCHEMA_VERSION = 2
CHAIN_SCHEMA_VERSION = 1


@dataclass
class Genotype:
    """path: blocks after the head, stem included ("C" cell, "U" up block);
    ops: one row of op ids per cell (indexing ``space.ops``); widths: one row of width ids per cell
    (indexing ``space.widths``). ``node_index`` is the tree node the path came from, when known.

    ``links`` (schema version 2, dense networks): one entry per block of ``path``. Block ``k`` (1-based) reads
    the output of block ``k - 1`` (output 0 is the head's), plus, when ``links[k-1] >= 0``, the earlier output
    ``links[k-1]`` in ``[0, k - 2]``, added to it. ``None`` is the plain chain of the tree space."""

    space: SpaceConfig
    path: str
    ops: list[list[int]]
    widths: list[list[int]]
    node_index: int | None = None
    links: list[int] | None = None

    #: Which kind of architecture this is (``trisr.zoo.ZooSpec`` is the other): run folders, checkpoints and
    #: sidecars dispatch on it.
    kind = "trisr"

    def __post_init__(self) -> None:
        self.validate()

    @property
    def schema_version(self) -> int:
        return CHAIN_SCHEMA_VERSION if self.links is None else GENOTYPE_SCHEMA_VERSION

    @property
    def dense(self) -> bool:
        return self.links is not None

    @property
    def num_links(self) -> int:
        """Dense connections the network adds (each one is an elementwise add at nf channels)."""
        return 0 if self.links is None else sum(1 for j in self.links if j >= 0)

    @property
    def scale(self) -> int:
        return int(self.space.scale)

    def validate(self) -> None:
        s = self.space
        err = []
        if any(b not in "CU" for b in self.path):
            err.append(f"path {self.path!r} may only contain C and U")
        n_cells = self.path.count("C")
        if self.path[: s.num_stem] != "C" * s.num_stem:
            err.append(f"path {self.path!r} must start with the {s.num_stem} stem cell(s)")
        if n_cells - s.num_stem > s.num_cell_path_search or self.path.count("U") > s.num_up:
            err.append(f"path {self.path!r} has more cells or ups than the space allows")
        if s.variant == "A" and self.path.count("U") != s.num_up:
            err.append(f"a variant-A path needs exactly {s.num_up} up blocks")
        if len(self.ops) != n_cells or len(self.widths) != n_cells:
            err.append(f"need one ops row and one widths row per cell ({n_cells})")
        for row in self.ops:
            if len(row) != s.ops_per_cell or any(not 0 <= o < s.num_ops for o in row):
                err.append(f"bad ops row {row}: {s.ops_per_cell} ids in [0, {s.num_ops})")
        for row in self.widths:
            if len(row) != s.edges_per_cell or any(not 0 <= w < s.num_widths for w in row):
                err.append(f"bad widths row {row}: {s.edges_per_cell} ids in [0, {s.num_widths})")
        if self.links is not None:
            if s.variant != "B":
                err.append("dense links need variant B (every block at LR resolution)")
            if len(self.links) != len(self.path):
                err.append(f"need one link per block ({len(self.path)}), got {len(self.links)}")
            for k, j in enumerate(self.links, start=1):
                if j != -1 and not 0 <= j <= k - 2:
                    err.append(f"block {k} may link to an earlier output in [0, {k - 2}] or -1 (none), not {j}")
        if err:
            raise TrisrError("invalid genotype: " + "; ".join(err))

    def cell_channels(self, cell: int) -> list[int]:
        """Channel counts along a cell's chain: [nf, w1, ..., w_{P-1}, nf]."""
        ws = self.space.widths
        return [self.space.nf] + [ws[w] for w in self.widths[cell]] + [self.space.nf]

    def cell_op_names(self, cell: int) -> list[str]:
        return [self.space.ops[o] for o in self.ops[cell]]

    def to_dict(self) -> dict:
        d = {
            "schema_version": self.schema_version,
            "space": self.space.to_dict(),
            "path": self.path,
            "node_index": self.node_index,
            "ops": [list(r) for r in self.ops],
            "widths": [list(r) for r in self.widths],
        }
        if self.links is not None:
            d["links"] = list(self.links)
        # Human-readable echo; ignored on load.
        d["readable"] = [{"ops": self.cell_op_names(i), "channels": self.cell_channels(i)} for i in range(len(self.ops))]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Genotype":
        version = d.get("schema_version")
        if version not in (CHAIN_SCHEMA_VERSION, GENOTYPE_SCHEMA_VERSION):
            raise TrisrError(
                f"genotype schema version {version} is not supported (expected {CHAIN_SCHEMA_VERSION} or {GENOTYPE_SCHEMA_VERSION})"
            )
        if (version == GENOTYPE_SCHEMA_VERSION) != (d.get("links") is not None):
            raise TrisrError(f"invalid genotype: schema version {version} {'needs' if version == 2 else 'has no'} 'links'")
        try:
            return cls(
                space=SpaceConfig.from_dict(d["space"]),
                path=str(d["path"]),
                ops=[[int(o) for o in r] for r in d["ops"]],
                widths=[[int(w) for w in r] for r in d["widths"]],
                node_index=d.get("node_index"),
                links=None if d.get("links") is None else [int(j) for j in d["links"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TrisrError(f"invalid genotype: {exc!r}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | Path) -> "Genotype":
        return cls.from_dict(read_json(path, "genotype file"))

    def digest(self) -> str:
        blob = json.dumps({k: v for k, v in self.to_dict().items() if k != "readable"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

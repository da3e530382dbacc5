"""The supernet: every cell, op, width and tree node of the space, mixed by relaxed architecture weights
(method.md §3, §5).

Levels and their parameters:

* cell level, ``alpha`` (cells x slots x ops): mixed op ``y = sum_o a_o * op_o(x; w_in, w_out) * s_in * s_out``;
* kernel level, ``omega`` (cells x internal edges x widths): widths drawn by straight-through Gumbel
  (code-faithful default, scores ``s`` are exactly 1 forward) or relaxed by channel masking
  (``y * sum_k p_k m_k``, abstract-faithful option, §4.5): every op runs at full width nf, and the
  expected mask of each edge multiplies the op's output and its internal width too (residual's conv1
  output by the output edge's mask, dwsblock's hidden layer by ``sum_k p_k 1[ch < e*w_k]`` of the input
  edge), so at one-hot widths the masked supernet computes exactly the inherited derived network;
* network level, ``gamma`` (tree nodes): ``out = sum_v g_v * h_v`` over every node, then the tail.
* dense network level (``network="dense"``, ``--strategy dcnas``): the tree is one chain of blocks whose
  prefixes are the depths ``gamma`` weighs, and ``beta`` (nodes x (1 + sources)) lets each block add one earlier
  output (head included; column 0 = none) to its input. Each pass draws one connection per block by
  straight-through Gumbel (path-level sampling: one extra tensor per block, so memory stays bounded) while
  the width draws run each edge on a sampled channel prefix (channel-level sampling).

Candidates and subtrees whose relaxed weight is exactly 0 are skipped: they contribute nothing and get
no gradient, so skipping is exact (§5 item 5), and the saving grows as the radius rises.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from trisr import relax as R
from trisr.errors import TrisrError
from trisr.space.config import SpaceConfig
from trisr.space.genotype import Genotype
from trisr.space.ops import Head, Tail, UpBlock, create_op
from trisr.space.tree import Tree

WIDTH_MODES = ("sample", "max", "min", "random", "argmax")
#: Network levels: the paper's tree, or DCNAS's densely connected chain (docs/strategies.md).
NETWORKS = ("tree", "dense")
#: Logit of an impossible connection (a later output): finite, so softmax and its gradient stay finite.
_MASKED = -1e9
WIDTH_RELAXATIONS = ("gumbel",) + R.RELAXATIONS


@dataclass(frozen=True)
class RelaxConfig:
    """Relaxation per level (method.md §4): sparsestmax for ops and nodes, Gumbel-ST for widths (code)."""

    op: str = "sparsestmax"
    node: str = "sparsestmax"
    width: str = "gumbel"

    def __post_init__(self) -> None:
        for level, kind, allowed in (
            ("op", self.op, R.RELAXATIONS),
            ("node", self.node, R.RELAXATIONS),
            ("width", self.width, WIDTH_RELAXATIONS),
        ):
            if kind not in allowed:
                raise ValueError(f"{level} relaxation must be one of {allowed}, got {kind!r}")


@dataclass
class ArchWeights:
    """Relaxed architecture weights for one forward pass."""

    alpha: torch.Tensor  # (cells, slots, ops)
    gamma: torch.Tensor  # (nodes,)
    #: Width distributions per internal edge (cells, edges, widths): one-hot (with straight-through
    #: gradient) for sampled/fixed widths, a probability vector for the masking relaxation.
    widths: torch.Tensor
    #: True when ``widths`` are probabilities to be applied as channel masks at full width.
    masked: bool = False
    #: Dense network level only: (nodes, 1 + sources) one-hot (straight-through) connection per node.
    links: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "ArchWeights":
        """The same weights on ``device``: every tensor field moves, so a field added later cannot be left behind."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v.to(device) for k, v in tensors.items() if isinstance(v, torch.Tensor)})


class MixedOp(nn.Module):
    def __init__(self, space: SpaceConfig) -> None:
        super().__init__()
        # Full width, 1x1 shortcuts always built: widths change from pass to pass (method.md §3.3).
        self.candidates = nn.ModuleList(
            create_op(name, space.nf, space.nf, conv_shortcut=True, dws_expansion=space.dws_expansion)
            for name in space.ops
        )

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        live: list[bool],
        c_out: int,
        *,
        in_mask: torch.Tensor | None = None,
        out_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``in_mask``/``out_mask``: channel masks (nf,) of the input/output edge (masked width relaxation,
        ``None`` at a full-width edge), handed to the ops for their internal widths."""
        masked = in_mask is not None or out_mask is not None
        out = None
        for w, is_live, op in zip(weights.unbind(0), live, self.candidates):
            if not is_live:  # weight exactly 0: no contribution and no gradient, skipping is exact
                continue
            y = w * (op(x, c_out, in_mask=in_mask, out_mask=out_mask) if masked else op(x, c_out))
            out = y if out is None else out + y
        assert out is not None, "a mixed op needs at least one non-zero weight"
        return out


class SuperCell(nn.Module):
    def __init__(self, space: SpaceConfig) -> None:
        super().__init__()
        self.ops = nn.ModuleList(MixedOp(space) for _ in range(space.ops_per_cell))

    def forward(self, x, alpha, live, channels, scores, masks):
        """alpha: (slots, ops) with ``live`` its non-zero pattern; channels: output width per slot;
        scores: one scalar per slot (s_in * s_out); masks: None or a (slots, nf) channel mask per slot,
        the mask of slot i's output edge (None for the full-width last edge). Slot i's input mask is
        slot i-1's output mask (slot 0's input is full width); both also mask the ops' internal widths."""
        h = x
        if masks is None:
            for i, op in enumerate(self.ops):
                h = op(h, alpha[i], live[i], channels[i]) * scores[i]
            return 0.2 * h + x
        for i, op in enumerate(self.ops):
            in_mask = masks[i - 1] if i > 0 else None
            h = op(h, alpha[i], live[i], channels[i], in_mask=in_mask, out_mask=masks[i]) * scores[i]
            if masks[i] is not None:
                h = h * masks[i].view(1, -1, 1, 1)
        return 0.2 * h + x


class Supernet(nn.Module):
    def __init__(
        self, space: SpaceConfig, relax: RelaxConfig | None = None, init_std: float = 1e-3, network: str = "tree"
    ) -> None:
        super().__init__()
        if space.variant != "B":
            # Variant A mixes nodes of different resolution; see docs/method.md (method.md §11 item 1).
            raise ValueError("the supernet implements variant B only (variant A is supported for derived networks)")
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
        self.space = space
        self.relax = relax or RelaxConfig()
        self.network = network
        self.tree = Tree(space.num_cell_path_search, space.num_up, space.num_stem, chain=network == "dense")
        self.head = Head(space.nf)
        self.cells = nn.ModuleList(SuperCell(space) for _ in range(self.tree.num_cells))
        self.ups = nn.ModuleList(UpBlock(space.nf, space.variant) for _ in range(self.tree.num_ups))
        self.tail = Tail(space.nf, space.scale, space.variant, space.skip, space.output)
        n_cells, n_nodes = self.tree.num_cells, len(self.tree)
        # Small random logits instead of the reference constants: exact ties would make the first
        # sparsestmax push undefined (method.md §4.3, tie-breaking pitfall).
        self.alpha = nn.Parameter(init_std * torch.randn(n_cells, space.ops_per_cell, space.num_ops))
        self.omega = nn.Parameter(init_std * torch.randn(n_cells, space.edges_per_cell, space.num_widths))
        self.gamma = nn.Parameter(init_std * torch.randn(n_nodes))
        # SSN-style freezing (§4.4): -1 = free, otherwise the frozen choice of that row.
        self.register_buffer("alpha_frozen", torch.full((n_cells, space.ops_per_cell), -1, dtype=torch.long))
        self.register_buffer("omega_frozen", torch.full((n_cells, space.edges_per_cell), -1, dtype=torch.long))
        self.register_buffer("gamma_frozen", torch.full((1,), -1, dtype=torch.long))
        widths = torch.tensor(space.widths)
        self.register_buffer("width_masks", (torch.arange(space.nf)[None, :] < widths[:, None]).float())
        if network == "dense":
            # Node v is block k = num_stem + v of the chain; it may add output j in [0, k - 2] (column 1 + j).
            n_src = space.num_stem + n_nodes - 2
            self.beta = nn.Parameter(init_std * torch.randn(n_nodes, 1 + n_src))
            valid = torch.zeros(n_nodes, 1 + n_src, dtype=torch.bool)
            valid[:, 0] = True
            for v in range(1, n_nodes):
                valid[v, 1 : space.num_stem + v] = True
            self.register_buffer("beta_valid", valid)

    # -- parameters --------------------------------------------------------------------------------------

    @property
    def dense(self) -> bool:
        return self.network == "dense"

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha, self.omega, self.gamma] + ([self.beta] if self.dense else [])

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # -- relaxed weights -----------------------------------------------------------------------------------

    @staticmethod
    def _relax_rows(kind: str, logits: torch.Tensor, radius: float, frozen: torch.Tensor) -> torch.Tensor:
        p = R.relax(kind, logits, radius)
        if bool((frozen >= 0).any()):
            one_hot = torch.nn.functional.one_hot(frozen.clamp(min=0), logits.shape[-1]).to(p.dtype)
            p = torch.where((frozen >= 0).unsqueeze(-1), one_hot, p)
        return p

    def relaxed_alpha(self, radius: float) -> torch.Tensor:
        return self._relax_rows(self.relax.op, self.alpha, radius, self.alpha_frozen)

    def relaxed_gamma(self, radius: float) -> torch.Tensor:
        return self._relax_rows(self.relax.node, self.gamma[None], radius, self.gamma_frozen)[0]

    def width_distribution(self, mode: str, radius: float, generator: torch.Generator | None = None):
        """(widths tensor, masked flag) for a width mode (see ``WIDTH_MODES``)."""
        shape = self.omega.shape
        n_w = shape[-1]

        def fixed(idx: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(idx, n_w).to(self.omega.dtype)

        if mode == "max":
            return fixed(torch.full(shape[:-1], n_w - 1, device=self.omega.device)), False
        if mode == "min":
            return fixed(torch.zeros(shape[:-1], dtype=torch.long, device=self.omega.device)), False
        if mode == "random":
            idx = torch.randint(0, n_w, shape[:-1], generator=generator, device="cpu").to(self.omega.device)
            return fixed(idx), False
        if mode == "argmax":
            return fixed(self.width_choice()), False
        if mode == "sample":
            if self.relax.width == "gumbel":
                q = R.gumbel_st(self.omega, generator=generator)
                frozen = self.omega_frozen
                if bool((frozen >= 0).any()):
                    q = torch.where((frozen >= 0).unsqueeze(-1), fixed(frozen.clamp(min=0)), q)
                return q, False
            return self._relax_rows(self.relax.width, self.omega, radius, self.omega_frozen), True
        raise ValueError(f"width mode must be one of {WIDTH_MODES}, got {mode!r}")

    def link_weights(self, mode: str = "sample", generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Dense network level: one connection per node, "sample" (straight-through Gumbel, path-level sampling),
        "argmax" (one-hot of the strongest), or "probs" (the softmax, for the expected cost); None for the tree."""
        if not self.dense:
            return None
        logits = self.beta.masked_fill(~self.beta_valid, _MASKED)
        if mode == "probs":
            return torch.softmax(logits, -1)
        if mode == "sample":
            return R.gumbel_st(logits, generator=generator)
        if mode == "argmax":
            return torch.nn.functional.one_hot(self.link_choice(), logits.shape[-1]).to(logits.dtype)
        raise ValueError(f"link mode must be sample, argmax or probs, got {mode!r}")

    def arch_weights(self, radius: float, width_mode: str = "sample", generator=None) -> ArchWeights:
        widths, masked = self.width_distribution(width_mode, radius, generator)
        links = self.link_weights("sample" if width_mode == "sample" else "argmax", generator)
        return ArchWeights(self.relaxed_alpha(radius), self.relaxed_gamma(radius), widths, masked, links)

    # -- forward ----------------------------------------------------------------------------------------

    def _cell_plan(self, q: torch.Tensor, idx: list[int], masked: bool):
        """Per-slot output channels, scores s_in*s_out and channel masks for one cell; ``idx`` holds
        the drawn width id of each internal edge."""
        nf, widths = self.space.nf, self.space.widths
        n_slots = self.space.ops_per_cell
        one = q.new_ones(())
        if masked:
            masks = [q[e] @ self.width_masks for e in range(n_slots - 1)] + [None]
            return [nf] * n_slots, [one] * n_slots, masks
        # Straight-through score of each drawn width: exactly 1 forward, gradient to omega backward.
        s_edges = [one] + [q[e, k] for e, k in enumerate(idx)] + [one]  # fixed ends w_0 = w_P = nf
        channels = [widths[k] for k in idx] + [nf]
        scores = [s_edges[i] * s_edges[i + 1] for i in range(n_slots)]
        return channels, scores, None

    def forward(self, x: torch.Tensor, arch: ArchWeights) -> torch.Tensor:
        # One host sync per forward for every data-dependent decision (which candidates, widths and
        # nodes run), instead of one per candidate.
        alpha_live = (arch.alpha.detach() != 0).tolist()
        width_idx = arch.widths.detach().argmax(-1).tolist()
        gamma_live = (arch.gamma.detach() != 0).tolist()

        def run_cell(c: int, h: torch.Tensor) -> torch.Tensor:
            channels, scores, masks = self._cell_plan(arch.widths[c], width_idx[c], arch.masked)
            return self.cells[c](h, arch.alpha[c], alpha_live[c], channels, scores, masks)

        h = self.head(x)
        outs = [h]  # dense level: every block output in chain order, the head's first
        for c in range(self.tree.num_stem):
            h = run_cell(c, h)
            outs.append(h)
        if self.dense and arch.links is None:
            raise ValueError("a dense supernet needs link weights (Supernet.link_weights)")
        link_idx = arch.links.detach().argmax(-1).tolist() if arch.links is not None else None
        need = self.tree.needed(gamma_live)
        feats: dict[int, torch.Tensor] = {0: h}
        out = arch.gamma[0] * h if gamma_live[0] else None
        for node in self.tree.nodes[1:]:
            if not need[node.index]:
                continue
            parent = feats[node.parent]
            if link_idx is not None and link_idx[node.index] > 0:
                # Only the drawn connection runs; its straight-through weight is exactly 1 forward.
                col = link_idx[node.index]
                parent = parent + arch.links[node.index, col] * outs[col - 1]
            if node.prefix.endswith("C"):
                h = run_cell(node.instance, parent)
            else:
                h = self.ups[node.instance](parent)
            feats[node.index] = h
            if link_idx is not None:
                outs.append(h)  # chain order; a skipped (unneeded) node has no needed successor, so indices hold
            if gamma_live[node.index]:
                g = arch.gamma[node.index]
                out = g * h if out is None else out + g * h
        return self.tail(out, x)

    # -- derivation ----------------------------------------------------------------------------------------

    def op_choice(self) -> torch.Tensor:
        return torch.where(self.alpha_frozen >= 0, self.alpha_frozen, self.alpha.detach().argmax(-1))

    def width_choice(self) -> torch.Tensor:
        return torch.where(self.omega_frozen >= 0, self.omega_frozen, self.omega.detach().argmax(-1))

    def node_choice(self) -> int:
        frozen = int(self.gamma_frozen[0])
        return frozen if frozen >= 0 else int(self.gamma.detach().argmax())

    def link_choice(self) -> torch.Tensor:
        """Dense level: the strongest connection column of every node (0 = none)."""
        return self.beta.detach().masked_fill(~self.beta_valid, _MASKED).argmax(-1)

    def derive(self, node: int | None = None, ops=None, widths=None, links=None) -> Genotype:
        """The argmax architecture (method.md §10.1), or the given overrides, as a genotype. ``links``: dense
        level, a connection column per node (``link_choice()`` by default)."""
        node = self.node_choice() if node is None else node
        ops = self.op_choice() if ops is None else ops
        widths = self.width_choice() if widths is None else widths
        cells = self.cells_on_path(node)
        genotype_links = None
        if self.dense:
            links = self.link_choice() if links is None else links
            # Stem blocks read the chain only; column c of a node is output c - 1, column 0 none.
            genotype_links = [-1] * self.tree.num_stem + [int(links[n.index]) - 1 for n in self.tree.path(node)]
        return Genotype(
            space=self.space,
            path=self.tree.blocks(node),
            ops=[ops[c].tolist() for c in cells],
            widths=[widths[c].tolist() for c in cells],
            node_index=node,
            links=genotype_links,
        )

    def cells_on_path(self, node: int) -> list[int]:
        return list(range(self.tree.num_stem)) + [
            n.instance for n in self.tree.path(node) if n.prefix.endswith("C")
        ]

    def one_hot_arch(self, genotype: Genotype) -> ArchWeights:
        """Exactly one-hot weights selecting ``genotype`` (for tests and the supernet/derived check)."""
        F = torch.nn.functional
        check_network_level(self, genotype)
        node = genotype.node_index
        ops = self.op_choice().clone()
        widths = self.width_choice().clone()
        for row, c in enumerate(self.cells_on_path(node)):
            ops[c] = torch.tensor(genotype.ops[row])
            widths[c] = torch.tensor(genotype.widths[row])
        dtype = self.alpha.dtype
        links = None
        if self.dense:
            if any(j >= 0 for j in genotype.links[: self.tree.num_stem]):  # dense by check_network_level
                raise TrisrError("a dense supernet selects dense genotypes whose stem reads the chain only")
            cols = self.link_choice().clone()
            for k, n in enumerate(self.tree.path(node)):
                cols[n.index] = genotype.links[self.tree.num_stem + k] + 1
            links = F.one_hot(cols, self.beta.shape[-1]).to(dtype)
        return ArchWeights(
            alpha=F.one_hot(ops, self.space.num_ops).to(dtype),
            gamma=F.one_hot(torch.tensor(node), len(self.tree)).to(dtype),
            widths=F.one_hot(widths, self.space.num_widths).to(dtype),
            links=links,
        )

    # -- freezing -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def freeze_one_hot(self, arch: ArchWeights) -> dict[str, int]:
        """Freeze every row whose relaxed output became one-hot (§4.4); returns how many rows are frozen."""

        def freeze(p: torch.Tensor, frozen: torch.Tensor) -> None:
            hot = R.is_one_hot(p) & (frozen < 0)
            frozen[hot] = p.argmax(-1)[hot]

        if self.relax.op == "sparsestmax":
            freeze(arch.alpha, self.alpha_frozen)
        if self.relax.node == "sparsestmax":
            freeze(arch.gamma[None], self.gamma_frozen)
        if arch.masked and self.relax.width == "sparsestmax":
            freeze(arch.widths, self.omega_frozen)
        return {
            "alpha": int((self.alpha_frozen >= 0).sum()),
            "omega": int((self.omega_frozen >= 0).sum()),
            "gamma": int((self.gamma_frozen >= 0).sum()),
        }


def check_network_level(supernet: Supernet, genotype: Genotype) -> None:
    """A tree genotype needs the tree supernet and a dense one the dense chain: node indices mean different
    blocks in the two, so a mismatch would map the wrong cells."""
    if genotype.dense != supernet.dense:
        kinds = {True: "dense (--strategy dcnas)", False: "tree"}
        raise TrisrError(
            f"a {kinds[genotype.dense]} genotype cannot take weights from a {kinds[supernet.dense]} supernet"
        )
    node = genotype.node_index
    if node is None or not 0 <= node < len(supernet.tree) or supernet.tree.blocks(node) != genotype.path:
        raise TrisrError(f"genotype path {genotype.path!r} is not node {node} of this supernet's network level")

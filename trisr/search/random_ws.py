"""Random search with weight sharing (Li & Talwalkar, 2019): the standard NAS baseline, as ``trisr search
--strategy random`` (issue 11).

After the same warm-up as the trilevel search, the supernet's weights keep training for the search phase's steps
on *single random paths* (one op per slot, one node, random widths: a uniformly drawn architecture per step, as
in one-shot random search), with no architecture parameters. Then ``candidates`` architectures are drawn from the
same space with their table cost inside the budget band (:func:`trisr.space.sample.sample_in_band`, the random
picks' sampler), each is scored with the supernet's inherited weights on fixed patches of the architecture half
of the training images (no training), and the best one is fine-tuned like any derived network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trisr.space.inherit import inherit
from trisr.space.sample import valid_nodes
from trisr.space.supernet import ArchWeights, Supernet

#: Architectures drawn and scored (inherited weights, no training) before the best one is fine-tuned.
CANDIDATES = 32
#: Fixed batches of architecture-half patches every candidate is scored on.
SCORE_BATCHES = 8


def random_path(net: Supernet, generator: torch.Generator) -> ArchWeights:
    """One uniformly drawn architecture as one-hot architecture weights: an op per slot, a node among the
    valid ones, a width per internal edge."""
    alpha = net.alpha.detach()
    n_ops = alpha.shape[-1]
    ops = torch.randint(0, n_ops, alpha.shape[:-1], generator=generator)
    nodes = valid_nodes(net.space, net.tree)
    node = nodes[int(torch.randint(0, len(nodes), (1,), generator=generator))]
    gamma = torch.zeros_like(net.gamma.detach())
    gamma[node] = 1.0
    widths, _ = net.width_distribution("random", 0.0, generator)
    return ArchWeights(F.one_hot(ops, n_ops).to(alpha), gamma, widths)


@torch.no_grad()
def score(net: Supernet, genotypes: list, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Mean L1 of each genotype's network with inherited supernet weights on ``batches`` (lower is better)."""
    out = []
    for g in genotypes:
        model = inherit(net, g).eval()
        out.append(float(sum(F.l1_loss(model(lr), hr) for lr, hr in batches) / len(batches)))
    return out

"""Search space: tree, widths, reference architectures (method.md §3, §12, §15), supernet, inheritance."""

import json

import pytest
import torch

from trisr.errors import TrisrError
from trisr.space.config import SpaceConfig, make_divisible
from trisr.space.count import count_macs, count_params
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.inherit import inherit, source_names
from trisr.space.ops import OPS, create_op
from trisr.space.supernet import ArchWeights, RelaxConfig, Supernet
from trisr.space.tree import Tree

# method.md §12: (variant, path incl. stem, node, ops, widths, params, MACs @256x256, MACs @180x320)
REFERENCE = {
    "A1": ("A", "CCCUCU", 42, [[0, 1, 0, 0, 1], [3, 3, 3, 1, 2], [0, 0, 1, 0, 3], [1, 1, 0, 1, 1]],
           [[4, 0, 0, 0], [1, 1, 4, 0], [4, 4, 2, 1], [0, 4, 1, 1]], 335_427, 78_520_516_608, 69_012_172_800),
    "A2": ("A", "CCCCCUU", 54, [[3, 3, 3, 3, 3], [0, 1, 3, 1, 3], [3, 3, 3, 2, 3], [3, 3, 3, 2, 2], [1, 3, 3, 3, 2]],
           [[3, 0, 4, 2], [4, 4, 4, 0], [1, 1, 2, 2], [2, 2, 4, 2], [2, 0, 0, 0]], 665_987, 88_909_807_616, 78_143_385_600),
    "B1": ("B", "CCC", 36, [[3, 0, 3, 3, 3], [3, 0, 1, 3, 1], [2, 0, 0, 0, 0]],
           [[1, 1, 0, 2], [0, 3, 0, 0], [4, 0, 0, 0]], 234_192, 15_348_006_912, 13_489_459_200),
    "B2": ("B", "CCCCCU", 53, [[0, 0, 3, 3, 0], [3, 2, 3, 1, 1], [1, 0, 1, 0, 3], [3, 3, 1, 1, 3], [3, 1, 1, 1, 1]],
           [[1, 0, 4, 0], [1, 2, 3, 2], [4, 4, 0, 1], [4, 3, 0, 0], [1, 4, 4, 0]], 509_072, 33_362_542_592, 29_322_547_200),
    "B3": ("B", "CCUU", 23, [[0, 0, 0, 2, 0], [3, 3, 1, 1, 0]], [[2, 0, 3, 3], [4, 3, 1, 0]],
           264_496, 17_334_009_856, 15_234_969_600),
}


def tiny_space(**kw) -> SpaceConfig:
    base = dict(nf=16, num_cell=3, num_up=1, num_cell_path_search=2, scale=2)
    base.update(kw)
    return SpaceConfig(**base)


def test_widths_of_reference_space():
    assert SpaceConfig().widths == (24, 32, 40, 56, 64)
    assert [make_divisible(64 * m / 12) for m in (4, 6, 8, 10, 12)] == [24, 32, 40, 56, 64]
    assert make_divisible(1.0) == 3  # never below 3


@pytest.mark.parametrize("cfg, nodes, cells, ups, leaves", [((4, 2, 1), 55, 35, 20, 15), ((3, 2, 2), 34, 21, 14, 10)])
def test_tree_counts(cfg, nodes, cells, ups, leaves):
    t = Tree(*cfg)
    assert (len(t), t.num_cells, t.num_ups, len(t.complete_leaves)) == (nodes, cells, ups, leaves)


def test_tree_numbering_matches_reference_code():
    t = Tree(4, 2, 1)
    expected = {0: "", 1: "U", 2: "UU", 3: "UUC", 6: "UUCCCC", 7: "UC", 21: "C", 22: "CU", 23: "CUU",
                36: "CC", 42: "CCUCU", 46: "CCC", 53: "CCCCU", 54: "CCCCUU"}
    for index, prefix in expected.items():
        assert t.nodes[index].prefix == prefix
    assert t.blocks(22) == "CCU"  # stem-prefixed path: [cell, cell, up]
    # parents precede children, and each edge instance id is unique
    assert all(n.parent < n.index for n in t.nodes[1:])
    cell_ids = [n.instance for n in t.nodes if n.prefix.endswith("C")]
    assert sorted(cell_ids) == list(range(1, 35))


def test_invalid_space_is_one_clear_error():
    with pytest.raises(TrisrError, match="nf must be"):
        SpaceConfig(nf=20)
    with pytest.raises(TrisrError, match="unknown op"):
        SpaceConfig(ops=("skip", "nope"))
    with pytest.raises(TrisrError, match="scale"):
        SpaceConfig(scale=5)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_architecture_counts(name):
    variant, path, node, ops, widths, params, macs256, macs720 = REFERENCE[name]
    g = Genotype(SpaceConfig(variant=variant), path, ops, widths, node_index=node)
    assert Tree(4, 2, 1).blocks(node) == path
    net = DerivedNet(g)
    assert count_params(net) == params
    assert count_macs(net, (1, 3, 256, 256)) == macs256
    assert count_macs(net, (1, 3, 180, 320)) == macs720


def test_per_op_reference_counts():
    expect = {"skip": (4096, 4096), "conv3x3": (36864, 36864), "residual": (73728, 77824), "dwsblock": (35072, 39168)}
    for name, (derived, supernet) in expect.items():
        assert count_params(create_op(name, 64, 64)) == derived
        assert count_params(create_op(name, 64, 64, conv_shortcut=True)) == supernet
        assert count_macs(create_op(name, 64, 64), (1, 64, 10, 10)) == derived * 100  # MACs = params x H x W


def test_reference_supernet_parameter_count():
    with torch.device("meta"):
        net = Supernet(SpaceConfig())
    assert sum(p.numel() for p in net.weight_parameters()) == 28_409_648
    assert tuple(net.alpha.shape) == (35, 5, 4)
    assert tuple(net.omega.shape) == (35, 4, 5)
    assert tuple(net.gamma.shape) == (55,)


def test_op_registry_is_open():
    assert OPS.names()[:4] == ["skip", "conv3x3", "residual", "dwsblock"]
    with pytest.raises(KeyError, match="known"):
        OPS.get("dil5x5")


def test_genotype_json_round_trip_and_refusals(tmp_path):
    variant, path, node, ops, widths, *_ = REFERENCE["B1"]
    g = Genotype(SpaceConfig(), path, ops, widths, node_index=node)
    (tmp_path / "g.json").write_text(g.to_json())
    back = Genotype.load(tmp_path / "g.json")
    assert back.to_dict() == g.to_dict() and back.digest() == g.digest()
    bad = g.to_dict() | {"schema_version": 99}
    with pytest.raises(TrisrError, match="schema version"):
        Genotype.from_dict(bad)
    with pytest.raises(TrisrError, match="ops row"):
        Genotype(SpaceConfig(), path, [[9, 0, 0, 0, 0]] * 3, widths)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(TrisrError, match="not valid JSON"):
        Genotype.load(tmp_path / "broken.json")


def _random_supernet(space, seed=0):
    torch.manual_seed(seed)
    net = Supernet(space).double()
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    return net


@pytest.mark.parametrize("seed", range(4))
def test_one_hot_supernet_equals_inherited_derived_network(seed):
    """method.md §10.4: at one-hot weights the supernet computes exactly the inherited derived network
    (faithful 1x1 shortcuts kept, so every cell qualifies)."""
    space = tiny_space(derived_shortcut="conv")
    net = _random_supernet(space, seed)
    g = net.derive()
    derived = inherit(net, g).double()
    x = torch.rand(2, 3, 10, 12, dtype=torch.float64)
    torch.testing.assert_close(net(x, net.one_hot_arch(g)), derived(x), rtol=0, atol=1e-12)


def test_one_hot_equality_with_identity_shortcuts_on_qualifying_cells():
    """Default (identity) shortcuts: restricted to cells whose residual/dwsblock slots change width."""
    space = tiny_space()
    net = _random_supernet(space)
    ids = {name: i for i, name in enumerate(space.ops)}
    # Widths (8, 16) alternate 16 -> 8 -> 16 ... so no residual/dwsblock slot has c_in == c_out.
    ops = [[ids["residual"], ids["dwsblock"], ids["residual"], ids["dwsblock"], ids["conv3x3"]]] * 2
    assert space.widths == (8, 16)
    widths = [[0, 1, 0, 1]] * 2
    for node in range(len(net.tree)):
        n_cells = net.tree.blocks(node).count("C")
        g = Genotype(space, net.tree.blocks(node), ops[:1] * n_cells, widths[:1] * n_cells, node_index=node)
        derived = inherit(net, g).double()
        x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
        torch.testing.assert_close(net(x, net.one_hot_arch(g)), derived(x), rtol=0, atol=1e-12)


# Genotype rows (ops, widths) for a 3-slot cell with widths (8, 16): residual with a narrow output (its
# conv1 width) and dwsblock with a narrow input (its hidden width e*c_in) on the internal edges.
_MASKED_ROWS = [
    (["residual", "dwsblock", "residual"], [0, 0]),
    (["dwsblock", "residual", "dwsblock"], [0, 0]),
    (["dwsblock", "residual", "conv3x3"], [0, 1]),
]


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("width", ["sparsestmax", "softmax", "sparsemax"])
def test_one_hot_masked_supernet_equals_inherited_derived_network(width, dtype, atol):
    """Masked width relaxation: at one-hot width distributions the full-width masked supernet computes
    exactly the inherited derived network, internal widths (residual conv1, dwsblock hidden) included."""
    space = tiny_space(ops_per_cell=3, derived_shortcut="conv")
    assert space.widths == (8, 16)
    torch.manual_seed(0)
    net = Supernet(space, RelaxConfig(width=width)).to(dtype)
    ids = {name: i for i, name in enumerate(space.ops)}
    node = max(range(len(net.tree)), key=lambda n: net.tree.blocks(n).count("C"))
    n_cells = net.tree.blocks(node).count("C")
    rows = [_MASKED_ROWS[i % len(_MASKED_ROWS)] for i in range(n_cells)]
    g = Genotype(space, net.tree.blocks(node), [[ids[o] for o in ops] for ops, _ in rows],
                 [w for _, w in rows], node_index=node)
    one_hot = net.one_hot_arch(g)
    # Widths through the relaxation itself: rows frozen to the genotype's widths come out one-hot, masked.
    net.omega_frozen.copy_(one_hot.widths.argmax(-1))
    widths, masked = net.width_distribution("sample", 0.5)
    assert masked and torch.equal(widths, one_hot.widths)
    arch = ArchWeights(one_hot.alpha, one_hot.gamma, widths, masked=True)
    derived = inherit(net, g).to(dtype)
    x = torch.rand(2, 3, 10, 12, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch), derived(x), rtol=0, atol=atol)


def test_inheritance_maps_every_tensor_and_refuses_other_spaces():
    net = _random_supernet(tiny_space())
    g = net.derive()
    mapping = source_names(net, g)
    assert set(mapping) == set(DerivedNet(g).state_dict())
    supernet_names = set(net.state_dict())
    assert all(src in supernet_names for src in mapping.values())
    other = Genotype(tiny_space(nf=24), g.path, g.ops, g.widths, node_index=g.node_index)
    with pytest.raises(TrisrError, match="different search space"):
        inherit(net, other)


def test_zero_weight_candidates_and_subtrees_are_skipped_exactly():
    """A candidate or subtree with weight exactly 0 is skipped; the output equals the full computation."""
    space = tiny_space()
    net = _random_supernet(space)
    arch = net.arch_weights(0.0, "max")
    alpha = torch.softmax(torch.randn_like(arch.alpha), -1)
    alpha[:, :, 0] = 0.0
    alpha = alpha / alpha.sum(-1, keepdim=True)
    gamma = torch.zeros_like(arch.gamma)
    gamma[0], gamma[3] = 0.5, 0.5
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    y_skip = net(x, ArchWeights(alpha, gamma, arch.widths))
    # Reference: explicit weighted sum over nodes computed by prefix networks.
    h0 = net.head(x)
    plan = lambda c: net._cell_plan(arch.widths[c], arch.widths[c].argmax(-1).tolist(), False)  # noqa: E731
    live = (alpha != 0).tolist()
    h = net.cells[0](h0, alpha[0], live[0], *plan(0))
    feats = {0: h}
    for node in net.tree.nodes[1:]:
        p = feats[node.parent]
        feats[node.index] = (
            net.cells[node.instance](p, alpha[node.instance], live[node.instance], *plan(node.instance))
            if node.prefix.endswith("C")
            else net.ups[node.instance](p)
        )
    y_ref = net.tail(0.5 * feats[0] + 0.5 * feats[3], x)
    torch.testing.assert_close(y_skip, y_ref, rtol=0, atol=1e-12)


def test_arch_gradients_reach_all_levels():
    net = Supernet(tiny_space(), RelaxConfig())
    arch = net.arch_weights(0.3, "sample")
    y = net(torch.rand(1, 3, 8, 8), arch)
    y.mean().backward()
    for p in net.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("width", ["gumbel", "sparsestmax", "softmax"])
def test_width_relaxations_run(width):
    net = Supernet(tiny_space(), RelaxConfig(width=width))
    arch = net.arch_weights(0.5, "sample")
    assert arch.masked == (width != "gumbel")
    out = net(torch.rand(1, 3, 8, 8), arch)
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()


def test_freezing_records_one_hot_rows():
    net = Supernet(tiny_space())
    arch = net.arch_weights(1.0, "sample")  # r = 1: every sparsestmax row is one-hot
    counts = net.freeze_one_hot(arch)
    assert counts["alpha"] == net.alpha.shape[0] * net.alpha.shape[1] and counts["gamma"] == 1
    choice = net.op_choice().clone()
    before = net.derive()
    with torch.no_grad():
        net.alpha.normal_()  # logits drifting after freezing do not change the frozen choice
    assert torch.equal(net.op_choice(), choice)
    after = net.derive()
    assert after.digest() == before.digest()  # nor the derived network
    back = Genotype.from_dict(json.loads(json.dumps(after.to_dict())))
    assert back.digest() == after.digest() and back.path == after.path and back.ops == after.ops

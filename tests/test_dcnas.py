"""``--strategy dcnas``: the densely connected network level (issue 11). The dense genotype round-trips (old
chain files still load unchanged), builds, counts exactly, is priced with a measured ``add`` entry (never 0 ms
when the table lacks it), equals the supernet at one-hot weights, exports to ONNX/OpenVINO matching PyTorch,
and the strategy meets a binding budget end to end."""

import itertools
import json

import pytest
import torch

from trisr.errors import CostTableError, TrisrError
from trisr.export.exporters import ExportOptions
from trisr.export.formats import get_format
from trisr.export.pipeline import VERIFIED, ExportRequest, export_run
from trisr.export.shapes import InputSpec
from trisr.export.verify import TorchReference
from trisr.data.pairs import load_pairs
from trisr.profile.profiler import LinkAdd, entry_modules
from trisr.rundir import load_model, load_supernet, save_model
from trisr.search.derive import fit_to_budget
from trisr.search.engine import SearchRun
from trisr.search.strategies import get_strategy
from trisr.space.config import SpaceConfig
from trisr.space.cost import ADD_KEY, CostModel, analytic_cost_table
from trisr.space.count import count_macs, count_params
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.inherit import inherit
from trisr.space.supernet import RelaxConfig, Supernet

from helpers import TINY_SPACE, tiny_config

#: nf 8, 1 stem + 2 searchable cells + 1 up block, 2 slots per cell: the chain C C C U, five outputs.
SPACE = SpaceConfig(nf=8, num_cell=3, num_up=1, num_cell_path_search=2, ops_per_cell=2, scale=2, derived_shortcut="conv")
DENSE = Genotype(SPACE, "CCCU", [[1, 1], [1, 2], [3, 1]], [[0], [1], [0]], node_index=3, links=[-1, 0, 1, 2])


def _chain(g: Genotype) -> Genotype:
    return Genotype(g.space, g.path, g.ops, g.widths, g.node_index)


# -- genotype schema ---------------------------------------------------------------------------------------------


def test_dense_genotype_round_trips_as_schema_2_and_chain_files_stay_version_1():
    d = DENSE.to_dict()
    assert d["schema_version"] == 2 and d["links"] == [-1, 0, 1, 2]
    assert Genotype.from_dict(json.loads(json.dumps(d))) == DENSE
    chain = _chain(DENSE).to_dict()
    assert chain["schema_version"] == 1 and "links" not in chain  # byte-for-byte what older trisr wrote
    assert Genotype.from_dict(chain).links is None
    assert _chain(DENSE).digest() != DENSE.digest()


def test_bad_links_and_mismatched_versions_are_refused():
    with pytest.raises(TrisrError, match="block 2 may link"):
        Genotype(SPACE, "CCCU", DENSE.ops, DENSE.widths, 3, links=[-1, 1, 1, 2])  # block 2 cannot read itself
    with pytest.raises(TrisrError, match="one link per block"):
        Genotype(SPACE, "CCCU", DENSE.ops, DENSE.widths, 3, links=[-1, 0])
    v1_with_links = {**DENSE.to_dict(), "schema_version": 1}
    with pytest.raises(TrisrError, match="schema version 1 has no 'links'"):
        Genotype.from_dict(v1_with_links)
    with pytest.raises(TrisrError, match="schema version 3 is not supported"):
        Genotype.from_dict({**DENSE.to_dict(), "schema_version": 3})


# -- derived network, counting, pricing -------------------------------------------------------------------------


def test_dense_network_adds_the_linked_outputs():
    torch.manual_seed(0)
    net = DerivedNet(DENSE).eval()
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        outs = [net.head(x)]
        for k, block in enumerate(net.blocks):
            j = DENSE.links[k]
            outs.append(block(outs[-1] + (outs[j] if j >= 0 else 0)))
        expected = net.tail(outs[-1], x)
        assert torch.equal(net(x), expected)
        chain = DerivedNet(_chain(DENSE))
        chain.load_state_dict(net.state_dict())
        assert (chain.eval()(x) - expected).abs().max() > 1e-4  # the links change the function


def test_dense_network_params_and_macs_match_a_hand_count():
    """nf 8 (internal widths 3 or 8) at 10x10 LR, x2. Cell convs have no bias, head/up/tail convs have one, the
    depthwise conv has none, and every layer runs at LR, so MACs = parameters x 100 (thop convention: an add costs
    no MAC and no parameter)."""
    assert SPACE.widths == (3, 8)
    params = [
        3 * 8 * 9 + 8,  # head
        8 * 3 * 9, 3 * 8 * 9,  # cell 0: conv3x3 8->3, conv3x3 3->8
        8 * 8 * 9, 8 * 8 * 9 + 8 * 8 * 9 + 8 * 8,  # cell 1: conv3x3 8->8, residual 8->8 (conv1, conv2, 1x1 shortcut)
        8 * 32 + 32 * 9 + 32 * 3 + 8 * 3, 3 * 8 * 9,  # cell 2: dwsblock 8->3 (expand, depthwise, project, shortcut), conv3x3
        8 * 8 * 9 + 8,  # up block
        8 * 12 * 9 + 12,  # tail conv nf -> 3 * 2^2
    ]
    net = DerivedNet(DENSE)
    assert count_params(net) == sum(params) == count_params(DerivedNet(_chain(DENSE)))
    assert count_macs(net, (1, 3, 10, 10)) == 100 * sum(params)
    table = analytic_cost_table(SPACE, "macs_g", (10, 10))
    assert table.entries[ADD_KEY] == 0.0
    model = CostModel(table, SPACE, Supernet(SPACE, network="dense").tree)
    assert model.genotype_cost(DENSE) == pytest.approx(100 * sum(params) / 1e9, rel=1e-12)


def _latency_like(add_ms: float | None):
    """MACs standing in for milliseconds, with a priced add (or none at all)."""
    table = analytic_cost_table(SPACE, "macs_g", (16, 16))
    table.metric = "latency_ms"
    if add_ms is None:
        del table.entries[ADD_KEY]
    else:
        table.entries[ADD_KEY] = add_ms
    return table


def test_a_table_without_the_add_entry_refuses_dense_networks_and_never_prices_it_at_zero():
    table = _latency_like(None)
    dense_tree = Supernet(SPACE, network="dense").tree
    with pytest.raises(CostTableError, match="no 'add' entry, which dense networks"):
        CostModel(table, SPACE, dense_tree)
    tree_model = CostModel(table, SPACE, Supernet(SPACE).tree)  # the tree space still works with it
    tree_model.genotype_cost(_chain(DENSE))
    with pytest.raises(CostTableError, match="'add'"):
        tree_model.genotype_cost(DENSE)


def test_each_link_costs_one_add_and_the_expectation_agrees_at_one_hot_weights():
    add = 0.001
    table = _latency_like(add)
    net = Supernet(SPACE, network="dense")
    model = CostModel(table, SPACE, net.tree)
    base = model.genotype_cost(_chain(DENSE))
    assert model.genotype_cost(DENSE) == pytest.approx(base + 3 * add)
    aw = net.one_hot_arch(DENSE)
    expected = model.expected(aw.alpha, aw.widths, aw.gamma, aw.links)
    assert float(expected) == pytest.approx(model.genotype_cost(DENSE), rel=1e-12)


def test_profiling_measures_the_add_entry_on_two_distinct_full_size_tensors():
    mods = entry_modules(SPACE, (16, 16))
    single, c_in, chain = mods[ADD_KEY]
    assert isinstance(single, LinkAdd) and c_in == SPACE.nf and len(chain) == 3
    assert single.other.shape == (1, SPACE.nf, 16, 16)  # full size, not a broadcast scalar


# -- supernet ----------------------------------------------------------------------------------------------------


def _every_dense_genotype(net: Supernet):
    for node in range(1, len(net.tree)):
        path = net.tree.path(node)
        options = [range(-1, net.tree.num_stem + k) for k in range(len(path))]
        for links in itertools.product(*options):
            cols = net.link_choice().clone()
            for n, j in zip(path, links):
                cols[n.index] = j + 1
            yield net.derive(node=node, links=cols)


def test_supernet_at_one_hot_weights_is_every_inherited_dense_network():
    torch.manual_seed(0)
    net = Supernet(SPACE, RelaxConfig(op="softmax", node="softmax"), network="dense").eval()
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    x = torch.rand(2, 3, 12, 12)
    seen = 0
    for g in _every_dense_genotype(net):
        with torch.no_grad():
            assert torch.equal(net(x, net.one_hot_arch(g)), inherit(net, g)(x)), g.links
        seen += 1
    assert seen == 1 * 2 + 2 * 3 + 2 * 3 * 4  # nodes C, CC, CCU: 2, 6 and 24 link patterns


def test_path_sampling_draws_one_connection_per_block_and_trains_its_logits():
    torch.manual_seed(0)
    net = Supernet(SPACE, RelaxConfig(op="softmax", node="softmax"), network="dense")
    draws = torch.stack([net.link_weights().detach() for _ in range(400)])
    assert torch.equal(draws.sum(-1), torch.ones_like(draws.sum(-1)))  # exactly one column per row
    assert not draws[:, :, 1:][~net.beta_valid[None, :, 1:].expand_as(draws[:, :, 1:])].any()  # never a later output
    share = draws.mean(0)[3, :4]  # the last block: none, head, stem, cell 1 about equally often at the start
    assert ((share - 0.25).abs() < 0.08).all(), share
    aw = net.arch_weights(0.5)
    net(torch.rand(1, 3, 12, 12), aw).mean().backward()
    assert net.beta.grad is not None and net.beta.grad[~net.beta_valid].abs().sum() == 0


def test_fit_to_budget_drops_links_when_they_are_what_the_budget_cannot_afford():
    table = _latency_like(0.01)  # a dear add: three links cost more than any op change saves
    net = Supernet(SPACE, network="dense")
    with torch.no_grad():
        for p, best in ((net.alpha, 1), (net.omega, -1), (net.gamma, 3)):  # firm preferences elsewhere
            p.zero_()
            p[..., best] = 10.0
        net.beta.zero_()
        net.beta[1:, 1:] = 1.0  # every block prefers a link
    model = CostModel(table, SPACE, net.tree)
    top = net.derive()
    assert top.num_links == 3
    budget = model.genotype_cost(top) - 0.015
    g, steps = fit_to_budget(net, model, budget)
    assert model.genotype_cost(g) <= budget and g.num_links < 3
    assert steps and all(" link " in s and s.endswith("->-1") for s in steps), steps  # links dropped, nothing else


# -- export ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_dense_network_exports_and_matches_torch(tmp_path, fmt):
    torch.manual_seed(0)
    run = tmp_path / "run"
    save_model(run, DerivedNet(DENSE))
    model = load_model(run)
    assert model.arch.links == DENSE.links
    req = ExportRequest(run, get_format(fmt), "fp32", InputSpec((64, 64)), tmp_path / "export", ExportOptions())
    result = export_run(req, model, TorchReference(model, load_pairs(None, 2, "val"), 2))
    assert result.status == VERIFIED, result.reason
    assert result.verification.max_abs <= 1e-4


# -- the strategy end to end ----------------------------------------------------------------------------------------


def _dcnas_config(**kw):
    base = tiny_config(**kw)
    return base.replace(**get_strategy("dcnas").config_changes(base))


def test_dcnas_meets_a_binding_budget_end_to_end_and_keeps_a_dense_supernet(tmp_path):
    probe = SearchRun(_dcnas_config(), tmp_path / "probe")
    assert probe.supernet.dense and [n.prefix for n in probe.supernet.tree.nodes] == ["", "C", "CU"]
    lo = probe.cost_model.min_cost()
    hi = probe.cost_model.genotype_cost(probe.supernet.derive(node=len(probe.supernet.tree) - 1))
    budget = lo + 0.5 * (hi - lo)
    cfg = _dcnas_config(budget_metric="macs_g", budget=budget)
    out = tmp_path / "dcnas"
    summary = SearchRun(cfg, out).run()
    assert summary["cost"]["within_budget"] is True and summary["cost"]["derived"] <= budget
    assert "link_min" in summary["derivation"]["margins"]
    g = Genotype.load(out / "genotype.json")
    assert g.links is not None and g.schema_version == 2
    assert summary["genotype"]["links"] == g.links
    net = load_supernet(out)
    assert net.dense
    torch.manual_seed(cfg.seed)
    assert not torch.equal(net.beta.detach(), Supernet(TINY_SPACE, cfg.relax, network="dense").beta.detach())  # it moved
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 3, 12, 12), net.one_hot_arch(g)).shape == (1, 3, 24, 24)
    again = SearchRun(cfg, tmp_path / "again").run()
    assert again["genotype"]["digest"] == summary["genotype"]["digest"]  # deterministic given the seed


@pytest.mark.parametrize("phase, at", [("warm-up", 4), ("search", 4)])  # checkpoints every 2 steps
def test_a_killed_dcnas_run_resumes_to_the_same_network_and_weights(tmp_path, phase, at):
    """The connection draws, ``beta`` and its optimiser state survive a kill: the resumed run is bit-identical."""
    from safetensors.torch import load_file

    from test_search import Interrupt

    cfg = _dcnas_config()
    whole = SearchRun(cfg, tmp_path / "whole").run()
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        SearchRun(cfg, out, reporter=Interrupt(phase, at)).run()
    resumed = SearchRun(cfg, out, resume=True).run()
    assert resumed["genotype"] == whole["genotype"]
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = load_file(str(tmp_path / "whole" / "supernet.safetensors")), load_file(str(out / "supernet.safetensors"))
    assert torch.equal(sa["beta"], sb["beta"])


def test_inheritance_refuses_a_genotype_of_the_other_network_level():
    tree_net, dense_net = Supernet(SPACE), Supernet(SPACE, network="dense")
    with pytest.raises(TrisrError, match="dense .* cannot take weights from a tree supernet"):
        inherit(tree_net, DENSE)
    with pytest.raises(TrisrError, match="tree genotype cannot take weights from a dense"):
        inherit(dense_net, tree_net.derive(node=1))
    # node indices mean different blocks in the two: tree node 1 is not chain node 1
    tree_g = tree_net.derive(node=1)
    wrong = Genotype(SPACE, tree_g.path, tree_g.ops, tree_g.widths, 2, links=[-1] * len(tree_g.path))
    with pytest.raises(TrisrError, match="is not node 2"):
        inherit(dense_net, wrong)


def test_schema_2_without_links_and_dense_variant_a_are_refused():
    with pytest.raises(TrisrError, match="schema version 2 needs 'links'"):
        Genotype.from_dict({**DENSE.to_dict(), "links": None})
    space_a = SpaceConfig(nf=8, num_cell=3, num_up=1, num_cell_path_search=2, ops_per_cell=2, scale=2, variant="A")
    with pytest.raises(TrisrError, match="dense links need variant B"):
        Genotype(space_a, "CCCU", DENSE.ops, DENSE.widths, 3, links=[-1, 0, 1, 2])


def test_profiling_the_add_entry_leaves_the_op_entries_initialisation_alone():
    """The add entry's constant comes from its own generator: replaying the global stream without it gives the
    op entries the very weights they had before the entry existed."""
    from trisr.space.ops import Head, Tail, TailEntry, UpBlock, create_op

    mods = entry_modules(SPACE, (16, 16))
    torch.manual_seed(0)
    Head(SPACE.nf), UpBlock(SPACE.nf, "B"), [UpBlock(SPACE.nf, "B") for _ in range(3)]
    TailEntry(Tail(SPACE.nf, SPACE.scale, SPACE.variant, SPACE.skip, SPACE.output))
    name, w = SPACE.ops[0], SPACE.widths[0]
    build = lambda: create_op(name, w, w, conv_shortcut=True, dws_expansion=SPACE.dws_expansion)  # noqa: E731
    [build() for _ in range(3)]  # the three-copy chain is built first
    replay = build()
    got = mods[f"op:{name}:{w}:{w}"][0]
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), replay.state_dict().values()))

"""Cost tables, expected cost, order penalty, budget controller and derivation into a budget."""

import itertools

import pytest
import torch

from trisr.errors import BudgetError, CostTableError
from trisr.search.budget import BudgetController
from trisr.search.derive import fit_to_budget
from trisr.search.engine import order_penalty, order_step
from trisr.space.config import SpaceConfig
from trisr.space.cost import CostModel, CostTable, analytic_cost_table, op_key
from trisr.space.count import count_macs, count_params
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.supernet import Supernet
from trisr.space.tree import Tree


def small_space(**kw):
    base = dict(nf=16, num_cell=3, num_up=1, num_cell_path_search=2, ops_per_cell=3, scale=2)
    base.update(kw)
    return SpaceConfig(**base)


@pytest.fixture(scope="module")
def setup():
    space = small_space()
    torch.manual_seed(0)
    net = Supernet(space)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    table = analytic_cost_table(space, "macs_g", (32, 40))
    return space, net, CostModel(table, space, net.tree)


@pytest.mark.parametrize("metric", ["macs_g", "params_k"])
def test_table_sum_equals_counted_network(metric):
    """Analytic entries sum to exactly what counting the derived module gives."""
    space = small_space()
    net = Supernet(space)
    with torch.no_grad():
        net.alpha.normal_(), net.omega.normal_(), net.gamma.normal_()
    model = CostModel(analytic_cost_table(space, metric, (24, 20)), space, net.tree)
    g = net.derive()
    derived = DerivedNet(g)
    counted = count_macs(derived, (1, 3, 24, 20)) / 1e9 if metric == "macs_g" else count_params(derived) / 1e3
    assert model.genotype_cost(g) == pytest.approx(counted, rel=1e-12)


def test_expected_cost_at_one_hot_equals_table_sum(setup):
    space, net, model = setup
    for node in range(len(net.tree)):
        g = net.derive(node=node)
        a = net.one_hot_arch(g)
        assert float(model.expected(a.alpha, a.widths, a.gamma)) == pytest.approx(model.genotype_cost(g), rel=1e-12)


def test_expected_cost_is_linear_in_node_weights(setup):
    space, net, model = setup
    with torch.no_grad():
        arch = net.arch_weights(0.3, "max")
    g1 = torch.softmax(torch.randn(len(net.tree)), 0).double()
    g2 = torch.softmax(torch.randn(len(net.tree)), 0).double()
    f = lambda g: model.expected(arch.alpha, arch.widths, g)  # noqa: E731
    assert float(f(0.3 * g1 + 0.7 * g2)) == pytest.approx(float(0.3 * f(g1) + 0.7 * f(g2)), rel=1e-12)


def test_expected_cost_gradients_reach_ops_widths_and_nodes(setup):
    space, net, model = setup
    net.zero_grad()
    arch = net.arch_weights(0.2, "sample")
    model.expected(arch.alpha, arch.widths, arch.gamma).backward()
    for p in net.arch_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_missing_entry_is_an_error_never_zero(setup):
    space, net, model = setup
    entries = dict(model.table.entries)
    del entries[op_key("residual", 8, 16)]
    broken = CostTable(model.table.metric, model.table.space_fingerprint, model.table.resolution, entries)
    with pytest.raises(CostTableError, match="no entry 'op:residual:8:16'"):
        CostModel(broken, space, net.tree)
    with pytest.raises(CostTableError, match="no entry"):
        broken.get("up:7")


def test_table_for_another_space_is_refused(setup):
    space, net, model = setup
    other = analytic_cost_table(small_space(nf=24), "macs_g", (32, 40))
    with pytest.raises(CostTableError, match="covers search space"):
        CostModel(other, space, net.tree)


def test_table_json_round_trip(tmp_path, setup):
    _, _, model = setup
    model.table.save(tmp_path / "t.json")
    back = CostTable.load(tmp_path / "t.json")
    assert back.to_dict() == model.table.to_dict()
    (tmp_path / "bad.json").write_text('{"schema_version": 1, "metric": "furlongs"}')
    with pytest.raises(CostTableError, match="metric"):
        CostTable.load(tmp_path / "bad.json")


def test_min_cost_is_the_cheapest_architecture_by_brute_force():
    space = small_space(ops_per_cell=2)
    tree = Tree(space.num_cell_path_search, space.num_up, space.num_stem)
    model = CostModel(analytic_cost_table(space, "macs_g", (16, 16)), space, tree)
    best = float("inf")
    for ops in itertools.product(range(space.num_ops), repeat=2):
        for w in range(space.num_widths):
            g = Genotype(space, "C", [list(ops)], [[w]], node_index=0)
            best = min(best, model.genotype_cost(g))
    assert model.min_cost() == pytest.approx(best, rel=1e-12)
    with pytest.raises(BudgetError, match="below the smallest architecture"):
        model.check_budget(0.5 * best)
    model.check_budget(best)


def test_linear_order_penalty_telescopes_and_has_constant_gradient():
    tree = Tree(4, 2, 1)
    gamma = torch.randn(55, requires_grad=True)
    lam = 1e-5
    pen = order_penalty(gamma, tree, "linear", lam)
    # explicit sum over complete root-to-leaf paths of consecutive differences
    explicit = 0.0
    g = gamma.detach()
    for leaf in tree.complete_leaves:
        chain = [0] + [n.index for n in tree.path(leaf)]
        explicit += sum(float(g[b] - g[a]) for a, b in zip(chain, chain[1:]))
    assert float(pen.detach()) == pytest.approx(lam * explicit, rel=1e-5)
    pen.backward()
    leaves = set(tree.complete_leaves)
    assert gamma.grad[0] == pytest.approx(-15 * lam)
    for n in tree.nodes[1:]:
        assert float(gamma.grad[n.index]) == pytest.approx(lam if n.index in leaves else 0.0)


def test_hinge_order_penalty_is_zero_once_sorted():
    tree = Tree(2, 1, 1)
    depth = torch.tensor([float(len(n.prefix)) for n in tree.nodes])
    assert float(order_penalty(-depth, tree, "hinge", 1.0)) == 0.0
    assert float(order_penalty(depth, tree, "hinge", 1.0)) > 0.0
    assert float(order_penalty(depth, tree, "none", 1.0)) == 0.0


def test_decoupled_order_step_scales_with_lambda_and_spares_frozen_rows():
    """The sorting step is a plain gradient step outside Adam (docs/method.md): displacement = lr * lambda,
    so lambda matters (inside Adam a penalty-only logit moves by ~lr whatever lambda is)."""
    tree = Tree(2, 1, 1)
    leaves = tree.complete_leaves
    for lam in (1e-5, 1e-2, 1.0):
        gamma = torch.zeros(len(tree))
        order_step(gamma, tree, "linear", lam, lr=3e-3)
        assert float(gamma[0]) == pytest.approx(3e-3 * lam * len(leaves))
        assert all(float(gamma[i]) == pytest.approx(-3e-3 * lam) for i in leaves)
    gamma = torch.zeros(len(tree))
    order_step(gamma, tree, "linear", 1.0, lr=1.0, frozen=torch.tensor([2]))
    assert torch.equal(gamma, torch.zeros(len(tree)))
    order_step(gamma, tree, "none", 1.0, lr=1.0)
    assert torch.equal(gamma, torch.zeros(len(tree)))


def test_budget_controller_doubles_above_and_halves_below_band():
    c = BudgetController(budget=10.0, band=0.1)
    assert c.update(50.0) == "hold"  # not calibrated yet
    c.calibrate(rec_loss=0.1, expected_cost=20.0, fraction=0.5)
    assert c.weight == pytest.approx(0.0025)
    assert c.update(11.0) == "up" and c.weight == pytest.approx(0.005)
    assert c.update(9.5) == "hold"
    assert c.update(5.0) == "down" and c.weight == pytest.approx(0.0025)
    c2 = BudgetController(budget=None)
    c2.load_state_dict(c.state_dict())
    assert c2.weight == c.weight and c2.budget == 10.0


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_fit_to_budget_shrinks_the_argmax_into_the_budget(setup, fraction):
    space, net, model = setup
    big = net.derive(node=max(range(len(net.tree)), key=lambda v: len(net.tree.nodes[v].prefix)))
    with torch.no_grad():
        net.gamma.zero_()
        net.gamma[big.node_index] = 5.0  # argmax = the deepest node
    top = model.genotype_cost(net.derive())
    budget = model.min_cost() + fraction * (top - model.min_cost())
    g, steps = fit_to_budget(net, model, budget)
    assert model.genotype_cost(g) <= budget and steps
    with pytest.raises(BudgetError):
        fit_to_budget(net, model, 0.5 * model.min_cost())


def test_fit_to_budget_fills_a_small_argmax_into_the_band(setup):
    space, net, model = setup
    with torch.no_grad():
        net.gamma.zero_()
        net.gamma[0] = 5.0  # argmax = the root (stem only)
    small = model.genotype_cost(net.derive())
    deepest = max(range(len(net.tree)), key=lambda v: len(net.tree.nodes[v].prefix))
    top = model.genotype_cost(net.derive(node=deepest))
    budget = small + 0.6 * (top - small)
    g, steps = fit_to_budget(net, model, budget, lower=0.9 * budget)
    assert 0.9 * budget <= model.genotype_cost(g) <= budget
    assert steps and all(s.startswith("fill") for s in steps)
    g2, steps2 = fit_to_budget(net, model, budget)  # without a lower edge nothing changes
    assert steps2 == [] and g2.to_dict() == net.derive().to_dict()


def all_genotypes(space: SpaceConfig):
    """Every architecture of ``space``: each network node of the tree, every op per slot, every width per edge."""
    from trisr.space.sample import space_tree, valid_nodes

    tree = space_tree(space)
    cell_choices = list(itertools.product(
        itertools.product(range(space.num_ops), repeat=space.ops_per_cell),
        itertools.product(range(space.num_widths), repeat=space.edges_per_cell),
    ))
    for v in valid_nodes(space, tree):
        path = tree.blocks(v)
        k = path.count("C")
        for cells in itertools.product(cell_choices, repeat=k):
            yield Genotype(space, path, [list(o) for o, _ in cells], [list(w) for _, w in cells], node_index=v)


@pytest.mark.parametrize("table_kind", ["macs_g", "params_k", "random"])
def test_min_cost_and_cost_ranges_equal_brute_force_over_every_architecture(table_kind):
    """min_cost, cost_range and the per-node ranges (the DP/tree bounds the budgeted sampler relies on) equal
    the minimum and maximum of the table sum over all 3136 architectures of a tiny space."""
    import random

    from trisr.space.sample import cost_range, node_cost_ranges, space_tree

    space = SpaceConfig(nf=8, num_cell=2, num_up=1, num_cell_path_search=1, ops_per_cell=2, scale=2)
    table = analytic_cost_table(space, "macs_g" if table_kind == "random" else table_kind, (16, 16))
    if table_kind == "random":  # costs unrelated to size: the cheapest op/width is not the narrowest one
        rnd = random.Random(0)
        table.entries = {k: rnd.uniform(0.1, 10.0) for k in table.entries}
    model = CostModel(table, space, space_tree(space))
    per_node: dict[int, list[float]] = {}
    n = 0
    for g in all_genotypes(space):
        per_node.setdefault(g.node_index, []).append(model.genotype_cost(g))
        n += 1
    assert n == 3136
    costs = [c for cs in per_node.values() for c in cs]
    assert model.min_cost() == pytest.approx(min(costs), rel=1e-12)
    lo, hi = cost_range(model)
    assert lo == pytest.approx(min(costs), rel=1e-12) and hi == pytest.approx(max(costs), rel=1e-12)
    ranges = node_cost_ranges(model)
    assert set(ranges) == set(per_node)
    for v, cs in per_node.items():
        assert ranges[v][0] == pytest.approx(min(cs), rel=1e-12), v
        assert ranges[v][1] == pytest.approx(max(cs), rel=1e-12), v

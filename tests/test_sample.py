"""Random architectures of the space, unconstrained and inside a predicted-cost band (trisr.space.sample)."""

import collections
import itertools

import numpy as np
import pytest

from trisr.errors import BudgetError
from trisr.space.config import SpaceConfig
from trisr.space.cost import CostModel, CostTable, analytic_cost_table
from trisr.space.genotype import Genotype
from trisr.space.sample import cost_range, node_cost_ranges, sample_genotype, sample_in_band, space_tree

REL = 1e-9  # the documented tolerance on band membership (float summation order)


def tiny_space(**kw):
    base = dict(nf=8, num_cell=3, num_up=1, num_cell_path_search=2, ops_per_cell=3, scale=2)
    base.update(kw)
    return SpaceConfig(**base)


def model_for(space, resolution=(64, 64), metric="macs_g"):
    return CostModel(analytic_cost_table(space, metric, resolution), space, space_tree(space))


@pytest.fixture(scope="module")
def tiny():
    space = tiny_space()
    return space, model_for(space)


def in_band(c, lo, hi):
    tol = REL * max(abs(lo), abs(hi))
    return lo - tol <= c <= hi + tol


def band(model, a, z):
    """The band between fractions a and z of the space's cost range."""
    lo, hi = cost_range(model)
    return lo + a * (hi - lo), lo + z * (hi - lo)


# -- unconstrained ---------------------------------------------------------------------------------------


def test_sample_genotype_uniform_over_nodes_and_valid():
    space = tiny_space()
    tree = space_tree(space)
    rng = np.random.default_rng(0)
    gs = [sample_genotype(space, rng) for _ in range(300)]
    assert {g.node_index for g in gs} == set(range(len(tree)))  # every node, the root included
    for g in gs:
        assert g.path == tree.blocks(g.node_index)
        g.validate()
    counts = collections.Counter(g.node_index for g in gs)
    assert max(counts.values()) < 3 * min(counts.values())
    # Deterministic per seed (a Generator or an int seed).
    assert sample_genotype(space, 5).digest() == sample_genotype(space, np.random.default_rng(5)).digest()
    assert len({sample_genotype(space, s).digest() for s in range(10)}) > 1


def test_sample_genotype_variant_a_keeps_all_up_blocks():
    space = tiny_space(variant="A")
    rng = np.random.default_rng(1)
    for _ in range(50):
        assert sample_genotype(space, rng).path.count("U") == space.num_up


# -- cost ranges -----------------------------------------------------------------------------------------


def test_cost_range_matches_enumeration():
    space = tiny_space(num_cell=1, num_up=0, num_cell_path_search=0, nf=16)
    model = model_for(space)
    costs = [
        model.genotype_cost(Genotype(space, "C", [list(o)], [list(w)]))
        for o in itertools.product(range(space.num_ops), repeat=space.ops_per_cell)
        for w in itertools.product(range(space.num_widths), repeat=space.edges_per_cell)
    ]
    lo, hi = cost_range(model)
    assert lo == pytest.approx(min(costs), rel=1e-12)
    assert hi == pytest.approx(max(costs), rel=1e-12)


def test_cost_range_min_is_cost_model_min(tiny):
    space, model = tiny
    assert cost_range(model)[0] == pytest.approx(model.min_cost(), rel=1e-12)
    ranges = node_cost_ranges(model)
    assert set(ranges) == set(range(len(space_tree(space))))
    assert all(a <= z for a, z in ranges.values())


# -- in a band ---------------------------------------------------------------------------------------------


def test_samples_in_band_valid_distinct_and_spread(tiny):
    space, model = tiny
    lo, hi = band(model, 0.4, 0.6)
    gs = sample_in_band(model, lo, hi, 10, seed=0)
    assert len(gs) == 10
    assert len({g.digest() for g in gs}) == 10
    for g in gs:
        g.validate()
        assert g.space == space
        assert in_band(model.genotype_cost(g), lo, hi)
    assert len({g.path for g in gs}) > 1
    # Random within the band, not piled up at one edge of it.
    costs = [model.genotype_cost(g) for g in gs]
    assert max(costs) - min(costs) > 0.2 * (hi - lo)


def test_deterministic_per_seed_and_different_across_seeds(tiny):
    _, model = tiny
    lo, hi = band(model, 0.3, 0.5)
    a = [g.digest() for g in sample_in_band(model, lo, hi, 6, seed=1)]
    b = [g.digest() for g in sample_in_band(model, lo, hi, 6, seed=1)]
    c = [g.digest() for g in sample_in_band(model, lo, hi, 6, seed=2)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("frac", [(0.0, 0.03), (0.97, 1.0)], ids=["low", "high"])
def test_extreme_bands_are_reachable(tiny, frac):
    _, model = tiny
    lo, hi = band(model, *frac)
    gs = sample_in_band(model, lo, hi, 3, seed=0)
    assert len({g.digest() for g in gs}) == 3
    assert all(in_band(model.genotype_cost(g), lo, hi) for g in gs)


def test_exact_min_and_max_cost_are_reachable(tiny):
    _, model = tiny
    lo, hi = cost_range(model)
    (cheap,) = sample_in_band(model, lo, lo, 1, seed=0)
    (dear,) = sample_in_band(model, hi, hi, 1, seed=0)
    assert model.genotype_cost(cheap) == pytest.approx(lo, rel=1e-12)
    assert model.genotype_cost(dear) == pytest.approx(hi, rel=1e-12)
    assert cheap.path == "C"  # the stem-only network


@pytest.mark.parametrize("where", ["below", "above"])
def test_impossible_band_raises(tiny, where):
    _, model = tiny
    lo, hi = cost_range(model)
    bad = (0.1 * lo, 0.5 * lo) if where == "below" else (1.5 * hi, 2 * hi)
    with pytest.raises(BudgetError, match="the space spans") as exc:
        sample_in_band(model, *bad, 1, seed=0)
    assert f"{lo:.4g}" in str(exc.value) and f"{hi:.4g}" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_too_few_distinct_raises_with_count(tiny):
    _, model = tiny
    _, hi = cost_range(model)
    with pytest.raises(BudgetError, match=r"found only \d+ of 500 distinct"):
        sample_in_band(model, hi, hi, 500, seed=0, max_tries=300)


def test_any_cost_table_works():
    """A measured-style latency table (arbitrary entries) plugs in like an analytic one."""
    space = tiny_space()
    analytic = analytic_cost_table(space, "macs_g", (32, 32))
    rng = np.random.default_rng(3)
    table = CostTable(
        metric="latency_ms",
        space_fingerprint=space.fingerprint(),
        resolution=(32, 32),
        entries={k: float(rng.uniform(0.05, 2.0)) for k in analytic.entries},
        descriptor={"kind": "measured"},
    )
    model = CostModel(table, space, space_tree(space))
    lo, hi = band(model, 0.2, 0.4)
    gs = sample_in_band(model, lo, hi, 5, seed=0)
    assert all(in_band(model.genotype_cost(g), lo, hi) for g in gs)


def test_uniform_within_a_node_narrow_band():
    """One-node space, enumerated: draws are uniform over the in-band architectures (chi-square), even
    for a narrow mid band whose members are not connected by single changes."""
    space = tiny_space(num_cell=1, num_up=0, num_cell_path_search=0, nf=16)
    model = model_for(space)
    allg = [
        Genotype(space, "C", [list(o)], [list(w)], node_index=0)
        for o in itertools.product(range(space.num_ops), repeat=space.ops_per_cell)
        for w in itertools.product(range(space.num_widths), repeat=space.edges_per_cell)
    ]
    costs = np.array([model.genotype_cost(g) for g in allg])
    lo, hi = np.quantile(costs, [0.45, 0.55])
    members = [g.digest() for g, c in zip(allg, costs) if in_band(c, lo, hi)]
    n = 1200
    counts = collections.Counter(sample_in_band(model, lo, hi, 1, seed=s)[0].digest() for s in range(n))
    assert set(counts) == set(members)
    obs = np.array([counts[d] for d in members])
    exp = n / len(members)
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    dof = len(members) - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)


def test_quick_preset_band():
    from trisr.search.config import preset

    space = preset("quick").space
    model = model_for(space, (256, 256))
    gs = sample_in_band(model, 1.8, 2.0, 5, seed=0)
    assert len({g.digest() for g in gs}) == 5
    for g in gs:
        g.validate()
        assert 1.8 <= model.genotype_cost(g) <= 2.0

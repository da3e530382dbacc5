"""The strategies of ``trisr search --strategy`` (trisr/search/strategies.py): HiNAS and NetAdaptV2 end to end on a
tiny space with a binding budget, their mechanisms in isolation, and the table's refusals."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from trisr.errors import TrisrError
from trisr.losses import l1_log_ssim, ssim
from trisr.search import netadapt
from trisr.search.engine import SearchRun
from trisr.search.hinas import depth_groups
from trisr.search.strategies import PLANNED_STRATEGIES, STRATEGY_TABLE, get_strategy
from trisr.space.sample import space_tree

from helpers import TINY_SPACE, tiny_config


def _binding_budget(tmp_path) -> float:
    probe = SearchRun(tiny_config(), tmp_path / "probe")
    lo = probe.cost_model.min_cost()
    hi = probe.cost_model.genotype_cost(probe.supernet.derive(node=len(probe.supernet.tree) - 1))
    return lo + 0.3 * (hi - lo)


def _config(name: str, **kw):
    base = tiny_config(**kw)
    return base.replace(**get_strategy(name).config_changes(base))


# -- the table -----------------------------------------------------------------------------------------------


def test_every_strategy_row_names_a_search_phase_the_engine_runs():
    run_phases = {"differentiable", "random", "netadapt"}
    assert {s.phase for s in STRATEGY_TABLE} <= run_phases
    assert STRATEGY_TABLE[0].name == "trilevel"  # the default comes first in --help


def test_planned_and_unknown_strategies_are_refused_in_one_line():
    for name in PLANNED_STRATEGIES:
        with pytest.raises(TrisrError, match=f"--strategy {name} is not built yet"):
            get_strategy(name)
    with pytest.raises(TrisrError, match="unknown --strategy 'evolution'"):
        get_strategy("evolution")


def test_netadapt_without_a_budget_is_refused():
    with pytest.raises(TrisrError, match="strategy netadapt needs a budget"):
        _config("netadapt")


def test_cli_strategy_defaults_yield_to_explicit_flags(tmp_path):
    """--strategy hinas brings softmax relaxations and no sorting term; an explicit --relax-op still wins."""
    from typer.testing import CliRunner

    from trisr.cli import app

    out = tmp_path / "h"
    args = ["search", "--preset", "quick", "--strategy", "hinas", "--relax-op", "sparsemax", "--search-loss", "l1+logssim",
            "--warmup-steps", "0", "--search-steps", "1", "--finetune-steps", "0", "--out", str(out), "--device", "cpu",
            "--data", str(tmp_path / "missing")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output  # no such data folder, one line
    cfg = json.loads((out / "config.json").read_text())  # written before the data is read
    assert cfg["strategy"] == "hinas" and cfg["search_loss"] == "l1+logssim" and cfg["order_penalty"] == "none"
    assert (cfg["relax"]["op"], cfg["relax"]["node"], cfg["relax"]["width"]) == ("sparsemax", "softmax", "softmax")


# -- HiNAS -------------------------------------------------------------------------------------------------------


def test_depth_groups_of_the_tiny_and_quick_trees():
    tiny = space_tree(TINY_SPACE)  # 1 stem cell, 1 searchable cell, 1 up: C edges at "C" and "UC"
    assert depth_groups(tiny) == [[0], sorted(n.instance for n in tiny.nodes if n.prefix in ("C", "UC"))]
    from trisr.search.config import preset

    quick = space_tree(preset("quick").space)
    groups = depth_groups(quick)
    by_prefix = {n.instance: n.prefix for n in quick.nodes if n.prefix.endswith("C")}
    assert [sorted(by_prefix[c] for c in g) for g in groups[1:]] == [["C", "UC"], ["CC", "CUC", "UCC"]]
    assert sorted(c for g in groups for c in g) == list(range(quick.num_cells))


def test_hinas_meets_a_binding_budget_with_cells_shared_by_depth(tmp_path):
    budget = _binding_budget(tmp_path)
    cfg = _config("hinas", budget_metric="macs_g", budget=budget, search_loss="l1+logssim")
    summary = SearchRun(cfg, tmp_path / "hinas").run()
    assert summary["cost"]["within_budget"] is True
    saved = json.loads((tmp_path / "hinas" / "config.json").read_text())
    assert saved["strategy"] == "hinas" and saved["relax"]["op"] == "softmax" and saved["order_penalty"] == "none"
    sup = load_file(tmp_path / "hinas" / "supernet.safetensors")
    start = SearchRun(tiny_config(), tmp_path / "init").supernet  # same seed: the untied initial logits
    for g in depth_groups(space_tree(TINY_SPACE)):
        for key in ("alpha", "omega"):
            rows = sup[key][g]
            assert torch.equal(rows, rows[:1].expand_as(rows)), (key, g)  # tied through the whole search
    assert not torch.equal(sup["alpha"], start.alpha.detach())  # and the logits did move


# -- NetAdaptV2 --------------------------------------------------------------------------------------------------


def _oracle_problem(importance):
    """Layers of width 0..4 costing 1 per channel; the loss grows with the channels a layer loses, weighted by its
    importance. Under a budget the optimum empties the least important layers first."""
    def cost(a):
        return float(sum(a))

    def score(archs):
        return [sum(imp * (4 - w) for imp, w in zip(importance, a)) for a in archs]

    def coordinates(a):
        return [i for i, w in enumerate(a) if w > 0]

    def shrink(a, i):
        return None if a[i] == 0 else a[:i] + (a[i] - 1,) + a[i + 1:]

    return cost, score, coordinates, shrink


def test_coordinate_descent_finds_the_known_optimum_of_a_synthetic_oracle():
    cost, score, coordinates, shrink = _oracle_problem([8, 4, 2, 1])
    arch, history = netadapt.coordinate_descent((4, 4, 4, 4), cost, score, coordinates, shrink, 10.0,
                                                np.random.default_rng(0), step=1.0, candidates=30, layers=1)
    assert arch == (4, 4, 2, 0)  # the unique optimum: 6 channels taken from the two least important layers
    assert [h["cost"] for h in history] == [15, 14, 13, 12, 11, 10]


def test_coordinate_descent_shrinks_several_layers_per_candidate_and_stops_at_the_target():
    cost, score, coordinates, shrink = _oracle_problem([8, 4, 2, 1])
    arch, history = netadapt.coordinate_descent((4, 4, 4, 4), cost, score, coordinates, shrink, 9.5,
                                                np.random.default_rng(1), step=2.0, candidates=30, layers=2)
    assert all(len(h["coordinates"]) == 2 for h in history)
    assert 9.5 - 2.0 < cost(arch) <= 9.5 and cost(arch) == 9.0
    assert arch[0] == 4 and arch[1] == 4  # the important layers are never touched
    assert history[-1]["score"] == min(history[-1]["scores"])


def test_coordinate_descent_says_when_nothing_can_shrink():
    from trisr.errors import BudgetError

    cost, score, coordinates, shrink = _oracle_problem([1, 1])
    with pytest.raises(BudgetError, match="cannot shrink"):
        netadapt.coordinate_descent((1, 1), cost, score, coordinates, shrink, -1.0, np.random.default_rng(0))


def test_netadapt_meets_a_binding_budget_from_the_largest_network(tmp_path):
    budget = _binding_budget(tmp_path)
    cfg = _config("netadapt", budget_metric="macs_g", budget=budget)
    summary = SearchRun(cfg, tmp_path / "na").run()
    d = summary["derivation"]
    assert d["strategy"] == "netadapt" and summary["cost"]["within_budget"] is True
    costs = [d["start"]["cost"]] + [h["cost"] for h in d["iterations"]]
    assert costs == sorted(costs, reverse=True) and costs[-1] <= budget < costs[-2]
    run = SearchRun(tiny_config(), tmp_path / "probe2")
    every = [run.cost_model.genotype_cost(run.supernet.derive(node=v)) for v in range(len(run.supernet.tree))]
    assert d["start"]["cost"] >= max(every)  # the descent starts from the dearest network
    assert "descent" in summary["wall_time_s"] and summary["wall_time_s"]["search"] > 0
    assert 0 < summary["peak_rss_mib"]["search"] <= summary["peak_rss_mib"]["end"]
    again = SearchRun(cfg, tmp_path / "na2").run()
    assert again["genotype"]["digest"] == summary["genotype"]["digest"]  # deterministic given the seed


def test_netadapt_continues_the_descent_when_its_pick_measures_over_the_budget(tmp_path):
    budget = _binding_budget(tmp_path)
    cfg = _config("netadapt", budget_metric="latency_ms", budget=budget)
    from trisr.space.cost import analytic_cost_table

    table = analytic_cost_table(TINY_SPACE, "macs_g", cfg.cost_resolution)
    table.metric = "latency_ms"  # MACs stand in for milliseconds; the measurement reads 25 % over the table
    run = SearchRun(cfg, tmp_path / "m", cost_table=table)
    run.measure = lambda g: 1.25 * run.cost_model.genotype_cost(g)
    summary = run.run()
    m = summary["derivation"]["measured"]
    assert len(m) >= 2 and m[0]["measured_ms"] > budget * 0.97
    assert m[-1]["measured_ms"] <= budget * 0.97 and m[-1]["digest"] == summary["genotype"]["digest"]


# -- the HiNAS loss ------------------------------------------------------------------------------------------------


def test_ssim_matches_skimage_with_gaussian_weights():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 40, 36, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(1, 3, 40, 36, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = structural_similarity(x[0].permute(1, 2, 0).numpy(), y[0].permute(1, 2, 0).numpy(), gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2)
    assert float(ssim(x, y)) == pytest.approx(ref, abs=1e-6)
    assert float(l1_log_ssim(x, x)) == pytest.approx(0.0, abs=1e-9)
    z = y.clone().requires_grad_(True)
    l1_log_ssim(z.float(), x.float()).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0

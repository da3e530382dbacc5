"""Baselines trained like a searched network (trisr.baselines): random picks in the run's cost band, the searched
genotype from scratch, weights inherited from the run's kept supernet; resumable, one row per network."""

import json

import pytest
import torch

from trisr.baselines import baselines_for_run, candidates_for_run, train_genotype
from trisr.errors import TrisrError
from trisr.rundir import SUPERNET_FILE, load_model, load_supernet
from trisr.search.config import RunConfig
from trisr.search.engine import SearchRun
from trisr.space.cost import CostModel, CostTable
from trisr.space.inherit import inherit

from helpers import tiny_config


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = tiny_config(space=tiny_config().space.replace(num_cell=3, num_cell_path_search=2, ops_per_cell=3))
    from trisr.space.cost import analytic_cost_table
    from trisr.space.sample import cost_range
    from trisr.space.tree import Tree

    model = CostModel(analytic_cost_table(cfg.space, "macs_g", cfg.cost_resolution), cfg.space, Tree(2, 1, 1))
    lo, hi = cost_range(model)
    cfg = cfg.replace(budget_metric="macs_g", budget=lo + 0.5 * (hi - lo))
    SearchRun(cfg, out).run()
    return out


def test_run_keeps_its_supernet_and_inheritance_reproduces_the_start(budget_run):
    assert (budget_run / SUPERNET_FILE).exists()
    net = load_supernet(budget_run)
    derived = inherit(net, load_model(budget_run).genotype)  # before fine-tuning: the supernet's slice
    assert set(derived.state_dict()) == set(load_model(budget_run).state_dict())


def test_candidates_lie_in_the_runs_band(budget_run):
    cfg = RunConfig.load(budget_run / "config.json")
    table = CostTable.load(budget_run / "cost_table.json")
    from trisr.space.tree import Tree

    model = CostModel(table, cfg.space, Tree(2, 1, 1))
    cands = candidates_for_run(budget_run, 3, seed=1)
    assert [c.name for c in cands[:1]] == ["searched"] and cands[0].init == "scratch"
    randoms = [c for c in cands if c.kind == "random"]
    assert len(randoms) == 6 and {c.init for c in randoms} == {"scratch", "inherited"}
    for c in randoms:
        assert cfg.budget * (1 - cfg.budget_band) * (1 - 1e-9) <= model.genotype_cost(c.genotype) <= cfg.budget * (1 + 1e-9)
    with pytest.raises(TrisrError, match="unknown init"):
        candidates_for_run(budget_run, 1, inits=("pretrained",))


def test_baselines_train_with_the_runs_recipe_and_resume(budget_run, tmp_path):
    rows = baselines_for_run(budget_run, tmp_path / "b", n_random=1, seed=0)
    assert [(r["name"], r["init"]) for r in rows] == [
        ("searched", "inherited"), ("searched", "scratch"), ("random0", "scratch"), ("random0", "inherited")
    ]
    cfg = RunConfig.load(budget_run / "config.json")
    for r in rows[1:]:
        summary = json.loads((tmp_path / "b" / f"{r['name']}-{r['init']}" / "summary.json").read_text())
        assert summary["settings"]["recipe"] == json.loads(json.dumps(cfg.recipe().to_dict()))
        assert summary["settings"]["seed"] == cfg.seed
    assert json.loads((tmp_path / "b" / "baselines.json").read_text()) == rows
    again = baselines_for_run(budget_run, tmp_path / "b", n_random=1, seed=0)  # finished folders are read back
    assert again == rows


def test_train_genotype_inherits_from_the_supernet(budget_run, tmp_path):
    g = load_model(budget_run).genotype
    cfg = RunConfig.load(budget_run / "config.json")
    zero_steps = cfg.recipe().replace(steps=1, lr=1e-12)
    train_genotype(g, tmp_path / "inh", zero_steps, supernet_run=budget_run)
    start = inherit(load_supernet(budget_run), g)
    got = load_model(tmp_path / "inh")
    for (k, a), b in zip(start.state_dict().items(), got.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)

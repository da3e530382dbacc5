"""``trisr study`` end to end on a tiny space: schema, verdicts, plot, resume without retraining."""

import json
import os

import pytest
from PIL import Image
from typer.testing import CliRunner

from trisr.cli import app
from trisr.errors import TrisrError
from trisr.profile.profiler import profile, sample_genotypes
from trisr.runtime.base import create_backend
from trisr.search.config import Phase
from trisr.study.config import StudyConfig
from trisr.study.run import run_study, verdicts

from helpers import FAST, TINY_SPACE, tiny_config

SPACE = TINY_SPACE
RES = (16, 16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny space, its ONNX Runtime latency table at 16x16, and a tiny run configuration."""
    root = tmp_path_factory.mktemp("study")
    lut = profile(SPACE, create_backend("onnxruntime", threads=1), RES, FAST, calibrate=6, seed=0)
    lut_path = lut.save(root / "lut.json")
    cfg = tiny_config(
        cost_resolution=RES, warmup=Phase(steps=2, lr=1e-3, batch_size=2), search=Phase(steps=4, lr=1e-3, batch_size=2),
    )
    cfg_path = root / "cfg.json"
    cfg_path.write_text(cfg.to_json())
    preds = sorted(lut.predict_ms(g) for g in sample_genotypes(SPACE, 12, 0))
    budget = preds[len(preds) // 2]  # a budget inside the space's range: searchable, random picks exist
    return root, lut_path, cfg_path, budget


def _cfg(setup, **kw) -> StudyConfig:
    root, lut_path, cfg_path, budget = setup
    base = dict(budgets_ms=(budget,), threads=1, resolution=RES, config=str(cfg_path), zoo=("espcn",), random=1,
                reps=1, profile=str(lut_path))
    base.update(kw)
    return StudyConfig(**base)


@pytest.mark.slow
def test_tiny_study_end_to_end_and_resume(setup, monkeypatch):
    root = setup[0]
    out = root / "s1"
    cfg = _cfg(setup)
    import trisr.baselines as baselines

    calls = []
    real = baselines.train_arch

    def killed_after_first(*a, **k):  # the study is "killed" right after its first trained row finished
        calls.append(a[1])
        real(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(baselines, "train_arch", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, out)
    first = calls[0]
    stamp = os.stat(first / "model.safetensors").st_mtime_ns
    monkeypatch.setattr(baselines, "train_arch", real)
    study = run_study(cfg, out)
    assert os.stat(first / "model.safetensors").st_mtime_ns == stamp  # a finished row is never retrained

    data = json.loads((out / "study.json").read_text())
    assert data["schema_version"] == 1 and data["kind"] == "trisr-study"
    kinds = [r["kind"] for r in data["rows"]]
    assert kinds.count("searched") == 1 and kinds.count("bicubic") == 1 and kinds.count("random") == 1
    assert kinds.count("zoo") <= 1  # espcn fits the budget or is reported absent
    for r in data["rows"]:
        assert r["status"] == "ok", r
        assert r["latency_ms"]["p10"] <= r["latency_ms"]["median"] <= r["latency_ms"]["p90"] + 1e-9
        assert (out / r["artifact"]).exists() and (out / r["run"] / "summary.json").exists()
        assert r["psnr_db"] > 0 and 0 < r["ssim"] <= 1 and set(r["per_image"]) == {"chelsea", "coffee"}
    bic = next(r for r in data["rows"] if r["kind"] == "bicubic")
    assert bic["params"] == 0
    assert abs(bic["psnr_db"] - data["bicubic"]["psnr_db"]) < 0.05  # the zoo bicubic is MATLAB bicubic
    searched = next(r for r in data["rows"] if r["kind"] == "searched")
    assert searched["predicted_ms"] is not None and searched["budget_ms"] == cfg.budgets_ms[0]
    assert len(data["verdicts"]) == 1 and data["verdicts"][0]["searched"] == searched["name"]
    with Image.open(out / "pareto.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert (out / "report.html").exists() and (out / "report.md").exists()
    assert study["rows"] == data["rows"]


def test_study_refuses_other_settings_in_the_same_folder(setup, tmp_path):
    cfg = _cfg(setup)
    cfg.save(tmp_path)
    from trisr.study.run import _check_settings

    with pytest.raises(TrisrError, match="other settings .*random"):
        _check_settings(_cfg(setup, random=2), tmp_path)
    _check_settings(cfg, tmp_path)  # the same settings resume


def test_study_settings_validation():
    with pytest.raises(TrisrError, match="positive budgets"):
        StudyConfig(budgets_ms=(0.0,))
    with pytest.raises(TrisrError, match="distinct"):
        StudyConfig(budgets_ms=(10.0, 10.0))
    assert StudyConfig(budgets_ms=(40, 10)).budgets_ms == (10.0, 40.0)


def _r(name, kind, ms, psnr, budget=None):
    return {"name": name, "kind": kind, "status": "ok", "budget_ms": budget, "budgets_ms": [budget] if budget else [],
            "latency_ms": {"median": ms}, "psnr_db": psnr}


def test_verdict_compares_with_the_best_rival_no_slower_than_the_searched_network():
    rows = [_r("s10", "searched", 9.0, 34.0, 10.0), _r("fast", "zoo", 5.0, 33.7), _r("slow-better", "zoo", 9.5, 35.0),
            _r("r", "random", 8.9, 33.9, 10.0), _r("bic", "bicubic", 1.0, 32.0)]
    (v,) = verdicts(rows, (10.0,))
    assert v["best_rival"] == "r" and v["margin_db"] == pytest.approx(0.1) and v["met"] is False
    (v,) = verdicts(rows[:3], (10.0,))
    assert v["best_rival"] == "fast" and v["met"] is True
    (v,) = verdicts([rows[0], rows[2]], (10.0,))
    assert v["best_rival"] is None and v["met"] is None


def test_cli_study_bad_input_is_one_line():
    runner = CliRunner()
    res = runner.invoke(app, ["study", "--budgets-ms", "ten"])
    assert res.exit_code == 2 and "comma-separated numbers" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["study", "--budgets-ms", "10", "--zoo", "espcn,nope"])
    assert res.exit_code == 2 and "unknown zoo family nope" in res.output


@pytest.mark.slow
def test_study_runs_every_strategy_on_one_table_and_judges_trilevel_against_them(setup):
    """--strategies: each strategy searches at the budget on the same table and is exported and timed with the
    others; trilevel's verdict counts the other strategies as rivals."""
    root = setup[0]
    out = root / "strategies"
    cfg = _cfg(setup, zoo=(), random=0, strategies=("netadapt", "hinas", "dcnas"))
    assert cfg.strategies == ("trilevel", "netadapt", "hinas", "dcnas")
    data = run_study(cfg, out)
    rows = {r["name"]: r for r in data["rows"]}
    b = cfg.budgets_ms[0]
    for name, strategy in ((f"searched@{b:g}ms", "trilevel"), (f"netadapt@{b:g}ms", "netadapt"), (f"hinas@{b:g}ms", "hinas"),
                           (f"dcnas@{b:g}ms", "dcnas")):
        r = rows[name]
        assert r["status"] == "ok" and r["strategy"] == strategy and r["latency_ms"]["median"] > 0, r
        assert r["search"]["supernet_steps"] == {"warmup": 2, "search": 4} and r["search"]["wall_time_s"]["total"] > 0
        saved = json.loads((out / r["run"] / "config.json").read_text())
        assert saved["strategy"] == strategy and saved["budget"] == b
        assert (out / r["run"] / "summary.json").exists()
    assert rows[f"netadapt@{b:g}ms"]["kind"] == "strategy" and "descent" in rows[f"netadapt@{b:g}ms"]["search"]["wall_time_s"]
    (v,) = data["verdicts"]
    fastest_rival = [r for r in data["rows"] if r["kind"] == "strategy"
                     and r["latency_ms"]["median"] <= rows[f"searched@{b:g}ms"]["latency_ms"]["median"]]
    assert (v["best_rival"] is None) == (not fastest_rival)


def test_study_strategies_settings():
    assert StudyConfig(budgets_ms=(10,), strategies=("random", "trilevel")).strategies == ("trilevel", "random")
    assert StudyConfig(budgets_ms=(10,)).strategies == ("trilevel",)
    assert StudyConfig(budgets_ms=(10,), strategies=("dcnas",)).strategies == ("trilevel", "dcnas")
    with pytest.raises(TrisrError, match="unknown --strategies 'evo'"):
        StudyConfig(budgets_ms=(10,), strategies=("evo",))
    rows = [_r("s10", "searched", 9.0, 34.0, 10.0), _r("hinas@10ms", "strategy", 8.0, 34.2, 10.0)]
    (v,) = verdicts(rows, (10.0,))
    assert v["best_rival"] == "hinas@10ms" and v["margin_db"] == pytest.approx(-0.2) and v["met"] is False


def test_a_study_with_dcnas_refuses_a_table_without_the_add_entry_before_training(setup, tmp_path):
    from trisr.errors import CostTableError
    from trisr.profile.lut import load_lut
    from trisr.study.run import run_study

    lut = load_lut(setup[1])
    del lut.entries["add"]
    old = lut.save(tmp_path / "old-table.json")
    cfg = _cfg(setup, zoo=(), random=0, strategies=("dcnas",), profile=str(old))
    with pytest.raises(CostTableError, match="--strategies dcnas needs the latency table's 'add' entry"):
        run_study(cfg, tmp_path / "study")
    assert not any((tmp_path / "study").glob("runs/*"))  # nothing was trained

"""End to end: search -> derive -> inherit -> fine-tune -> evaluate, resume, budgets, torchrun, CLI."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from trisr.errors import BudgetError
from trisr.progress import Reporter
from trisr.rundir import load_model
from trisr.search.engine import SearchRun

from helpers import tiny_config

OUTPUT_FILES = {"config.json", "genotype.json", "model.safetensors", "summary.json", "log.txt", "events.jsonl", "checkpoint.pt"}


class Interrupt(Reporter):
    """Simulates a kill: raises at a given step of a given phase."""

    def __init__(self, phase: str, at: int) -> None:
        self.target, self.at, self.current = phase, at, None

    def phase(self, name, total, done=0):
        self.current = name

    def step(self, done, metrics):
        if self.current == self.target and done == self.at:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    summary = SearchRun(tiny_config(), out).run()
    return out, summary


def test_run_writes_every_output(finished_run):
    out, summary = finished_run
    assert OUTPUT_FILES <= {p.name for p in out.iterdir()}
    assert {"psnr_db", "ssim", "bicubic_psnr_db", "bicubic_ssim", "images"} <= set(summary["metrics"])
    assert summary["params"] > 0 and summary["macs"] > 0
    assert set(summary["wall_time_s"]) >= {"warmup", "search", "finetune", "evaluate", "total"}
    assert summary["versions"]["torch"] == torch.__version__
    assert summary["settings"]["search"]["steps"] == 6
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["genotype"] == summary["genotype"]
    events = [json.loads(line)["event"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[0] == "start" and "derive" in events and events[-1] == "done"
    model = load_model(out)
    assert model.genotype.digest() == summary["genotype"]["digest"]
    x = torch.rand(1, 3, 10, 10)
    assert model(x).shape == (1, 3, 20, 20)


def test_a_finished_run_refuses_to_start_over_and_resumes_as_complete(finished_run):
    out, summary = finished_run
    from trisr.errors import TrisrError

    with pytest.raises(TrisrError, match="--resume"):
        SearchRun(tiny_config(), out)
    weights = (out / "model.safetensors").read_bytes()
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    again = SearchRun(tiny_config(), out, resume=True).run()
    # the stored summary (JSON-normalised: tuples read back as lists), not a new run
    assert json.loads(json.dumps(again)) == json.loads(json.dumps(summary))
    assert (out / "model.safetensors").read_bytes() == weights and (out / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("phase, at", [("warm-up", 4), ("search", 4), ("fine-tune", 2)])
def test_killed_run_resumes_to_the_same_result(tmp_path, finished_run, phase, at):
    """A run killed mid-phase and resumed ends bit-identical to the uninterrupted run."""
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        SearchRun(tiny_config(), out, reporter=Interrupt(phase, at)).run()
    assert (out / "checkpoint.pt").exists() and not (out / "model.safetensors").exists()
    SearchRun(tiny_config(seed=123), out, resume=True).run()  # the stored config wins over the new one
    a = load_file(str(finished_run[0] / "model.safetensors"))
    b = load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_a_time_limit_cuts_the_fine_tune_and_a_resume_keeps_the_count(tmp_path, monkeypatch):
    """Under an end-to-end time limit the fine-tune trains what fits in the time the supernet phases left, at the
    step time measured when it starts; a killed run resumes with that count (not a new measurement), and
    baselines / ``trisr train RUN`` train the same count."""
    import trisr.search.engine as engine
    import trisr.training
    from trisr.baselines import run_recipe

    monkeypatch.setattr(trisr.training, "probe_step_ms", lambda *a, **k: 20_000.0)  # 3 steps a minute
    monkeypatch.setattr(engine, "finetune_minutes", lambda limit, spent: limit / 10)  # spent: this machine's speed
    cfg = tiny_config(finetune=replace(tiny_config().finetune, steps=8), max_wall_min=20.0)
    full = SearchRun(cfg, tmp_path / "full").run()
    assert full["finetune_plan"] == {"steps": 6, "requested_steps": 8, "max_min": 2.0, "step_ms": 20_000.0, "min_steps": 1}
    assert run_recipe(tmp_path / "full").phase.steps == 6

    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        SearchRun(cfg, out, reporter=Interrupt("fine-tune", 4)).run()
    monkeypatch.setattr(trisr.training, "probe_step_ms", lambda *a, **k: 1.0)  # a faster machine would plan all 8
    again = SearchRun(cfg, out, resume=True).run()
    assert again["finetune_plan"] == full["finetune_plan"]
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_the_fine_tune_gets_the_time_the_run_has_not_spent():
    from trisr.search.engine import FINETUNE_OVERHEAD, FINISH_RESERVE_MIN, finetune_minutes

    assert finetune_minutes(45.0, 8.0) == pytest.approx((45.0 - 8.0 - FINISH_RESERVE_MIN) / (1 + FINETUNE_OVERHEAD))
    assert finetune_minutes(45.0, 50.0) == 0.0  # nothing left: the plan's floor decides


def test_search_meets_a_mac_budget(tmp_path):
    probe = SearchRun(tiny_config(), tmp_path / "probe")
    lo = probe.cost_model.min_cost()
    hi = probe.cost_model.genotype_cost(probe.supernet.derive(node=len(probe.supernet.tree) - 1))
    budget = lo + 0.3 * (hi - lo)
    summary = SearchRun(tiny_config(budget_metric="macs_g", budget=budget), tmp_path / "budget").run()
    assert summary["cost"]["within_budget"] is True
    assert summary["cost"]["derived"] <= budget
    # the summary's MACs are counted on the derived module at the cost resolution: same number
    assert summary["macs"] / 1e9 == pytest.approx(summary["cost"]["derived"], rel=1e-9)


def test_random_strategy_meets_a_binding_budget_with_the_best_scored_candidate(tmp_path):
    """--strategy random: the supernet trains on random single paths, in-band candidates are scored with shared
    weights, the best-scored one is derived, fine-tuned and meets the budget; the scores are in the summary."""
    from trisr.search import random_ws

    probe = SearchRun(tiny_config(), tmp_path / "probe")
    lo = probe.cost_model.min_cost()
    hi = probe.cost_model.genotype_cost(probe.supernet.derive(node=len(probe.supernet.tree) - 1))
    budget = lo + 0.3 * (hi - lo)
    cfg = tiny_config(budget_metric="macs_g", budget=budget, strategy="random")
    summary = SearchRun(cfg, tmp_path / "random").run()
    d = summary["derivation"]
    assert d["strategy"] == "random" and summary["cost"]["within_budget"] is True
    rows = d["candidates"]
    assert 1 <= len(rows) <= random_ws.CANDIDATES
    assert all(budget * (1 - cfg.budget_band) - 1e-9 <= r["cost"] <= budget + 1e-9 for r in rows)
    assert [r["score_l1"] for r in rows] == sorted(r["score_l1"] for r in rows)
    assert summary["genotype"]["digest"] == rows[0]["digest"]  # the best score wins
    assert json.loads((tmp_path / "random" / "config.json").read_text())["strategy"] == "random"
    again = SearchRun(cfg, tmp_path / "random2").run()  # deterministic given the seed
    assert again["genotype"]["digest"] == summary["genotype"]["digest"]


def test_random_strategy_passes_over_candidates_that_miss_when_measured(tmp_path):
    probe = SearchRun(tiny_config(), tmp_path / "probe")
    lo = probe.cost_model.min_cost()
    hi = probe.cost_model.genotype_cost(probe.supernet.derive(node=len(probe.supernet.tree) - 1))
    budget = lo + 0.5 * (hi - lo)
    cfg = tiny_config(budget_metric="macs_g", budget=budget, strategy="random")
    run = SearchRun(cfg, tmp_path / "r")
    ranked = [probe.supernet.derive(node=n) for n in range(len(probe.supernet.tree))]
    ranked.sort(key=lambda g: -run.cost_model.genotype_cost(g))  # dearest first: the first one must be passed over
    run.measure = lambda g: 1.2 * run.cost_model.genotype_cost(g)
    i, record = run._pick_measured(ranked)
    assert record[0]["measured_ms"] > budget or len(record) == 1
    assert record[-1]["digest"] == ranked[i].digest()
    if len(record) > 1:
        assert run.cost_model.genotype_cost(ranked[i]) <= record[0]["predicted_ms"] * budget / record[0]["measured_ms"] + 1e-9


def test_cli_refuses_unknown_strategies_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from trisr.cli import app

    res = CliRunner().invoke(app, ["search", "--strategy", "evolution", "--out", str(tmp_path / "evolution")])
    assert res.exit_code == 2 and "unknown --strategy 'evolution'" in res.output and res.output.count("\n") == 1, res.output


def test_budget_below_the_space_minimum_fails_at_once(tmp_path):
    with pytest.raises(BudgetError, match=r"below the smallest architecture .* GMAC"):
        SearchRun(tiny_config(budget_metric="macs_g", budget=1e-6), tmp_path / "x")


# -- distributed -------------------------------------------------------------------------------------------


def test_torchrun_two_cpu_processes_stay_in_sync(tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(tiny_config(budget_metric="macs_g", budget=0.02).to_json())
    trace = tmp_path / "trace"
    trace.mkdir()
    env = dict(os.environ, TRISR_SYNC_TRACE=str(trace), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "trisr.cli", "search", "--config", str(cfg_file), "--out", str(tmp_path / "out"), "--device", "cpu",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = [json.loads(x) for x in (trace / "rank0.jsonl").read_text().splitlines()]
    r1 = [json.loads(x) for x in (trace / "rank1.jsonl").read_text().splitlines()]
    assert len(r0) == len(r1) == 4 + 6 + 4
    for a, b in zip(r0, r1):
        # identical weights, architecture parameters, radius and cost weight after every step
        assert {k: a[k] for k in a if k != "batch"} == {k: b[k] for k in b if k != "batch"}
    # ...while each rank trains on its own shard of the data
    assert all(a["batch"] != b["batch"] for a, b in zip(r0, r1) if a["batch"] is not None)
    assert [a["radius"] for a in r0 if a["phase"] == "search"] == [i / 6 for i in range(6)]
    out = tmp_path / "out"
    assert OUTPUT_FILES <= {p.name for p in out.iterdir()}
    starts = [e for e in (out / "events.jsonl").read_text().splitlines() if '"start"' in e]
    assert len(starts) == 1 and json.loads(starts[0])["world_size"] == 2  # only rank 0 writes
    assert json.loads((out / "summary.json").read_text())["world_size"] == 2


# -- CLI ---------------------------------------------------------------------------------------------------


def trisr(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "trisr.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_one_line_error(proc, pattern):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert pattern in lines[0], lines[0]


def test_cli_user_errors_are_one_line(tmp_path):
    assert_one_line_error(trisr("search", "--preset", "nope", "--out", tmp_path / "a"), "unknown preset 'nope'")
    assert_one_line_error(trisr("search", "--macs-g", "0.001", "--out", tmp_path / "b"), "below the smallest architecture")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(trisr("search", "--data", empty, "--out", tmp_path / "c"), str(empty))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert_one_line_error(trisr("search", "--data", bad, "--out", tmp_path / "d"), "broken.png")
    small = tmp_path / "small"
    small.mkdir()
    from trisr.data.images import save_image
    import numpy as np

    for i in range(2):
        save_image(small / f"{i}.png", np.zeros((40, 40, 3), np.uint8))
    assert_one_line_error(trisr("search", "--data", small, "--out", tmp_path / "e"), "smaller than the 24x24 patch")
    assert_one_line_error(trisr("eval", tmp_path / "nothing"), "run folder not found")
    assert_one_line_error(trisr("search", "--resume", "--out", tmp_path / "f"), "no checkpoint to resume from")


def test_cli_eval_upscale_train_info(tmp_path, finished_run):
    run, summary = finished_run
    ev = trisr("eval", run, "--json", "--device", "cpu")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout)
    assert metrics["psnr_db"] == pytest.approx(summary["metrics"]["psnr_db"], abs=1e-9)
    from trisr.data.images import load_image, save_image
    import numpy as np

    img = (np.random.default_rng(0).random((17, 23, 3)) * 255).astype(np.uint8)
    save_image(tmp_path / "in.png", img)
    up = trisr("upscale", run, tmp_path / "in.png", "-o", tmp_path / "out", "--device", "cpu")
    assert up.returncode == 0, up.stderr
    assert load_image(tmp_path / "out" / "in_x2.png").shape == (34, 46, 3)
    bad = trisr("upscale", run, tmp_path / "missing.png", "-o", tmp_path / "out")
    assert_one_line_error(bad, "missing.png")
    tr = trisr("train", run / "genotype.json", "--out", tmp_path / "t", "--steps", "3", "--batch-size", "2", "--patch", "12", "--json", "--device", "cpu")
    assert tr.returncode == 0, tr.stderr
    assert json.loads(tr.stdout)["settings"]["recipe"]["phase"]["steps"] == 3
    assert (tmp_path / "t" / "model.safetensors").exists()
    info = trisr("info", "--json")
    assert info.returncode == 0 and "onnxruntime" in json.loads(info.stdout)["runtimes"]


def test_cli_finetune_steps_are_trained_in_full_and_max_minutes_is_checked(tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(tiny_config(max_wall_min=30.0).to_json())
    out = tmp_path / "run"
    proc = trisr("search", "--config", cfg_file, "--finetune-steps", 3, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["max_wall_min"] == 0.0  # an explicit count: no limit
    assert json.loads((out / "summary.json").read_text())["finetune_plan"] == {
        "steps": 3, "requested_steps": 3, "max_min": None, "step_ms": None, "min_steps": 1}
    assert_one_line_error(trisr("search", "--config", cfg_file, "--max-minutes", -1, "--out", tmp_path / "bad"),
                          "max_wall_min must be a finite number >= 0")

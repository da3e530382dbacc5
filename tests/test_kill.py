"""Real kills: ``trisr search`` runs as a subprocess and is killed with SIGKILL at points found by watching its
run folder (events.jsonl, the checkpoint, a stalled checkpoint write); ``trisr search --resume`` then finishes
it, and the result equals an uninterrupted run of the same config bit for bit (weights, genotype, metrics).

The simulated kills of tests/test_search.py raise inside the process; these kill it from outside, so nothing
(no ``finally``, no flush) runs after the signal.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trisr.checkpoint import STALL_ENV, load_checkpoint
from trisr.search.config import Phase, RunConfig
from trisr.space.config import SpaceConfig

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def kill_config() -> RunConfig:
    return RunConfig(
        preset="test",
        space=SpaceConfig(nf=8, num_cell=2, num_up=1, num_cell_path_search=1, ops_per_cell=2, scale=2),
        lr_patch=12,
        warmup=Phase(steps=4, lr=1e-3, batch_size=2),
        search=Phase(steps=6, lr=1e-3, batch_size=2),  # two search checkpoints (2, 4) to stall in
        finetune=Phase(steps=4, lr=1e-3, batch_size=2),
        control_every=2,
        log_every=1,
        checkpoint_every=2,
        cost_resolution=(32, 32),
        val_images=1,
    )


def start(cwd: Path, out: str, *extra: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop(STALL_ENV, None)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one thread: tiny tensors, shared CPUs
    env.update(env_extra or {})
    log = open(cwd / f"{out}.{time.monotonic_ns()}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "trisr.cli", "search", "--config", "tiny.json", "--out", out, "--device", "cpu", *extra],
                            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def events(run: Path) -> list[dict]:
    try:
        lines = (run / "events.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            pass
    return out


def kill_when(proc: subprocess.Popen, cond, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen, timeout: float = 180) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the run did not finish in time")
    assert rc == 0, f"exit {rc}: " + Path(proc.args[0]).name


def test_sigkilled_search_resumes_to_the_uninterrupted_result(tmp_path):
    (tmp_path / "tiny.json").write_text(kill_config().to_json())
    ref = start(tmp_path, "REF")  # the uninterrupted run, alongside the killed one
    run = tmp_path / "RUN"

    # 1. warm-up: killed once the first checkpoint is on disk and a later warm-up step was logged.
    p = start(tmp_path, "RUN")
    kill_when(p, lambda: (run / "checkpoint.pt").exists() and any(e["event"] == "warmup" and e["step"] >= 3 for e in events(run)),
              "a warm-up step after the first checkpoint")
    assert not (run / "model.safetensors").exists()
    assert load_checkpoint(run / "checkpoint.pt")["phase"] == "warmup"

    # 1b. killed at random moments (seeded, so reproducible) shortly after a resumed process started: whatever
    # it was doing, the checkpoint on disk stays loadable and the next --resume carries on.
    rnd = random.Random(9)
    for _ in range(2):
        n = len(events(run))
        p = start(tmp_path, "RUN", "--resume")
        kill_when(p, lambda: any(e["event"] == "start" for e in events(run)[n:]) and (time.sleep(rnd.uniform(0, 0.4)) or True),
                  "a resumed process starting")
        load_checkpoint(run / "checkpoint.pt")
        assert not (run / "model.safetensors").exists()

    # 2. search: killed in the middle of writing a checkpoint (half the bytes in the temporary file).
    n = len(events(run))
    p = start(tmp_path, "RUN", "--resume", env_extra={STALL_ENV: "search"})
    kill_when(p, lambda: (run / ".stalled-search").exists(), "a stalled search checkpoint write")
    assert any(e["event"] == "start" and e.get("resume") for e in events(run)[n:])
    tmp_files = list(run.glob(".checkpoint.pt.*.tmp"))
    assert tmp_files and tmp_files[0].stat().st_size > 0  # the half-written file the kill left behind
    assert load_checkpoint(run / "checkpoint.pt")["phase"] in ("warmup", "search")  # the previous one, intact
    assert not (run / "model.safetensors").exists()

    # 3. fine-tuning: killed once a fine-tuning step of this process was logged.
    n = len(events(run))
    p = start(tmp_path, "RUN", "--resume")
    kill_when(p, lambda: any(e["event"] == "finetune" for e in events(run)[n:]), "a fine-tuning step")
    assert not (run / "model.safetensors").exists()

    # 4. resumed to the end.
    finish(start(tmp_path, "RUN", "--resume"))
    finish(ref)

    a, b = load_file(str(tmp_path / "REF" / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert json.loads((run / "genotype.json").read_text()) == json.loads((tmp_path / "REF" / "genotype.json").read_text())
    ra, rb = json.loads((tmp_path / "REF" / "summary.json").read_text()), json.loads((run / "summary.json").read_text())
    assert ra["genotype"] == rb["genotype"]
    assert ra["metrics"] == rb["metrics"]
    assert not list(run.glob(".checkpoint.pt.*.tmp"))  # the interrupted write's temporary file was cleaned up
    starts = [e for e in events(run) if e["event"] == "start"]
    assert [bool(e.get("resume")) for e in starts] == [False, True, True, True, True, True]

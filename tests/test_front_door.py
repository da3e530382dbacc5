"""The front door: the spec's commands as written, the target kept with the run, ``trisr deploy`` end to end with a
kill and a resume, run folders owned while in use, and failed writes that end in one line.

Everything runs the real command line in a subprocess on a tiny search space and a tiny latency table measured
here in ONNX Runtime (the spec's remote Jetson command is in tests/test_remote.py, against the loopback sshd).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import FAST, TINY_SPACE, tiny_config

RES = (16, 16)
REPO = Path(__file__).resolve().parents[1]


def trisr(*args, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trisr.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout, stdin=subprocess.DEVNULL)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def one_error(res: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a refused command (exit 2, no traceback)."""
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny configuration file and a tiny ONNX Runtime fp32 table of its space at 16x16 (1 thread)."""
    from trisr.profile.profiler import profile
    from trisr.runtime.base import create_backend

    root = tmp_path_factory.mktemp("front")
    cfg = root / "cfg.json"
    cfg.write_text(tiny_config(cost_resolution=RES).to_json())
    lut = profile(TINY_SPACE, create_backend("onnxruntime", threads=1), RES, FAST, calibrate=6, validate=0, seed=0)
    return {"root": root, "cfg": cfg, "lut": lut.save(root / "lut.json")}


@pytest.fixture(scope="module")
def searched(tiny):
    """The spec's ``trisr search --latency-ms 30``, on the tiny space and table."""
    out = tiny["root"] / "run"
    res = trisr("search", "--latency-ms", "30", "--config", tiny["cfg"], "--profile", tiny["lut"], "--threads", "1",
                "--out", out, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    return out, json.loads(res.stdout)


# -- the spec's commands, literally --------------------------------------------------------------------------


def test_spec_search_latency_ms_30_records_its_target(searched, tiny):
    from trisr.pipeline.target import load_target, table_digest
    from trisr.profile.lut import load_lut

    out, summary = searched
    assert summary["latency"]["budget_ms"] == 30 and summary["latency"]["verdict"] == "PASS"
    t = load_target(out)
    assert (t.device, t.backend, t.precision, t.threads, t.input_hw) == ("cpu", "onnxruntime", "fp32", 1, RES)
    assert t.table_digest == table_digest(load_lut(tiny["lut"])) and Path(t.table) == tiny["lut"]
    assert t.machine["isa"] == load_lut(tiny["lut"]).target["isa"]
    assert summary["target"] == t.to_dict()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_spec_export_trt_without_tensorrt_names_what_to_install(searched):
    out, _ = searched
    line = one_error(trisr("export", out, "--format", "trt"))
    assert "tensorrt is not installed" in line and "pip install 'trisr[tensorrt]'" in line and "python3-libnvinfer" in line


def test_spec_bench_on_the_device_beside_the_tables_prediction(searched, tiny, tmp_path):
    out, _ = searched
    res = trisr("bench", out, "--device", "cpu", "--format", "onnx", "--shape", "16x16", "--threads", "1", "--reps", "2",
                "--time-s", "0.02", "--peak-n", "0", "--lut", tiny["lut"], "--out", tmp_path / "b", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["format"]: r for r in json.loads(res.stdout)["rows"]}
    onnx = rows["onnx"]
    assert onnx["lut_predicted_ms"] > 0 and onnx["latency_median_ms"] > 0 and rows["torch"]["latency_median_ms"] > 0
    assert onnx["latency_p10_ms"] <= onnx["latency_p90_ms"]


def test_profile_device_cuda_without_a_gpu_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert "torch sees no CUDA GPU" in one_error(trisr("profile", "--device", "cuda", "--input", "16x16"))


def test_old_target_flag_is_an_alias_and_a_conflict_is_refused(searched, tmp_path):
    out, _ = searched
    line = one_error(trisr("bench", out, "--device", "cpu", "--target", "jetson", "--format", "onnx"))
    assert "--device and --target name the same setting" in line
    res = trisr("bench", out, "--target", "cpu", "--format", "onnx", "--shape", "16x16", "--reps", "1", "--time-s", "0.01",
                "--peak-n", "0", "--out", tmp_path / "b", "--json")
    assert res.returncode == 0, res.stderr[-2000:]


# -- the target belongs to the run ---------------------------------------------------------------------------


@pytest.mark.parametrize("flags, needle", [
    (["--backend", "openvino"], "--backend openvino (the run has onnxruntime)"),
    (["--threads", "2"], "--threads 2 (the run has 1)"),
    (["--precision", "int8"], "--precision int8 (the run has fp32)"),
    (["--device", "jetson"], "--device jetson (the run has cpu)"),
])
def test_resume_with_another_target_is_refused(searched, tiny, flags, needle):
    out, _ = searched
    line = one_error(trisr("search", "--out", out, "--resume", "--latency-ms", "30", "--profile", tiny["lut"], *flags))
    assert "the run was started for onnxruntime" in line and needle in line


def test_resume_takes_the_runs_own_target_and_refuses_a_changed_table(searched, tiny, tmp_path):
    from trisr.profile.lut import load_lut

    out, summary = searched
    res = trisr("search", "--out", out, "--resume", "--json")  # no flags: the run's own target and table
    assert res.returncode == 0, res.stderr[-2000:]
    assert "already complete" in res.stderr and json.loads(res.stdout)["target"] == summary["target"]
    # The table file changes under the run (re-validated here): the resume is refused, naming the change.
    lut = load_lut(tiny["lut"])
    original = tiny["lut"].read_bytes()
    lut.validation = {"n": 0, "note": "changed"}
    lut.save(tiny["lut"])
    try:
        line = one_error(trisr("search", "--out", out, "--resume"))
        assert "its target has changed since" in line and "table " in line
    finally:
        tiny["lut"].write_bytes(original)


def test_a_table_from_another_cpu_is_refused_with_the_command_that_profiles_this_one(tiny, tmp_path):
    from trisr.profile.lut import load_lut

    lut = load_lut(tiny["lut"])
    lut.target["isa"] = ["avx2", "fma"]  # the same vendor name, another ISA: what made a study miss by 2.6x
    other = lut.save(tmp_path / "other.json")
    line = one_error(trisr("search", "--latency-ms", "30", "--config", tiny["cfg"], "--profile", other, "--threads", "1",
                           "--out", tmp_path / "r"))
    assert "measured with isa avx2 fma" in line
    assert "profile this machine with `trisr profile --device cpu --backend onnxruntime --precision fp32 --threads 1 --input 16x16`" in line
    assert not (tmp_path / "r").exists()


def test_study_times_every_network_at_its_tables_precision(monkeypatch, tmp_path):
    """The study exports at the precision its table was measured at (bf16, int8, ...), not always fp32."""
    from trisr.study import timing

    seen = []

    class Result:
        ok, reason, artifact, model = False, "stopped here", tmp_path / "a.onnx", None

    monkeypatch.setattr("trisr.export.pipeline.export_run", lambda req: seen.append((req.fmt.name, req.precision)) or Result())
    backend = type("B", (), {"name": "openvino", "precision": "bf16", "device": "cpu", "threads": 1})()
    timing.export_and_time({"n": tmp_path}, tmp_path / "x", backend, RES, 1)
    assert seen == [("openvino", "bf16")]
    from trisr.export.formats import format_for_backend

    assert format_for_backend("onnxruntime", "int8").name == "onnx"


# -- trisr deploy -------------------------------------------------------------------------------------------------


def deploy_args(tiny, out, budget="0.5"):
    return ["deploy", "--device", "cpu", "--latency-ms", budget, "--format", "onnx", "--config", tiny["cfg"], "--profile",
            tiny["lut"], "--threads", "1", "--revalidate", "2", "--reps", "2", "--out", out, "--json"]


@pytest.mark.slow
def test_deploy_end_to_end_killed_and_resumed(tiny, tmp_path):
    """Killed while its search writes a fine-tune checkpoint; the same command resumes in the search stage (from
    the checkpoint), never redoing the table stage, and ends with the verdict; a third run redoes nothing."""
    from trisr.checkpoint import STALL_ENV

    out = tmp_path / "deploy"
    cmd = [sys.executable, "-m", "trisr.cli", *map(str, deploy_args(tiny, out))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env={**os.environ, STALL_ENV: "finetune"})
    marker = out / "search" / ".stalled-finetune"
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), "the deploy never reached a fine-tune checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((out / "deploy.json").read_text())
    assert set(state["stages"]) == {"table"} and "verdict" not in state
    table_record = state["stages"]["table"]
    assert table_record["cached"] and table_record["revalidation"]["n"] == 2

    res = trisr(*deploy_args(tiny, out))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "stage 1/5 table: finished before, kept" in res.stderr and "stage 2/5: search" in res.stderr
    events = [json.loads(line) for line in (out / "search" / "events.jsonl").read_text().splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    assert [e["resume"] for e in starts] == [False, True]  # the search continued from its checkpoint
    v = json.loads(res.stdout)
    state = json.loads((out / "deploy.json").read_text())
    assert state["stages"]["table"] == table_record and list(state["stages"]) == ["table", "search", "export", "bench", "report"]
    assert v["verdict"] == "PASS" and v["measured_ms"] <= 0.5 and v["p10_ms"] <= v["p90_ms"]
    assert v["predicted_ms"] > 0 and v["pytorch_eager_ms"] > 0 and v["format"] == "onnx" and v["precision"] == "fp32"
    assert v["psnr_db"] > 0 and 0 < v["ssim"] <= 1 and v["bicubic_psnr_db"] > 0
    assert v["gain_db"] == pytest.approx(v["psnr_db"] - v["bicubic_psnr_db"])
    assert Path(v["artifact"]).exists() and Path(v["artifact"]).suffix == ".onnx"
    assert state["stages"]["export"]["status"] == "exported+verified"
    page = (out / "report.html").read_text()
    assert "trisr deploy" in page and "PASS" in page and "Content-Security-Policy" in page

    again = trisr(*deploy_args(tiny, out))
    assert again.returncode == 0 and again.stderr.count("finished before, kept") == 5
    assert json.loads(again.stdout)["measured_ms"] == v["measured_ms"]
    line = one_error(trisr(*deploy_args(tiny, out, budget="0.4")))
    assert "holds a deploy with other settings (latency_ms differ)" in line


def test_deploy_misses_the_budget_with_exit_1(tiny, tmp_path):
    """A budget the network cannot meet when measured: the verdict is FAIL, with the reason, exit status 1."""
    res = trisr(*deploy_args(tiny, tmp_path / "d", budget="0.001"))
    if res.returncode == 2:  # refused before any work: below the smallest architecture of the space
        assert "below the smallest architecture" in one_error(res)
        return
    assert res.returncode == 1, res.stderr[-3000:]
    v = json.loads(res.stdout)
    assert v["verdict"] == "FAIL" and any("> budget" in r for r in v["reasons"])


@pytest.mark.parametrize("args, needle", [
    (["--format", "trt"], "format trt runs on cuda, jetson, not --device cpu"),
    (["--format", "trt", "--device", "cuda"], "tensorrt is not installed"),
    (["--format", "onnx", "--precision", "bf16"], "supports precision"),
    (["--format", "onnx", "--latency-ms", "-3"], "--latency-ms must be a finite positive budget"),
    (["--format", "nope"], "nope"),
])
def test_deploy_bad_requests_are_one_line(tiny, tmp_path, args, needle):
    if importlib.util.find_spec("tensorrt") is not None and "trt" in args:
        pytest.skip("TensorRT is installed here")
    base = ["deploy", "--config", tiny["cfg"], "--profile", tiny["lut"], "--out", tmp_path / "d"]
    if "--device" not in args:
        base += ["--device", "cpu"]
    if "--latency-ms" not in args:
        base += ["--latency-ms", "1"]
    assert needle in one_error(trisr(*base, *args))
    assert not (tmp_path / "d").exists()


# -- a folder is owned while in use ------------------------------------------------------------------------------


def test_lock_is_reentrant_and_leaves_nothing_behind(tmp_path):
    from trisr.lock import LOCK_NAME, acquire, locked, release

    with locked(tmp_path, "run folder"):
        assert (tmp_path / LOCK_NAME).exists()
        key = acquire(tmp_path)
        release(key)
        assert (tmp_path / LOCK_NAME).exists()  # still held by the outer block
    assert not (tmp_path / LOCK_NAME).exists()


HOLDER = ("import sys, time; from pathlib import Path; from trisr.lock import acquire; "
          "acquire(Path(sys.argv[1]), sys.argv[2]); print('held', flush=True); time.sleep(120)")


def hold(path: Path, what: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), what], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_command_refuses_a_folder_in_use_and_takes_over_a_killed_ones_lock(tiny, tmp_path):
    from trisr.lock import LOCK_NAME

    out = tmp_path / "run"
    holder = hold(out, "run folder")
    try:
        line = one_error(trisr("search", "--config", tiny["cfg"], "--out", out))
        assert f"run folder {out} is in use by process {holder.pid}" in line and "choose another --out" in line
        study = one_error(trisr("study", "--budgets-ms", "1", "--out", out))  # the same lock, whichever command
        assert f"is in use by process {holder.pid}" in study
    finally:
        holder.kill()
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the killed holder left its lock file: stale, taken over at once
    res = trisr("search", "--config", tiny["cfg"], "--out", out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (out / LOCK_NAME).exists() and (out / "summary.json").exists()


def test_deploy_and_table_locks(tiny, tmp_path):
    out = tmp_path / "d"
    holder = hold(out, "deploy folder")
    try:
        assert f"deploy folder {out} is in use by process {holder.pid}" in one_error(trisr(*deploy_args(tiny, out)))
    finally:
        holder.kill()
        holder.wait()
    table = tmp_path / "t.json"
    holder = hold(table, "file")
    try:
        line = one_error(trisr("profile", "--device", "cpu", "--input", "16x16", "--out", table, "--calibrate", "0"))
        assert f"file {table} is in use by process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()


def test_profile_refuses_negative_counts():
    assert "--validate must be >= 0, got -1" in one_error(trisr("profile", "--validate", "-1"))
    assert "--calibrate must be >= 0" in one_error(trisr("profile", "--calibrate", "-2"))
    assert "--window-s must be > 0" in one_error(trisr("profile", "--window-s", "0"))


# -- a write that fails ends in one line and leaves the folder usable ---------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (root and a kernel that lets this sandbox mount; else skipped with the reason)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "r+b") as f:
        f.truncate(max(0, filler.stat().st_size - (leave_bytes - free)))
    return filler


def test_a_full_disk_keeps_the_last_good_checkpoint(small_disk):
    import torch

    from trisr.checkpoint import load_checkpoint, save_checkpoint
    from trisr.io import WriteError

    path = small_disk / "run" / "checkpoint.pt"
    save_checkpoint(path, {"phase": "warmup", "step": 1, "w": torch.zeros(1000)})
    fill(small_disk, 64 * 1024)
    with pytest.raises(WriteError, match="cannot write .*checkpoint.pt: No space left on device; the previous version"):
        save_checkpoint(path, {"phase": "warmup", "step": 2, "w": torch.zeros(500_000)})
    assert load_checkpoint(path)["step"] == 1  # the last good checkpoint, whole
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_search_on_a_full_disk_is_one_line_and_the_folder_stays_usable(tiny, small_disk):
    out = small_disk / "run"
    filler = fill(small_disk, 48 * 1024)
    line = one_error(trisr("search", "--config", tiny["cfg"], "--out", out))
    assert "No space left on device" in line and "rerun the command with --resume" in line
    filler.unlink()
    resume = ["--resume"] if (out / "checkpoint.pt").exists() else []
    res = trisr("search", "--config", tiny["cfg"], "--out", out, *resume)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "summary.json").exists()


def test_search_into_a_read_only_folder_is_one_line(tiny, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    line = one_error(trisr("search", "--config", tiny["cfg"], "--out", small_disk / "run"))
    assert "Read-only file system" in line


def test_a_deploy_with_nothing_finished_may_start_over_with_other_settings(tiny, tmp_path):
    """Settings are binding once a stage has finished; before that (a first attempt refused in its table stage),
    the folder holds nothing to resume and new settings start over."""
    from trisr.pipeline.deploy import DEPLOY_FILE, Deploy, DeployRequest
    from trisr.progress import Reporter
    from trisr.search.config import RunConfig

    out = tmp_path / "d"
    out.mkdir()
    (out / DEPLOY_FILE).write_text(json.dumps({"schema_version": 1, "settings": {"latency_ms": 9.0}, "stages": {}}))
    req = DeployRequest("cpu", 1.0, "onnx", RunConfig.load(tiny["cfg"]), out, profile=tiny["lut"], threads=1)
    assert Deploy(req, Reporter()).state["settings"]["latency_ms"] == 1.0
    (out / DEPLOY_FILE).write_text(json.dumps({"schema_version": 1, "settings": {"latency_ms": 9.0}, "stages": {"table": {}}}))
    with pytest.raises(Exception, match="holds a deploy with other settings"):
        Deploy(req, Reporter())

"""Latency tables: profiling in ONNX Runtime and OpenVINO, schema, refusals, calibration, latency search."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trisr.errors import CostTableError, TrisrError
from trisr.profile.lut import LatencyTable, LutEntry, default_lut_path, load_lut
from trisr.profile.profiler import entry_modules, fit_calibration, profile, sample_genotypes, scorecard
from trisr.runtime.base import create_backend
from trisr.runtime.timing import summarize
from trisr.search.config import Phase, RunConfig
from trisr.search.engine import SearchRun
from trisr.space.config import SpaceConfig
from trisr.space.cost import CostModel
from trisr.space.tree import Tree

from helpers import FAST, TINY_SPACE
from helpers import tiny_config as _tiny_config

SPACE = TINY_SPACE
RES = (16, 16)


@pytest.fixture(scope="module")
def luts():
    """A tiny space profiled end to end in ONNX Runtime and in OpenVINO."""
    out = {}
    for name in ("onnxruntime", "openvino"):
        backend = create_backend(name, threads=1)
        out[name] = profile(SPACE, backend, RES, FAST, calibrate=6, validate=4, seed=0), backend
    return out


@pytest.fixture(params=["onnxruntime", "openvino"])
def measured(request, luts):
    return luts[request.param]


def test_profiling_covers_every_entry_in_the_target_runtime(measured):
    lut, backend = measured
    assert set(lut.entries) == set(entry_modules(SPACE, (8, 8)))
    assert all(e.latency_ms > 0 and e.t_x1_ms > 0 and e.n >= 3 for e in lut.entries.values())
    same_width = [k for k in lut.entries if k.startswith("op:") and k.split(":")[2] == k.split(":")[3]]
    assert same_width and all(lut.entries[k].t_x3_ms is not None for k in same_width)
    assert lut.target["backend"] == backend.name and lut.target["version"] == backend.version()
    assert lut.target["threads"] == 1 and lut.resolution == RES
    assert lut.calibration is not None and lut.calibration.n == 6
    card = lut.validation
    assert card["n"] == 4 and {"rmspe", "within_5pct", "within_10pct", "worst", "networks"} <= set(card)
    assert all(n["measured_ms"] > 0 and n["predicted_ms"] > 0 for n in card["networks"])
    dense = card["dense"]  # dense networks (dcnas) are validated apart: their add entry has no calibration network
    assert dense["n"] == 3 and all(n["links"] and max(n["links"]) >= 0 and n["measured_ms"] > 0 for n in dense["networks"])


def test_lut_round_trip_and_refusals(tmp_path, measured):
    lut, backend = measured
    path = lut.save(tmp_path / "lut.json")
    back = load_lut(path)
    assert back.to_dict() == lut.to_dict()
    back.check(SPACE, backend.describe(), RES)
    with pytest.raises(CostTableError, match="search space"):
        back.check(SPACE.replace(nf=16), None, RES)
    with pytest.raises(CostTableError, match="measured at 16x16"):
        back.check(SPACE, None, (32, 32))
    other = dict(backend.describe(), version="0.0.1")
    with pytest.raises(CostTableError, match="version"):
        back.check(SPACE, other, RES)
    with pytest.raises(CostTableError, match="device"):
        back.check(SPACE, dict(backend.describe(), device="jetson"), RES)
    d = lut.to_dict()
    d["schema_version"] = 99
    (tmp_path / "v99.json").write_text(json.dumps(d))
    with pytest.raises(CostTableError, match="schema version"):
        load_lut(tmp_path / "v99.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(CostTableError, match="malformed"):
        load_lut(tmp_path / "junk.json")


def test_missing_entry_is_an_error_never_zero(measured):
    lut, _ = measured
    g = sample_genotypes(SPACE, 1, 0)[0]
    key = lut.genotype_keys(g)[-1]
    broken = LatencyTable.from_dict(lut.to_dict())
    del broken.entries[key]
    with pytest.raises(CostTableError, match="no entry"):
        broken.predict_ms(g)
    with pytest.raises(CostTableError, match="no entry"):
        CostModel(broken.to_cost_table(), SPACE, Tree(1, 1, 1))


def test_cost_table_expectation_equals_calibrated_prediction(measured):
    lut, _ = measured
    model = CostModel(lut.to_cost_table(), SPACE, Tree(SPACE.num_cell_path_search, SPACE.num_up, SPACE.num_stem))
    for g in sample_genotypes(SPACE, 8, 3):
        assert model.genotype_cost(g) == pytest.approx(lut.predict_ms(g), rel=1e-9)


def synthetic_lut(space, seed=0) -> LatencyTable:
    rng = np.random.default_rng(seed)
    entries = {
        k: LutEntry(latency_ms=float(rng.uniform(0.5, 3.0)), fixed_ms=0.1, t_x1_ms=1.0, t_x3_ms=None, p10_ms=0.9, p90_ms=1.1, n=10, cv=0.01, stable=True)
        for k in entry_modules(space, (8, 8))
    }
    return LatencyTable(space=space, resolution=(32, 32), batch=1, target={"backend": "synthetic"}, protocol={}, entries=entries)


def test_calibration_recovers_overhead_and_scale_from_synthetic_data():
    lut = synthetic_lut(SPACE)
    gens = sample_genotypes(SPACE, 12, 1)
    measured = [2.5 + 0.7 * lut.raw_ms(g) for g in gens]
    cal = fit_calibration(lut, gens, measured)
    assert cal.model in ("affine", "per_op")
    lut.calibration = cal
    for g in sample_genotypes(SPACE, 5, 99):
        assert lut.predict_ms(g) == pytest.approx(2.5 + 0.7 * lut.raw_ms(g), rel=1e-6)


def test_calibration_picks_per_op_scales_when_op_types_differ():
    space = SpaceConfig(nf=8, num_cell=3, num_up=1, num_cell_path_search=2, ops_per_cell=3, scale=2)
    lut = synthetic_lut(space, 1)
    truth = {"skip": 0.5, "conv3x3": 1.0, "residual": 1.5, "dwsblock": 3.0, "fixed": 1.0}
    gens = sample_genotypes(space, 40, 2)
    measured = [1.0 + sum(truth[k] * v for k, v in lut.group_sums(g).items()) for g in gens]
    cal = fit_calibration(lut, gens, measured)
    assert cal.model == "per_op" and cal.loo_rmspe["per_op"] < cal.loo_rmspe["affine"]
    for k, v in truth.items():
        assert cal.scales[k] == pytest.approx(v, rel=1e-6)


def test_scorecard_matches_hand_computation():
    card = scorecard([10.0, 11.0, 8.0, 10.4], [10.0, 10.0, 10.0, 10.0])
    assert card["within_5pct"] == 0.5 and card["within_10pct"] == 0.75
    assert card["rmspe"] == pytest.approx(np.sqrt((0 + 0.01 + 0.04 + 0.0016) / 4))
    assert card["worst"][0]["err_pct"] == pytest.approx(-20.0)


def test_timing_summary_drops_slow_windows_and_reports_spread():
    windows = [np.full(20, 2.0), np.full(20, 2.1), np.full(20, 3.3)]  # one window lost a vCPU
    t = summarize(windows, max_spread=0.1)
    assert t.dropped_windows == 1 and t.windows == 3 and t.median_ms == pytest.approx(2.05)
    assert t.stable and t.n == 40


def test_default_lut_name_carries_device_runtime_and_resolution(monkeypatch):
    monkeypatch.delenv("TRISR_PROFILES", raising=False)
    path = default_lut_path({"device": "cpu", "backend": "openvino", "precision": "fp32", "threads": 2}, SPACE, (256, 256))
    assert path.parts[0] == "profiles" and path.name.startswith("cpu-openvino-fp32-t2-256x256-")


def test_profiles_root_is_the_option_then_the_environment_then_dot_profiles(monkeypatch, tmp_path):
    target = {"device": "cpu", "backend": "onnxruntime", "precision": "fp32", "threads": 2}
    monkeypatch.delenv("TRISR_PROFILES", raising=False)
    assert default_lut_path(target, SPACE, (16, 16)).parent == Path("profiles")
    monkeypatch.setenv("TRISR_PROFILES", str(tmp_path / "env"))
    assert default_lut_path(target, SPACE, (16, 16)).parent == tmp_path / "env"
    assert default_lut_path(target, SPACE, (16, 16), tmp_path / "opt").parent == tmp_path / "opt"


# -- latency-constrained search -------------------------------------------------------------------------


def tiny_config(**kw) -> RunConfig:
    base = dict(
        cost_resolution=RES, warmup=Phase(steps=3, lr=1e-3, batch_size=2),
        finetune=Phase(steps=3, lr=1e-3, batch_size=2), checkpoint_every=3,
    )
    base.update(kw)
    return _tiny_config(**base)


def test_search_respects_a_latency_budget(tmp_path):
    lut = synthetic_lut(SPACE)
    gens = sample_genotypes(SPACE, 10, 0)
    lut.calibration = fit_calibration(lut, gens, [0.5 + lut.raw_ms(g) for g in gens])
    lut.resolution = RES
    model = CostModel(lut.to_cost_table(), SPACE, Tree(1, 1, 1))
    budget = model.min_cost() + 0.25 * (max(lut.predict_ms(g) for g in gens) - model.min_cost())
    summary = SearchRun(tiny_config(budget_metric="latency_ms", budget=budget), tmp_path / "run", cost_table=lut.to_cost_table()).run()
    assert summary["cost"]["metric"] == "latency_ms" and summary["cost"]["derived"] <= budget
    with pytest.raises(TrisrError, match=r"below the smallest architecture .* ms at 16x16 LR"):
        SearchRun(tiny_config(budget_metric="latency_ms", budget=0.01), tmp_path / "x", cost_table=lut.to_cost_table())
    with pytest.raises(TrisrError, match="needs a measured latency table"):
        SearchRun(tiny_config(budget_metric="latency_ms", budget=5.0), tmp_path / "y")


def test_derivation_re_aims_when_the_measured_network_misses_the_budget(tmp_path):
    """A table that under-predicts: the runtime (here a synthetic one, 1.3x the table) measures the table's pick
    over the budget, so derivation aims the table lower and derives again until the measurement fits; every
    measurement is recorded in the summary."""
    lut = synthetic_lut(SPACE)
    gens = sample_genotypes(SPACE, 10, 0)
    lut.calibration = fit_calibration(lut, gens, [0.5 + lut.raw_ms(g) for g in gens])
    lut.resolution = RES
    table = lut.to_cost_table()
    model = CostModel(table, SPACE, Tree(1, 1, 1))
    costs = sorted(model.genotype_cost(g) for g in gens)
    budget = costs[len(costs) // 2]
    calls = []

    def slow_runtime(genotype) -> float:
        calls.append(genotype.path)
        return 1.3 * model.genotype_cost(genotype)

    summary = SearchRun(tiny_config(budget_metric="latency_ms", budget=budget), tmp_path / "run", cost_table=table,
                        measure=slow_runtime).run()
    measured = summary["derivation"]["measured"]
    assert len(measured) == len(calls) >= 2 and measured[0]["measured_ms"] > budget
    assert measured[-1]["measured_ms"] <= budget  # the delivered network fits when measured
    assert measured[-1]["digest"] == summary["genotype"]["digest"]
    assert any(step.startswith("measured refit") for step in summary["derivation"]["budget_steps"])
    # a runtime a little faster than the table: measured once, nothing changes
    honest = SearchRun(tiny_config(budget_metric="latency_ms", budget=budget), tmp_path / "honest", cost_table=table,
                       measure=lambda g: 0.9 * model.genotype_cost(g)).run()
    assert len(honest["derivation"]["measured"]) == 1


def test_cli_latency_search_measures_the_derived_network(tmp_path, luts):
    lut, backend = luts["onnxruntime"]
    lut_path = lut.save(tmp_path / "lut.json")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config().to_json())
    model = CostModel(lut.to_cost_table(), SPACE, Tree(1, 1, 1))
    budget = 2.0 * max(lut.predict_ms(g) for g in sample_genotypes(SPACE, 6, 0))
    cmd = [sys.executable, "-m", "trisr.cli", "search", "--config", cfg, "--latency-ms", f"{budget:.4f}", "--profile", lut_path,
           "--out", tmp_path / "run", "--device", "cpu", "--json", "--no-fail"]
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lat = json.loads(proc.stdout)["latency"]
    assert lat["backend"]["backend"] == "onnxruntime" and lat["resolution"] == list(RES)
    measured = lat["measured"]["median_ms"]
    assert measured > 0
    assert lat["budget_ms"] == pytest.approx(budget, abs=1e-4)
    assert measured == sorted(lat["rounds_ms"])[len(lat["rounds_ms"]) // 2]  # judged on the median round
    assert lat["verdict"] == ("PASS" if measured <= lat["budget_ms"] else "FAIL")  # what the numbers imply
    assert lat["error_pct"] == pytest.approx(100 * (lat["predicted_ms"] - measured) / measured)
    assert lat["predicted_ms"] <= budget
    summary = json.loads(proc.stdout)
    shipped = summary["metrics_shipped"]  # the held-out PSNR of what ships, run by the target runtime
    assert shipped["precision"] == "fp32" and shipped["runtime"]["backend"] == "onnxruntime" and shipped["format"] == "onnx"
    assert shipped["verified"] and shipped["psnr_db"] == pytest.approx(shipped["torch_psnr_db"], abs=0.01)  # fp32 ORT == PyTorch
    tiny = [c if c != f"{budget:.4f}" else f"{0.5 * model.min_cost():.6f}" for c in map(str, cmd)]
    tiny[tiny.index(str(tmp_path / "run"))] = str(tmp_path / "r3")
    bad = subprocess.run(tiny, capture_output=True, text=True)
    assert bad.returncode == 2 and "below the smallest architecture" in bad.stderr and "ms at 16x16 LR" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_profile_show_and_errors(tmp_path, luts):
    lut, backend = luts["openvino"]
    path = lut.save(tmp_path / "lut.json")
    show = subprocess.run([sys.executable, "-m", "trisr.cli", "profile", "--show", str(path), "--json"], capture_output=True, text=True)
    assert show.returncode == 0 and json.loads(show.stdout)["entries"].keys() == lut.entries.keys()
    assert "entries @ 16x16 LR" in show.stderr
    missing = subprocess.run([sys.executable, "-m", "trisr.cli", "profile", "--show", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    gpu = subprocess.run([sys.executable, "-m", "trisr.cli", "profile", "--target", "cuda", "--backend", "tensorrt"], capture_output=True, text=True)
    assert gpu.returncode == 2 and "TensorRT" in gpu.stderr and "Traceback" not in gpu.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_cuda_profile_path():
    backend = create_backend("torch", "cuda")
    lut = profile(SPACE, backend, RES, FAST, calibrate=3)
    assert lut.target["gpu"] and all(e.latency_ms > 0 for e in lut.entries.values())


def test_jetson_clock_state_parsing():
    from trisr.runtime.devices import clocks_state

    pinned = "cpu0: Online=1 Governor=schedutil MinFreq=1984000 MaxFreq=1984000 CurrentFreq=1984000\nGPU MinFreq=918000000 MaxFreq=918000000"
    floating = "cpu0: Online=1 Governor=schedutil MinFreq=115200 MaxFreq=1984000 CurrentFreq=729600"
    assert clocks_state(pinned) == "pinned" and clocks_state(floating) == "floating" and clocks_state("") == "unknown"


HAS_BF16 = bool({"avx512_bf16", "amx_bf16"} & set(__import__("trisr.runtime.devices", fromlist=["cpu_isa"]).cpu_isa()))


def test_openvino_default_precision_is_the_plugins_own():
    """Without --precision a table is measured at what OpenVINO itself runs on this CPU (bf16 where the CPU has
    native BF16), and says so."""
    ov = pytest.importorskip("openvino")
    own = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    backend = create_backend("openvino", threads=1)
    assert backend.precision == {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}[own]
    assert backend.describe()["precision"] == backend.precision and "isa" in backend.describe()


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch, tmp_path):
    pytest.importorskip("openvino")
    import trisr.runtime.base as base
    from typer.testing import CliRunner

    from trisr.cli import app
    from trisr.runtime.base import RuntimeUnavailable

    monkeypatch.setattr(base, "cpu_isa", lambda: ["avx2", "fma"])
    with pytest.raises(RuntimeUnavailable, match="AVX512-BF16 or AMX-BF16"):
        create_backend("openvino", threads=1, precision="bf16")
    res = CliRunner().invoke(app, ["profile", "--backend", "openvino", "--precision", "bf16", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "AVX512-BF16" in res.output and "Traceback" not in res.output
    assert create_backend("openvino", threads=1, precision="fp32").precision == "fp32"  # fp32 always runs


def test_a_table_of_another_precision_is_refused(luts):
    lut, backend = luts["openvino"]
    other = "fp32" if lut.target["precision"] != "fp32" else "bf16"
    with pytest.raises(CostTableError, match="precision"):
        lut.check(SPACE, {**backend.describe(), "precision": other}, RES)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has neither AVX512-BF16 nor AMX-BF16")
def test_bf16_table_and_runner_on_a_tiny_space():
    pytest.importorskip("openvino")
    backend = create_backend("openvino", threads=1, precision="bf16")
    lut = profile(SPACE, backend, RES, FAST, calibrate=4, validate=0, seed=0)
    assert lut.target["precision"] == "bf16" and all(e.latency_ms > 0 for e in lut.entries.values())
    from trisr.runtime.base import load_runner
    from trisr.space.derived import DerivedNet

    net = DerivedNet(sample_genotypes(SPACE, 1, 0)[0]).eval()
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        y = load_runner(backend, net, x.shape, Path(tmp)).run(x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    err = np.abs(y - ref).max()
    assert 0 < err < 0.05  # bf16 differs from fp32 (it really ran bf16), by bf16's 8-bit mantissa at most


def test_search_precision_needs_a_latency_budget(tmp_path):
    from typer.testing import CliRunner

    from trisr.cli import app

    res = CliRunner().invoke(app, ["search", "--macs-g", "1", "--precision", "bf16", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--precision applies to --latency-ms" in res.output


HAS_VNNI = bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(__import__("trisr.runtime.devices", fromlist=["cpu_isa"]).cpu_isa()))
HAS_NNCF = __import__("importlib").util.find_spec("nncf") is not None


INT8_BACKENDS = [
    pytest.param("openvino", marks=pytest.mark.skipif(not HAS_NNCF, reason="nncf not installed (pip install -e '.[int8]')")),
    "onnxruntime",
]


@pytest.mark.skipif(not HAS_VNNI, reason="this CPU has no VNNI (AVX512-VNNI, AVX-VNNI or AMX-INT8)")
@pytest.mark.parametrize("name", INT8_BACKENDS)
def test_int8_entries_are_quantized_with_the_exports_first_last_policy(tmp_path, name):
    """An int8 table's op entries run quantized by the export's own quantizer (NNCF for OpenVINO, ORT's QDQ
    quantizer for ONNX Runtime); the head keeps its (the network's first) convolution float, as the int8 export
    does — checked on the outputs, not on the timings."""
    from trisr.profile.profiler import ENTRY_KEEP_FLOAT
    from trisr.runtime.base import load_runner

    int8 = create_backend(name, threads=1, precision="int8")
    fp32 = create_backend(name, threads=1, precision="fp32")
    mods = entry_modules(SPACE, (8, 8))
    rng = np.random.default_rng(0)

    def outputs(key):
        module, ci, _ = mods[key]
        x = rng.random((1, ci, 16, 16), dtype=np.float32)
        keep = ENTRY_KEEP_FLOAT.get(key, ())
        a = load_runner(int8, module.eval(), x.shape, tmp_path / f"{key}-q", keep_float=keep).run(x)
        b = load_runner(fp32, module.eval(), x.shape, tmp_path / f"{key}-f").run(x)
        return np.abs(a - b).max() / (np.abs(b).max() + 1e-12)

    op = next(k for k in mods if k.startswith("op:conv3x3"))
    assert outputs(op) > 1e-3  # quantized: int8 rounding shows
    assert outputs("head") < 1e-4  # kept float, like the first convolution of an int8 artifact
    lut = profile(SPACE, int8, RES, FAST, calibrate=4, validate=0, seed=0)
    assert lut.target["precision"] == "int8" and all(e.latency_ms > 0 for e in lut.entries.values())


@pytest.mark.parametrize("name", ["openvino", "onnxruntime"])
def test_int8_is_refused_on_a_cpu_without_vnni(monkeypatch, name):
    pytest.importorskip(name)
    import trisr.runtime.base as base
    from trisr.runtime.base import RuntimeUnavailable

    monkeypatch.setattr(base, "cpu_isa", lambda: ["avx2", "fma", "avx512f"])
    with pytest.raises(RuntimeUnavailable, match="VNNI"):
        create_backend(name, threads=1, precision="int8")


@pytest.mark.skipif(not HAS_VNNI, reason="this CPU has no VNNI (AVX512-VNNI, AVX-VNNI or AMX-INT8)")
def test_ort_int8_entries_take_and_give_uint8_tensors(tmp_path):
    """Inside an int8 network activations pass between layers as uint8: an ONNX Runtime int8 profiling entry
    reads and writes the quantized tensors (its boundary Quantize/DequantizeLinear cut off), and its outputs are
    still the quantized layer's, to one quantization step."""
    import onnx

    from trisr.runtime.base import load_runner
    from trisr.runtime.onnx_io import export_onnx
    from trisr.runtime.onnxruntime import uint8_boundaries
    from trisr.export.exporters import quantize_onnx_qdq

    module, ci, _ = entry_modules(SPACE, (8, 8))[next(k for k in entry_modules(SPACE, (8, 8)) if k.startswith("op:residual"))]
    x = np.random.default_rng(0).random((1, ci, 16, 16), dtype=np.float32)
    export_onnx(module.eval(), x.shape, tmp_path / "f.onnx")
    quantize_onnx_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", [x], ())
    path, (quant_in, dequant_out) = uint8_boundaries(tmp_path / "q.onnx", tmp_path / "io.onnx")
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert quant_in(x).dtype == np.uint8
    int8 = create_backend("onnxruntime", threads=1, precision="int8")
    whole = load_runner(int8, module.eval(), x.shape, tmp_path / "a").run(x)
    entry = load_runner(int8, module.eval(), x.shape, tmp_path / "b", entry_io=True, keep_float=()).run(x)
    step = float(np.abs(np.diff(np.unique(whole))).min())  # one level of the output's quantization grid
    assert np.abs(whole - entry).max() <= step * 1.01


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has neither AVX512-BF16 nor AMX-BF16")
def test_bf16_entries_run_with_bf16_boundary_tensors(tmp_path):
    """A bf16 profiling entry takes and gives bf16 tensors (as inside a bf16 network); its outputs are still the
    layer's, to bf16 rounding."""
    pytest.importorskip("openvino")
    from trisr.runtime.base import load_runner

    backend = create_backend("openvino", threads=1, precision="bf16")
    key = next(k for k in entry_modules(SPACE, (8, 8)) if k.startswith("op:conv3x3"))
    module, ci, _ = entry_modules(SPACE, (8, 8))[key]
    x = np.random.default_rng(0).random((1, ci, 16, 16), dtype=np.float32)
    y = load_runner(backend, module.eval(), x.shape, tmp_path, entry_io=True).run(x)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    rel = np.abs(y - ref).max() / np.abs(ref).max()
    assert y.shape == ref.shape and 0 < rel < 0.05

"""Export, verification, artifact loading and benchmarking (trisr.export), on CPU.

A small derived network with random weights is saved as a run folder; every export is loaded back through
its sidecar and verified against PyTorch on the embedded held-out images. TensorRT builds run only where
TensorRT and a GPU exist; the rest of the TensorRT path (sidecar refusal, missing-runtime message) does not
need it.
"""

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from trisr.cli import app
from trisr.data.pairs import load_pairs
from trisr.data.images import load_image, save_image
from trisr.errors import TrisrError
from trisr.export import lut as lut_mod
from trisr.export.artifacts import load_artifact
from trisr.export.bench import bench_protocol, bench_run, failed_rows
from trisr.export.exporters import ExportOptions
from trisr.export.formats import FORMATS, get_format, help_text, parse_format_list
from trisr.export.pipeline import VERIFIED, VERIFY_FAILED, ExportRequest, export_run, write_artifact
from trisr.export.shapes import InputSpec
from trisr.export.sidecar import check_files, check_trt_target, read_sidecar, sha256_file, sidecar_path
from trisr.export.tiling import upscale_tiled
from trisr.export.verify import THRESHOLDS, TorchReference, verify
from trisr.rundir import load_model, save_model
from trisr.space.config import SpaceConfig
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype

HAS_NNCF = importlib.util.find_spec("nncf") is not None
HAS_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()
SHAPE = (96, 96)
runner = CliRunner()


def tiny_genotype() -> Genotype:
    space = SpaceConfig(nf=16, num_cell=2, num_up=1, num_cell_path_search=1, scale=2)
    return Genotype(space, "CCU", [[1, 2, 3, 0, 1], [3, 1, 2, 1, 0]], [[0, 1, 1, 0], [1, 0, 1, 1]])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("runs") / "tiny-x2"
    save_model(out, DerivedNet(tiny_genotype()))
    return out


@pytest.fixture(scope="module")
def model(run_dir):
    return load_model(run_dir)


@pytest.fixture(scope="module")
def reference(model):
    return TorchReference(model, load_pairs(None, 2, "val"), 2)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def exports(run_dir, model, reference, out_dir):
    """Export results, made once per (format, precision, dynamic) and shared between tests."""
    cache: dict = {}

    def get(fmt: str, precision: str, spec: InputSpec = InputSpec(SHAPE)):
        key = (fmt, precision, spec)
        if key not in cache:
            req = ExportRequest(run_dir, get_format(fmt), precision, spec, out_dir, ExportOptions(calib_samples=24))
            cache[key] = export_run(req, model, reference)
        return cache[key]

    return get


# -- the format table ---------------------------------------------------------------------------------------


def test_format_table_drives_help_and_validation():
    text = help_text()
    for fmt in FORMATS:
        assert fmt.name in text and fmt.suffix in text
        assert fmt.default_precision in fmt.precisions
    assert get_format("tensorrt").name == "trt" and get_format("OV").name == "openvino"
    with pytest.raises(TrisrError, match="unknown format 'tflite'; choose onnx, openvino, trt"):
        get_format("tflite")
    with pytest.raises(TrisrError, match="supports precision fp32, int8, not 'fp16'"):
        get_format("onnx").check_precision("fp16")
    with pytest.raises(TrisrError, match="--workspace-gb applies to format trt, not onnx"):
        get_format("onnx").check_options({"workspace_gb": True, "calib": True, "dynamic": True})
    assert [f.name for f in parse_format_list("openvino,onnx,ov")] == ["openvino", "onnx"]


def test_int8_names_its_extra_when_nncf_is_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    reason = get_format("openvino").missing("int8")
    assert "nncf" in reason and "pip install 'trisr[int8]'" in reason
    assert get_format("openvino").missing("fp32") is None


def test_calibration_patches_from_a_folder(tmp_path):
    from trisr.export.calibration import calibration_images, calibration_patches

    rng = np.random.default_rng(0)
    save_image(tmp_path / "a.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    save_image(tmp_path / "b.png", rng.integers(0, 256, (120, 90, 3), dtype=np.uint8))
    images, source = calibration_images(tmp_path, 2)
    assert len(images) == 2 and str(tmp_path) in source
    patches = calibration_patches(images, (64, 64), 5)
    assert len(patches) == 5 and all(p.shape == (1, 3, 64, 64) and p.dtype == np.float32 for p in patches)
    assert all(0.0 <= p.min() and p.max() <= 1.0 for p in patches)
    with pytest.raises(TrisrError, match="calibration folder not found"):
        calibration_images(tmp_path / "missing", 2)


def test_tiling_stitches_exactly():
    rng = np.random.default_rng(0)
    lr = rng.random((1, 3, 37, 150), dtype=np.float32)
    nearest = lambda x: np.repeat(np.repeat(x, 3, axis=2), 3, axis=3)  # noqa: E731 - a pointwise "network"
    for tile, halo in (((16, 40), 4), ((64, 64), 8), ((37, 150), 0)):
        np.testing.assert_array_equal(upscale_tiled(nearest, lr, tile, 3, halo), nearest(lr))


# -- export + verification ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt,precision",
    [
        ("onnx", "fp32"),
        ("onnx", "int8"),
        ("openvino", "fp32"),
        ("openvino", "fp16"),
        pytest.param("openvino", "int8", marks=pytest.mark.skipif(not HAS_NNCF, reason="nncf not installed (pip install 'trisr[int8]')")),
    ],
)
def test_export_is_verified_against_torch(exports, model, fmt, precision):
    result = exports(fmt, precision)
    v = result.verification
    assert result.status == VERIFIED, result.reason
    limits = THRESHOLDS[precision]
    if limits.max_abs is not None:
        assert v.max_abs <= limits.max_abs
    assert v.psnr_vs_torch_db >= limits.min_psnr_vs_torch_db
    assert [i.name for i in v.images] == ["chelsea", "coffee"]
    assert v.psnr_loss_db == pytest.approx(v.torch_psnr_db - v.psnr_db)

    side = read_sidecar(result.artifact)
    assert side["schema_version"] == 1 and side["format"] == fmt and side["precision"] == precision
    assert side["genotype_digest"] == model.genotype.digest() and side["scale"] == 2
    assert side["input"]["shape"] == [1, 3, *SHAPE] and side["input"]["dynamic"] is None
    assert side["output"]["shape"] == [1, 3, 2 * SHAPE[0], 2 * SHAPE[1]]
    assert side["opset"] == 17 and side["versions"]["onnx"] and side["versions"]["torch"]
    assert side["verification"]["passed"] is True and side["verification"]["max_abs"] == v.max_abs
    for rec in side["files"]:  # the sidecar describes the bytes on disk, which nothing rewrote afterwards
        path = result.artifact.parent / rec["name"]
        assert sha256_file(path) == rec["sha256"] and path.stat().st_size == rec["bytes"]


def test_onnx_artifact_is_plain_onnx_with_metadata(exports, model):
    import onnxruntime as ort

    path = exports("onnx", "fp32").artifact
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["genotype_digest"] == model.genotype.digest() and props["scale"] == "2"
    assert proto.opset_import[0].version == 17
    assert "DepthToSpace" in {n.op_type for n in proto.graph.node}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # a standard tool opens it
    x = np.random.default_rng(1).random((1, 3, *SHAPE), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], ref, atol=1e-4)


def test_openvino_precisions_differ_as_documented(exports):
    fp32, fp16 = exports("openvino", "fp32"), exports("openvino", "fp16")
    assert fp32.details["compress_to_fp16"] is False and fp16.details["compress_to_fp16"] is True
    bin32, bin16 = (r.artifact.with_suffix(".bin").stat().st_size for r in (fp32, fp16))
    assert bin16 < 0.6 * bin32  # FP16-compressed weights take half the space
    assert fp32.verification.max_abs < fp16.verification.max_abs


@pytest.mark.skipif(not HAS_NNCF, reason="nncf not installed (pip install 'trisr[int8]')")
def test_int8_is_quantized_and_reports_psnr_lost(exports):
    result = exports("openvino", "int8")
    assert "FakeQuantize" in result.artifact.read_text()
    info = result.details["int8"]
    assert info["samples"] == 24 and "embedded training photos" in info["calibration"]
    assert info["kept_float"] == ["/head/head.0/Conv/WithoutBiases", "/tail/conv/Conv/WithoutBiases"]
    side = read_sidecar(result.artifact)["verification"]
    assert side["psnr_loss_db"] == pytest.approx(side["torch_psnr_db"] - side["psnr_db"])


def test_onnx_int8_is_qdq_with_the_first_last_policy_and_keeps_metadata(exports, model):
    """ONNX Runtime int8: a plain QDQ ONNX file (any ONNX tool opens it), per-channel int8 weights, the first and
    last convolution float like the OpenVINO int8 export, the metadata of the fp32 file carried over."""
    result = exports("onnx", "int8")
    proto = onnx.load(str(result.artifact))
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    info = result.details["int8"]
    assert info["kept_float"] == ["/head/head.0/Conv", "/tail/conv/Conv"] and info["samples"] == 24
    inputs = {n.name: n.input for n in proto.graph.node}
    producers = {o: n for n in proto.graph.node for o in n.output}

    def weight_is_quantized(conv: str) -> bool:  # weight read through a DequantizeLinear of an int8 initializer
        src = producers.get(inputs[conv][1])
        return src is not None and src.op_type == "DequantizeLinear"

    convs = [n.name for n in proto.graph.node if n.op_type == "Conv"]
    assert not weight_is_quantized(convs[0]) and not weight_is_quantized(convs[-1])
    assert all(weight_is_quantized(c) for c in convs[1:-1])
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["genotype_digest"] == model.genotype.digest()
    assert read_sidecar(result.artifact)["precision"] == "int8"


def test_dynamic_onnx_is_verified_at_two_shapes(exports):
    spec = InputSpec(SHAPE, dynamic=True, min_hw=(32, 32), max_hw=(160, 160))
    result = exports("onnx", "fp32", spec)
    assert result.status == VERIFIED, result.reason
    shapes = [tuple(s.hw) for s in result.verification.shapes]
    assert len(shapes) == 2 and shapes[0] == SHAPE and shapes[1][0] != shapes[1][1]
    assert all(s.max_abs <= 1e-4 for s in result.verification.shapes)
    proto = onnx.load(str(result.artifact))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param == "height" and dims[3].dim_param == "width"
    side = read_sidecar(result.artifact)
    assert side["input"]["dynamic"] == {"min": [1, 3, 32, 32], "opt": [1, 3, *SHAPE], "max": [1, 3, 160, 160]}
    art = load_artifact(result.artifact)
    assert art.run(np.zeros((1, 3, 40, 70), np.float32)).shape == (1, 3, 80, 140)
    with pytest.raises(TrisrError, match=r"input 200x64 is outside the artifact's range 32x32\.\.160x160"):
        art.run(np.zeros((1, 3, 200, 64), np.float32))


def test_verification_failure_is_reported(exports, reference):
    """The ONNX file of another network (same genotype, other weights) must fail against this reference."""
    torch.manual_seed(1)
    other = DerivedNet(tiny_genotype()).eval()
    art = load_artifact(exports("onnx", "fp32").artifact)
    other_ref = TorchReference(other, reference.pairs, 2)
    v = verify(art.run, [SHAPE], other_ref, "fp32")
    assert not v.passed and any("max|Δ|" in f for f in v.failures) and v.max_abs > 1e-2


def test_export_cli_exits_1_when_verification_fails(run_dir, out_dir, monkeypatch):
    monkeypatch.setitem(THRESHOLDS, "fp32", THRESHOLDS["fp32"].__class__(0.0, float("inf"), 0.0))
    res = runner.invoke(app, ["export", str(run_dir), "-f", "onnx", "--shape", "96x96", "--out", str(out_dir / "fail"), "--json"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert report["status"] == VERIFY_FAILED and report["verification"]["passed"] is False
    assert "PSNR vs torch" in report["reason"]
    assert read_sidecar(Path(report["artifact"]))["verification"]["passed"] is False


# -- refusals ------------------------------------------------------------------------------------------------


def test_trt_sidecar_mismatch_is_refused():
    built = {"gpu": "NVIDIA Jetson Orin", "compute_capability": "8.7", "tensorrt": "10.3.0"}
    check_trt_target(built, dict(built), "m.engine")  # same target: accepted
    for key, found in (("gpu", "NVIDIA A100"), ("compute_capability", "8.0"), ("tensorrt", "10.7.0")):
        with pytest.raises(TrisrError) as err:
            check_trt_target(built, {**built, key: found}, "m.engine")
        msg = str(err.value)
        assert f"built for {key} {built[key]!r}" in msg and repr(found) in msg
        assert "rebuild on target: trisr export" in msg and "\n" not in msg
    with pytest.raises(TrisrError, match="does not record the build gpu"):
        check_trt_target({}, built, "m.engine")


def test_changed_or_undescribed_artifacts_are_refused(exports, tmp_path):
    src = exports("onnx", "fp32").artifact
    copy = tmp_path / src.name
    copy.write_bytes(src.read_bytes())
    with pytest.raises(TrisrError, match="no sidecar"):
        load_artifact(copy)
    sidecar_path(copy).write_text(sidecar_path(src).read_text())
    check_files(copy, read_sidecar(copy))
    copy.write_bytes(src.read_bytes() + b"\0")
    with pytest.raises(TrisrError, match="sha256 mismatch"):
        load_artifact(copy)
    with pytest.raises(TrisrError, match="not a known artifact"):
        load_artifact(sidecar_path(copy))


def test_trt_engine_is_byte_clean_and_refused_on_another_gpu(run_dir, model, tmp_path, monkeypatch):
    """The TensorRT path up to the engine bytes, with the builder and the live target stubbed."""
    import trisr.export.sidecar as sidecar_mod
    import trisr.runtime.tensorrt as trt_mod

    built = {"gpu": "NVIDIA Jetson AGX Orin", "compute_capability": "8.7", "tensorrt": "10.3.0", "cuda": "12.6",
             "cudnn": 90300, "jetson": {"l4t": "R36 (release), REVISION: 4.3"}}
    plan = b"\x00engine-plan\xff" * 16
    calls = {}

    def fake_build(onnx_path, input_shape, precision, workspace_gb, cache_dir, dynamic, **calibration):
        calls.update(ops={n.op_type for n in onnx.load(str(onnx_path)).graph.node}, precision=precision, dynamic=dynamic)
        return plan

    monkeypatch.setattr(trt_mod, "build_engine", fake_build)
    monkeypatch.setattr(sidecar_mod, "trt_target", lambda: dict(built))
    spec = InputSpec(SHAPE, dynamic=True, min_hw=(32, 32), max_hw=(160, 160))
    written = write_artifact(ExportRequest(run_dir, get_format("trt"), "fp16", spec, tmp_path), model)
    assert written.path.suffix == ".engine" and written.path.read_bytes() == plan  # no header, no metadata
    profile = ((1, 3, 32, 32), (1, 3, *SHAPE), (1, 3, 160, 160))
    assert calls == {"ops": calls["ops"], "precision": "fp16", "dynamic": profile} and "DepthToSpace" in calls["ops"]
    side = read_sidecar(written.path)
    assert side["details"]["target"] == built and side["details"]["optimization_profile"] == [list(p) for p in profile]

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: real("json") if name == "tensorrt" else real(name, *a))
    monkeypatch.setattr(sidecar_mod, "trt_target", lambda: {**built, "gpu": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"})
    with pytest.raises(TrisrError, match=r"built for gpu 'NVIDIA Jetson AGX Orin' but this system has 'NVIDIA GeForce RTX 4090'"):
        load_artifact(written.path, "cuda")
    monkeypatch.setattr(sidecar_mod, "trt_target", lambda: {**built, "tensorrt": "10.7.0"})
    with pytest.raises(TrisrError, match=r"built for tensorrt '10.3.0' but this system has '10.7.0'; rebuild on target"):
        load_artifact(written.path, "cuda")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_cli_trt_without_tensorrt_is_one_line(run_dir, tmp_path):
    res = runner.invoke(app, ["export", str(run_dir), "--format", "trt", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "tensorrt is not installed" in res.output
    assert not any(tmp_path.iterdir())  # refused before any work


def test_cli_unknown_format_and_bad_options_are_one_line(run_dir, tmp_path):
    for args, text in (
        (["--format", "tflite"], "unknown format 'tflite'"),
        (["--format", "onnx", "--calib", str(tmp_path)], "--calib and --keep-float apply to --precision int8"),
        (["--format", "onnx", "--workspace-gb", "4"], "--workspace-gb applies to format trt, not onnx"),
        (["--format", "openvino", "--keep-float", "first"], "apply to --precision int8"),
        (["--format", "onnx", "--min", "16x16"], "add --dynamic"),
        (["--format", "onnx", "--dynamic", "--min", "300x300"], "min <= opt <= max"),
    ):
        res = runner.invoke(app, ["export", str(run_dir), *args, "--out", str(tmp_path)])
        assert res.exit_code == 2 and text in res.output and res.output.count("\n") == 1, res.output


# -- bench ---------------------------------------------------------------------------------------------------


class FakeLut:
    target = {"backend": "onnxruntime", "precision": "fp32"}
    resolution = SHAPE

    @staticmethod
    def predict_ms(genotype):
        return 5.0


def test_bench_produces_every_column(run_dir, out_dir, monkeypatch, tmp_path):
    fake = types.ModuleType("trisr.profile.lut")
    fake.load_lut = lambda path: FakeLut()
    monkeypatch.setitem(sys.modules, "trisr.profile.lut", fake)
    lut_file = tmp_path / "lut.json"
    lut_file.write_text("{}")
    res = runner.invoke(app, [
        "bench", str(run_dir), "--format", "onnx,openvino,trt", "--shape", "96x96", "--time-s", "0.02",
        "--reps", "2", "--threads", "1", "--out", str(out_dir / "bench"), "--lut", str(lut_file), "--json", "--peak-n", "128",
    ])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    # The matrix-product references: one per runtime/precision the rows ran at, each row against its precision's best.
    peaks = {(p["backend"], p["precision"]) for p in report["peaks"]}
    assert {("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32")} <= peaks
    best = max(p["gflop_s"] for p in report["peaks"] if p["precision"] == "fp32")
    assert report["schema_version"] == 1 and report["device"]["cpu"] and report["versions"]["onnxruntime"]
    assert report["macs"] > 0 and report["lut"]["predicted_ms"] == 5.0
    rows = {r["format"]: r for r in report["rows"]}
    assert list(rows) == ["torch", "onnx", "openvino", "trt"]
    for name in ("torch", "onnx", "openvino"):
        r = rows[name]
        assert r["latency_median_ms"] > 0 and r["latency_p90_ms"] >= r["latency_median_ms"] * 0.5
        assert len(r["latency_rep_medians_ms"]) == 2 and r["runs"] >= 2
        assert r["throughput_img_s"] == pytest.approx(1000 / r["latency_median_ms"])
        assert r["psnr_db"] > 0 and r["compile_s"] is not None and r["runtime"]["threads"] == 1
        assert r["attainable_gflop_s"] == pytest.approx(best) and r["attainable_pct"] == pytest.approx(100 * r["achieved_gflop_s"] / best)
    for name in ("onnx", "openvino"):
        r = rows[name]
        assert r["status"] == VERIFIED and r["size_mb"] > 0 and r["export_s"] > 0 and r["max_abs"] <= 1e-4
        assert Path(r["artifact"]).is_file()
    # The LUT (ONNX Runtime fp32) applies to the ONNX row only.
    onnx_row = rows["onnx"]
    assert onnx_row["lut_predicted_ms"] == 5.0
    assert onnx_row["lut_error_pct"] == pytest.approx(100 * (5.0 - onnx_row["latency_median_ms"]) / onnx_row["latency_median_ms"])
    assert rows["openvino"]["lut_predicted_ms"] is None and rows["torch"]["lut_error_pct"] is None
    if not HAS_TRT:
        assert rows["trt"]["status"] == "unavailable" and rows["trt"]["reason"]
    for col in ("LUT err", "p90 ms", "median ms", "img/s", "PSNR dB", "ΔPSNR dB", "size MB", "compile s", "% attain."):
        assert col in res.stderr


def test_bench_keeps_going_when_a_format_fails(run_dir, out_dir, monkeypatch):
    import trisr.export.exporters as exporters

    def broken(*args, **kwargs):
        raise RuntimeError("\x1b[31mconverter crashed\x1b[0m\nsecond line")

    monkeypatch.setattr(exporters, "export_openvino_artifact", broken)
    report = bench_run(run_dir, parse_format_list("openvino,onnx"), None, InputSpec(SHAPE), "cpu", 1,
                       bench_protocol(0.01), 1, out_dir / "bench-fail")
    rows = {r["format"]: r for r in report["rows"]}
    assert rows["openvino"]["status"] == "export failed"
    assert rows["openvino"]["reason"] == "RuntimeError: converter crashed"  # one line, no ANSI codes
    assert rows["onnx"]["status"] == VERIFIED and rows["onnx"]["latency_median_ms"] > 0
    assert [r["format"] for r in failed_rows(report)] == ["openvino"]


def test_lut_column_is_empty_without_lut():
    g = tiny_genotype()
    assert lut_mod.predict_latency_ms(g, None) is None


def test_lut_prediction_reads_a_real_latency_table(tmp_path):
    lut_api = pytest.importorskip("trisr.profile.lut")
    g = tiny_genotype()
    base = lut_api.LatencyTable(g.space, SHAPE, 1, {"backend": "openvino", "precision": "fp32", "threads": 2}, {}, {})
    keys = base.genotype_keys(g)
    entries = {k: lut_api.LutEntry(1.0, 0.0, 1.0, None, 1.0, 1.0, 5, 0.0, True) for k in keys}
    cal = lut_api.Calibration("affine", 0.5, {grp: 2.0 for grp in lut_api.groups(g.space)}, 1, {})
    path = lut_api.LatencyTable(g.space, SHAPE, 1, base.target, {}, entries, cal).save(tmp_path / "lut.json")
    pred = lut_mod.lut_prediction(g, path, SHAPE)
    assert pred.predicted_ms == pytest.approx(0.5 + 2.0 * len(keys)) == lut_mod.predict_latency_ms(g, path)
    assert pred.applies_to("openvino", "fp32", 2) and not pred.applies_to("onnxruntime", "fp32", 2)
    with pytest.raises(TrisrError, match="measured at 96x96 LR, but bench runs 128x128"):
        lut_mod.lut_prediction(g, path, (128, 128))


# -- upscale with an artifact --------------------------------------------------------------------------------


def test_upscale_accepts_an_onnx_artifact(exports, run_dir, tmp_path):
    lr = load_pairs(None, 2, "val")[0].lr[:70, :110]  # smaller than the artifact's 96x96: padded
    img = save_image(tmp_path / "in.png", lr)
    artifact = exports("onnx", "fp32").artifact
    res_a = runner.invoke(app, ["upscale", str(artifact), str(img), "-o", str(tmp_path / "a.png")])
    res_r = runner.invoke(app, ["upscale", str(run_dir), str(img), "-o", str(tmp_path / "r.png"), "--device", "cpu"])
    assert res_a.exit_code == 0 and res_r.exit_code == 0, res_a.output + res_r.output
    a, r = load_image(tmp_path / "a.png"), load_image(tmp_path / "r.png")
    assert a.shape == r.shape == (140, 220, 3)
    # Tiles see edge-padded borders where the run folder sees zero padding: equal away from the far edges.
    assert np.abs(a[:100, :180].astype(int) - r[:100, :180]).max() <= 1


# -- TensorRT (only where it exists) -------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_TRT, reason="TensorRT and a CUDA GPU are needed for a real engine build")
def test_trt_engine_builds_and_verifies(exports):
    result = exports("trt", "fp16")
    assert result.status == VERIFIED, result.reason
    target = read_sidecar(result.artifact)["details"]["target"]
    assert target["gpu"] and target["compute_capability"] and target["tensorrt"]


def test_trt_int8_build_uses_a_minmax_calibrator_and_its_cache(tmp_path, monkeypatch):
    """Contract test of the TensorRT 10 INT8 builder sequence against a stub module using only documented names."""
    import types

    import trisr.runtime.tensorrt as trt_mod

    calls = []

    class Flag:
        FP16, INT8 = "FP16", "INT8"

    class Config:
        int8_calibrator = None

        def set_memory_pool_limit(self, pool, n):
            calls.append(("workspace", n))

        def set_flag(self, flag):
            calls.append(("flag", flag))

    class Builder:
        def __init__(self, logger):
            self.config = Config()

        def create_network(self, flags):
            calls.append(("network", flags))
            return object()

        def create_builder_config(self):
            return self.config

        def build_serialized_network(self, network, config):
            cal = config.int8_calibrator
            calls.append(("calibrator", type(cal).__name__, cal.get_batch_size(), cal.read_calibration_cache()))
            cal.write_calibration_cache(b"table")
            return b"plan"

    class Parser:
        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return True

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    stub = types.SimpleNamespace(
        __version__="10.3.0", Logger=Logger, Builder=Builder, OnnxParser=Parser, BuilderFlag=Flag,
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        IInt8MinMaxCalibrator=type("IInt8MinMaxCalibrator", (), {"__init__": lambda self: None}),
    )
    monkeypatch.setattr(trt_mod, "import_tensorrt", lambda: stub)
    cache = tmp_path / "m.engine.calib"
    batches = [np.zeros((1, 3, 8, 8), np.float32)]
    plan = trt_mod.build_engine(tmp_path / "m.onnx", (1, 3, 8, 8), "int8", calib_batches=batches, calib_cache=cache)
    assert plan == b"plan" and ("flag", "INT8") in calls and ("flag", "FP16") in calls and ("network", 0) in calls
    assert ("calibrator", "MinMaxCalibrator", 1, None) in calls and cache.read_bytes() == b"table"
    calls.clear()  # the second build reads the cached table instead of calibrating again
    trt_mod.build_engine(tmp_path / "m.onnx", (1, 3, 8, 8), "int8", calib_cache=cache)
    assert ("calibrator", "MinMaxCalibrator", 1, b"table") in calls
    with pytest.raises(TrisrError, match="needs calibration images"):
        trt_mod.build_engine(tmp_path / "m.onnx", (1, 3, 8, 8), "int8", calib_cache=tmp_path / "none.calib")
    stub.__version__ = "11.4.0"
    with pytest.raises(TrisrError, match="no FP16/INT8 builder flags"):
        trt_mod.build_engine(tmp_path / "m.onnx", (1, 3, 8, 8), "int8", calib_batches=batches)


def _has_bf16() -> bool:
    from trisr.runtime.devices import cpu_isa

    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_isa()))


@pytest.mark.skipif(not _has_bf16(), reason="this CPU has neither AVX512-BF16 nor AMX-BF16")
def test_openvino_bf16_artifact_runs_at_bf16_and_is_verified(run_dir, tmp_path):
    """An OpenVINO bf16 artifact is the fp32 IR run with the bf16 hint: the runtime says bf16, the numbers
    differ from PyTorch by bf16 rounding (not zero, within the bf16 thresholds) and the sidecar says bf16."""
    result = export_run(ExportRequest(run_dir, get_format("openvino"), "bf16", InputSpec((32, 32)), tmp_path))
    assert result.ok, result.reason
    assert result.model.runtime_precision() == "bf16" and result.model.describe()["precision"] == "bf16"
    assert 0 < result.verification.max_abs <= THRESHOLDS["bf16"].max_abs
    assert read_sidecar(result.artifact)["precision"] == "bf16"


def test_matmul_reference_computes_the_product_and_picks_the_best_per_precision(tmp_path):
    import onnxruntime as ort

    from trisr.export.peak import Peak, attainable, matmul_onnx, measure_peaks

    path = matmul_onnx(16, tmp_path / "mm.onnx", seed=1)
    a = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    b = onnx.numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-5)
    peaks = measure_peaks([("onnxruntime", "fp32"), ("torch", "fp32"), ("onnxruntime", "fp32")], threads=1, n=32, reps=1)
    assert [(p.backend, p.precision) for p in peaks] == [("onnxruntime", "fp32"), ("torch", "fp32")]  # each pair once
    assert all(p.gflop_s == pytest.approx(2 * 32**3 / (p.median_ms * 1e6)) for p in peaks)
    fake = [Peak("a", "fp32", 8, 1.0, 10.0), Peak("b", "fp32", 8, 1.0, 30.0), Peak("b", "bf16", 8, 1.0, 50.0)]
    assert attainable(fake, "fp32").backend == "b" and attainable(fake, "bf16").gflop_s == 50.0
    assert attainable(fake, "int8") is None  # no reference rather than a wrong one

"""The zoo of hand-designed SR networks (trisr.zoo): every family builds, counts, exports (ONNX Runtime and
OpenVINO at a dynamic size that is not a multiple of anything) and runs through the run-folder commands like a
searched network; bicubic equals the MATLAB-style baseline; training with --arch resumes bit-identically."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from trisr.cli import app
from trisr.data.pairs import load_pairs
from trisr.data.resize import bicubic_upscale
from trisr.errors import TrisrError
from trisr.export.artifacts import load_artifact
from trisr.export.exporters import ExportOptions
from trisr.export.formats import get_format
from trisr.export.pipeline import VERIFIED, ExportRequest, export_run, write_artifact
from trisr.export.shapes import InputSpec
from trisr.rundir import ARCH_FILE, GENOTYPE_FILE, arch_from_record, arch_record, build_model, load_arch, load_model, save_model
from trisr.search.config import preset
from trisr.space.count import MatMul, count_macs, count_params
from trisr.zoo import ZOO, ZooSpec, create_zoo_model, get_family, list_zoo

from test_search import Interrupt

FAMILIES = [f.name for f in list_zoo()]
runner = CliRunner()


def test_the_zoo_has_its_families():
    assert FAMILIES == ["bicubic", "espcn", "fsrcnn", "span", "imdn", "esrt_lite"]
    for fam in list_zoo():
        assert fam.note and isinstance(fam.ladder, tuple) and fam.ladder
        assert fam.learned == (fam.name != "bicubic")
        if fam.learned:
            assert fam.knobs["skip"].default == "nearest" and fam.knobs["skip"].choices == ("nearest", "none")
            assert len(fam.ladder) >= 6  # fine enough to scale a family close to a latency budget


@pytest.mark.parametrize("name", FAMILIES)
def test_family_builds_counts_and_upscales(name):
    fam = get_family(name)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 9, 11)
    for knobs, scales in ((fam.ladder[0], fam.scales), ({}, (2,))):
        for s in scales:
            model = create_zoo_model(name, s, **knobs).eval()
            assert model.arch.kind == "zoo" and model.arch.scale == s and model.arch.family == name
            with torch.no_grad():
                y = model(x)
            assert y.shape == (1, 3, 9 * s, 11 * s) and torch.isfinite(y).all()
            assert count_macs(model, (1, 3, 32, 32)) > 0
            if name == "bicubic":
                assert count_params(model) == 0
            else:
                assert count_params(model) > 0
    macs = [count_macs(create_zoo_model(name, 2, **r), (1, 3, 256, 256)) for r in fam.ladder]
    assert all(a < b for a, b in zip(macs, macs[1:])), macs  # the ladder is strictly increasing
    if fam.learned:
        assert 0.05e9 < macs[0] < 1e9 and 5e9 < macs[-1] < 16e9, macs


@pytest.mark.parametrize("name", FAMILIES)
def test_spec_build_equals_create_and_round_trips(name):
    fam = get_family(name)
    knobs = fam.ladder[0]
    torch.manual_seed(1)
    a = create_zoo_model(name, 3, **knobs)
    torch.manual_seed(1)
    b = ZooSpec(name, 3, knobs).build()
    assert a.arch == b.arch and a.arch.digest() == b.arch.digest()
    assert list(a.state_dict()) == list(b.state_dict())
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    spec = a.arch
    assert list(spec.knobs) == sorted(spec.knobs) and set(spec.knobs) == set(fam.knobs)
    assert ZooSpec.from_dict(json.loads(spec.to_json())) == spec
    assert arch_from_record(arch_record(spec)) == spec
    # Defaults are filled in, so equal networks have equal digests however they were asked for.
    assert ZooSpec(name, 2).digest() == ZooSpec(name, 2, fam.defaults()).digest()


def test_bad_family_knob_or_scale_names_the_valid_choices():
    with pytest.raises(TrisrError, match="unknown zoo family 'vdsr'; choose from bicubic, espcn"):
        create_zoo_model("vdsr")
    with pytest.raises(TrisrError, match="espcn has no knob 'depth'; its knobs: skip, width"):
        create_zoo_model("espcn", depth=3)
    with pytest.raises(TrisrError, match="must be one of nearest, none"):
        create_zoo_model("span", skip="bicubic")
    with pytest.raises(TrisrError, match="a multiple of 4"):
        create_zoo_model("imdn", width=10)
    with pytest.raises(TrisrError, match="must be an integer"):
        create_zoo_model("espcn", width="wide")
    with pytest.raises(TrisrError, match="supports scale 2, 3, 4"):
        ZooSpec("espcn", 5)
    with pytest.raises(TrisrError, match="heads=3 must divide"):
        create_zoo_model("esrt_lite", width=16, heads=3)
    assert create_zoo_model("espcn", width="16").arch.knobs["width"] == 16  # text from the command line


def test_skip_none_is_the_published_form():
    torch.manual_seed(0)
    with_skip = create_zoo_model("espcn", 2, width=8).eval()
    plain = create_zoo_model("espcn", 2, width=8, skip="none").eval()
    plain.load_state_dict(with_skip.state_dict())
    x = torch.rand(1, 3, 6, 7)
    with torch.no_grad():
        diff = with_skip(x) - plain(x)
    torch.testing.assert_close(diff, torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_network_matches_matlab_bicubic_on_a_photo(scale):
    lr = load_pairs(None, scale, "val")[0].lr[:40, :52]  # a real photo (chelsea), uint8
    ref = bicubic_upscale(lr, scale) / 255.0
    model = create_zoo_model("bicubic", scale)
    x = torch.from_numpy(lr.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = model(x)[0].permute(1, 2, 0).double().numpy()
    # Symmetric padding mirrors like MATLAB, so the border matches too; away from it well below 1e-5.
    assert np.abs(out - ref).max() < 1e-5
    assert list(model.parameters()) == [] and len(list(model.buffers())) == 1


def test_count_macs_counts_deconv_linear_and_matmul():
    deconv = nn.ConvTranspose2d(4, 3, 9, stride=2, padding=4, output_padding=1)
    assert count_macs(deconv, (1, 4, 5, 6)) == 4 * 5 * 6 * 3 * 81 + 3 * 10 * 12  # input elements x c_out x k^2, + bias

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.mm = nn.Linear(8, 5), MatMul()

        def forward(self, x):  # x: (2, 7, 8)
            q = self.lin(x)  # 2 x 7 x 5
            return self.mm(q, q.transpose(1, 2))  # 2 x 7 x 7, inner 5

    assert count_macs(Attn(), (2, 7, 8)) == (2 * 7 * 5 * 8 + 2 * 7 * 5) + 2 * 7 * 7 * 5


@pytest.fixture(scope="module")
def small_nets():
    torch.manual_seed(0)
    out = {}
    for name in FAMILIES:
        knobs = dict(get_family(name).ladder[min(1, len(get_family(name).ladder) - 1)])
        if name == "esrt_lite":
            knobs.update(rows=3, tblocks=2)  # 37 and 53 are no multiple of 3: the padding and the mask are exercised
        out[name] = create_zoo_model(name, 2, **knobs).eval()
    return out


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("name", FAMILIES)
def test_export_parity_at_a_dynamic_odd_size(name, fmt, small_nets, tmp_path):
    model = small_nets[name]
    spec = InputSpec((32, 32), dynamic=True, min_hw=(16, 16), max_hw=(96, 96))
    req = ExportRequest(tmp_path / f"{name}-x2", get_format(fmt), "fp32", spec, tmp_path / "export", ExportOptions())
    written = write_artifact(req, model)
    side = written.sidecar
    assert side["arch"] == arch_record(model.arch) and "genotype" not in side and side["scale"] == 2
    artifact = load_artifact(written.path, "cpu")
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        ref = model(x).numpy()
    got = artifact.run(x.numpy())
    assert got.shape == ref.shape == (1, 3, 74, 106)
    assert np.abs(got - ref).max() <= 1e-4


def test_run_folder_round_trip_and_one_architecture_file(tmp_path, small_nets):
    model = small_nets["imdn"]
    save_model(tmp_path / "r", model)
    assert (tmp_path / "r" / ARCH_FILE).exists() and not (tmp_path / "r" / GENOTYPE_FILE).exists()
    back = load_model(tmp_path / "r")
    assert back.arch == model.arch and load_arch(tmp_path / "r") == model.arch
    assert load_arch(tmp_path / "r" / ARCH_FILE) == model.arch
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    assert build_model(model.arch).arch == model.arch
    (tmp_path / "r" / GENOTYPE_FILE).write_text("{}")
    with pytest.raises(TrisrError, match="holds both genotype.json and arch.json"):
        load_model(tmp_path / "r")
    (tmp_path / "e").mkdir()
    with pytest.raises(TrisrError, match="holds neither genotype.json nor arch.json"):
        load_model(tmp_path / "e")
    save_model(tmp_path / "b", small_nets["bicubic"])  # no parameters, only a buffer
    assert load_model(tmp_path / "b").arch.family == "bicubic"


def test_zoo_nets_have_no_lut_prediction(monkeypatch, tmp_path):
    import sys
    import types

    from trisr.export import lut as lut_mod

    class FakeLut:
        target = {"backend": "onnxruntime", "precision": "fp32"}
        resolution = (96, 96)

        @staticmethod
        def predict_ms(arch):
            raise AssertionError("a zoo network is not in the table")

    fake = types.ModuleType("trisr.profile.lut")
    fake.load_lut = lambda path: FakeLut()
    monkeypatch.setitem(sys.modules, "trisr.profile.lut", fake)
    spec = ZooSpec("espcn", 2)
    pred = lut_mod.lut_prediction(spec, tmp_path / "lut.json", (96, 96))
    assert pred.predicted_ms is None and pred.reason == "not in the latency table"
    assert lut_mod.predict_latency_ms(spec, tmp_path / "lut.json") is None


# -- training and the run-folder commands ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "espcn-x2"
    res = runner.invoke(app, ["train", "--arch", "espcn", "--width", "8", "--steps", "20", "--batch-size", "2",
                              "--patch", "16", "--out", str(out), "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_train_arch_writes_a_zoo_run_that_eval_reads(cli_run):
    out, summary = cli_run
    assert (out / ARCH_FILE).exists() and not (out / GENOTYPE_FILE).exists()
    assert summary["arch"]["family"] == "espcn" and summary["arch"]["knobs"] == {"skip": "nearest", "width": 8}
    assert "genotype" not in summary and summary["params"] == count_params(load_model(out))
    expected = preset("quick").recipe().replace(steps=20, batch_size=2)
    assert summary["settings"]["recipe"]["phase"] == json.loads(json.dumps(expected.to_dict()))["phase"]
    ev = runner.invoke(app, ["eval", str(out), "--json", "--device", "cpu"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["psnr_db"] == pytest.approx(summary["metrics"]["psnr_db"], abs=1e-9)


def test_export_run_verifies_a_zoo_run_folder(cli_run, tmp_path):
    out, _ = cli_run
    res = export_run(ExportRequest(out, get_format("onnx"), "fp32", InputSpec((64, 64)), tmp_path))
    assert res.status == VERIFIED, res.reason
    assert json.loads(res.sidecar.read_text())["arch"]["family"] == "espcn"


def test_train_arch_knobs_and_bad_input_are_one_line_errors(tmp_path):
    cases = (
        (["--arch", "vdsr"], "unknown zoo family 'vdsr'"),
        (["--arch", "espcn", "--knob", "depth=3"], "has no knob 'depth'"),
        (["--arch", "espcn", "--knob", "width"], "--knob takes NAME=VALUE"),
        (["--arch", "espcn", "--knob", "width=__import__('os')"], "must be an integer"),
        (["--arch", "span", "--width", "8", "--knob", "width=8"], "give the width once"),
        ([], "give exactly one of SOURCE"),
        ([str(tmp_path), "--arch", "espcn"], "give exactly one of SOURCE"),
    )
    for args, text in cases:
        res = runner.invoke(app, ["train", *args, "--out", str(tmp_path / "x")])
        assert res.exit_code == 2 and text in res.output and res.output.count("\n") == 1, res.output


def test_bicubic_has_nothing_to_train_and_is_written_as_a_run(tmp_path):
    from trisr.train import train

    summary = train(ZooSpec("bicubic", 2), tmp_path / "b", preset("quick").recipe().replace(steps=50))
    assert summary["params"] == 0 and summary["settings"]["recipe"]["phase"]["steps"] == 0
    assert summary["metrics"]["gain_db"] == pytest.approx(0.0, abs=0.02)  # it *is* the baseline
    assert load_model(tmp_path / "b").arch.family == "bicubic"


def test_killed_zoo_training_resumes_to_the_same_weights(tmp_path):
    """A zoo run killed mid-training and resumed ends bit-identical to the uninterrupted run; the checkpoint
    rebuilds the zoo network from its arch record."""
    from trisr.baselines import train_arch, train_genotype
    from trisr.train import train

    assert train_genotype is train_arch
    spec = ZooSpec("fsrcnn", 2, {"d": 8, "s": 4, "m": 1})
    recipe = preset("quick").recipe().replace(steps=20, batch_size=2)
    recipe = type(recipe)(recipe.phase, 12, recipe.augment, recipe.sampling)
    full = train(spec, tmp_path / "full", recipe, seed=5, checkpoint_every=5)
    with pytest.raises(KeyboardInterrupt):
        train(spec, tmp_path / "killed", recipe, seed=5, reporter=Interrupt("train", 10), checkpoint_every=5)
    ckpt = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert json.loads(ckpt["arch"])["kind"] == "zoo" and ckpt["step"] == 5
    resumed = train(tmp_path / "unused", tmp_path / "killed", recipe, seed=5, resume=True, checkpoint_every=5)
    assert resumed["metrics"]["psnr_db"] == full["metrics"]["psnr_db"]
    a, b = load_model(tmp_path / "full"), load_model(tmp_path / "killed")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    # The library entry point trains a ZooSpec the same way (a finished folder is read back, not retrained).
    summary = train_arch(spec, tmp_path / "lib", recipe.replace(steps=2), seed=5)
    again = train_arch(spec, tmp_path / "lib", recipe, seed=5)
    assert summary["arch"]["family"] == again["arch"]["family"] == "fsrcnn"
    assert again["metrics"]["psnr_db"] == summary["metrics"]["psnr_db"] and again["settings"]["recipe"]["phase"]["steps"] == 2
    assert set(ZOO) == set(FAMILIES)

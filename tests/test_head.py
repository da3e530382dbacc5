"""The output head options (global skip none | nearest | bicubic, output map tanh | linear): what they compute,
how cost and latency tables price them, and that every one exports to ONNX Runtime and OpenVINO exactly."""

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from trisr.data.pairs import load_pairs
from trisr.errors import TrisrError
from trisr.export.exporters import ExportOptions
from trisr.export.formats import get_format
from trisr.export.pipeline import VERIFIED, ExportRequest, export_run
from trisr.export.shapes import InputSpec
from trisr.export.verify import TorchReference
from trisr.profile.profiler import entry_modules
from trisr.rundir import load_model, save_model
from trisr.runtime.onnx_io import export_onnx
from trisr.space.config import SpaceConfig
from trisr.space.cost import CostModel, analytic_cost_table
from trisr.space.count import count_macs
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.ops import SKIPS, Tail
from trisr.space.tree import Tree

HEADS = [("none", "tanh"), ("none", "linear"), ("nearest", "linear"), ("bicubic", "linear")]


def genotype(skip: str, output: str, scale: int = 2) -> Genotype:
    space = SpaceConfig(nf=16, num_cell=2, num_up=1, num_cell_path_search=1, scale=scale, skip=skip, output=output)
    return Genotype(space, "CCU", [[1, 2, 3, 0, 1], [3, 1, 2, 1, 0]], [[0, 1, 1, 0], [1, 0, 1, 1]], node_index=2)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_skips_add_the_upsampled_input(scale):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 11)
    feats = torch.randn(2, 16, 9, 11)
    for skip in SKIPS:
        tail = Tail(16, scale, "B", skip, "linear")
        with torch.no_grad():
            tail.conv.weight.zero_()
            tail.conv.bias.zero_()
            y = tail(feats, x)
        if skip == "none":
            assert torch.equal(y, torch.zeros_like(y))
        else:  # a zero residual returns exactly the upsampled input
            kw = {"align_corners": False} if skip == "bicubic" else {}
            assert torch.equal(y, F.interpolate(x, scale_factor=scale, mode=skip, **kw))
    # nearest after the shuffle is ABPN's anchor: the input repeated s^2 times and added before the shuffle
    tail = Tail(16, scale, "B", "nearest", "linear")
    with torch.no_grad():
        anchor = tail.shuffle(tail.conv(feats) + x.repeat_interleave(scale * scale, dim=1))
        torch.testing.assert_close(tail(feats, x), anchor, rtol=0, atol=1e-6)


def test_head_config_validation_and_legacy_files():
    with pytest.raises(TrisrError, match="skip must be one of"):
        SpaceConfig(skip="lanczos")
    with pytest.raises(TrisrError, match="squashes the global skip"):
        SpaceConfig(skip="nearest", output="tanh")
    legacy = SpaceConfig().to_dict()
    del legacy["skip"], legacy["output"]  # files written before the head options existed
    old = SpaceConfig.from_dict(legacy)
    assert (old.skip, old.output) == ("none", "tanh")
    assert SpaceConfig().fingerprint() != old.fingerprint()  # tables of the old head are refused, not reused


@pytest.mark.parametrize("skip,output", HEADS)
def test_analytic_tables_price_the_whole_network_exactly(skip, output):
    g = genotype(skip, output)
    tree = Tree(g.space.num_cell_path_search, g.space.num_up, g.space.num_stem)
    for metric, exact in (("macs_g", lambda m: count_macs(m, (1, 3, 64, 48)) / 1e9), ("params_k", lambda m: sum(p.numel() for p in m.parameters()) / 1e3)):
        model = CostModel(analytic_cost_table(g.space, metric, (64, 48)), g.space, tree)
        assert model.genotype_cost(g) == pytest.approx(exact(DerivedNet(g)), rel=1e-12)


@pytest.mark.parametrize("skip", SKIPS)
def test_latency_entry_of_the_tail_runs_the_skip(tmp_path, skip):
    """The profiled tail entry holds the skip's Resize and Add in context (an entry has one input, so the
    LR image is stood in by three feature channels), so latency tables price the head that ships."""
    space = genotype(skip, "tanh" if skip == "none" else "linear").space
    module, c_in, _ = entry_modules(space, (8, 8))["tail"]
    x = torch.rand(1, c_in, 16, 16)
    export_onnx(module, tuple(x.shape), tmp_path / "tail.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "tail.onnx")).graph.node}
    assert ("Resize" in ops) == (skip != "none")
    assert module(x).shape == (1, 3, 32, 32)


@pytest.fixture(scope="module")
def held_out():
    return load_pairs(None, 2, "val")


@pytest.mark.parametrize("skip,output", HEADS)
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_every_head_exports_and_matches_torch(tmp_path, held_out, skip, output, fmt):
    torch.manual_seed(0)
    run = tmp_path / "run"
    net = DerivedNet(genotype(skip, output))
    save_model(run, net)
    model = load_model(run)
    req = ExportRequest(run, get_format(fmt), "fp32", InputSpec((64, 64)), tmp_path / "export", ExportOptions())
    result = export_run(req, model, TorchReference(model, held_out, 2))
    assert result.status == VERIFIED, result.reason
    assert result.verification.max_abs <= 1e-4


def test_bicubic_skip_is_the_torch_cubic_not_matlab():
    """Documented: the bicubic skip is torch/ONNX cubic interpolation (a = -0.75, no antialias), which every
    runtime implements; MATLAB's a = -0.5 kernel is used for data generation and the baseline only."""
    x = torch.rand(1, 3, 8, 8)
    tail = Tail(16, 2, "B", "bicubic", "linear")
    with torch.no_grad():
        tail.conv.weight.zero_()
        tail.conv.bias.zero_()
        y = tail(torch.zeros(1, 16, 8, 8), x)
    ref = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.equal(y, ref)
    assert not np.allclose(y.numpy(), F.interpolate(x, scale_factor=2, mode="bilinear").numpy())


def test_reference_head_is_unchanged():
    g = replace(genotype("none", "tanh"))
    torch.manual_seed(0)
    net = DerivedNet(g).eval()
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        y = net(x)
        ref = (torch.tanh(net.tail.shuffle(net.tail.conv(net.blocks(net.head(x))))) + 1) / 2
    assert torch.equal(y, ref)

"""The correction filter (issue 12): exact degradation, closed form, blind estimate, CLI paths, folded export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from trisr.cli import app
from trisr.correction.apply import Corrector
from trisr.correction.estimate import estimate_kernel
from trisr.correction.filter import correction_filter
from trisr.correction.fold import fold_correction
from trisr.correction.kernels import (
    KernelError,
    bicubic_kernel,
    degrade,
    gaussian_kernel,
    parse_kernel,
    parse_kernels,
)
from trisr.data.images import load_image, save_image
from trisr.data.resize import imresize, quantize_uint8
from trisr.export.tiling import to_nchw
from trisr.rundir import save_model
from trisr.zoo import create_zoo_model

runner = CliRunner()


def powerlaw_image(n: int = 512, seed: int = 0) -> np.ndarray:
    """A grey image with a 1/f^2 power spectrum (the scale-invariant model the blind estimate assumes)."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    r = np.hypot(f[:, None], f[None, :])
    r[0, 0] = 1.0
    spec = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / r
    spec[0, 0] = 0.0
    x = np.fft.ifft2(spec).real
    return np.clip((x - x.mean()) / x.std() * 0.12 + 0.5, 0.0, 1.0)


def psnr(a: np.ndarray, b: np.ndarray, border: int = 8) -> float:
    a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_kernel_degradation_is_matlab_imresize(scale):
    x = np.random.default_rng(scale).random((48, 60, 3))
    lr = degrade(x, bicubic_kernel(scale), scale)
    ref = imresize(x, 1.0 / scale, output_shape=(48 // scale, 60 // scale))
    np.testing.assert_allclose(lr, ref, atol=1e-10)  # borders included: the same mirroring


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_gaussian_kernels_are_centred_normalised_and_of_the_scale_parity(scale):
    k = gaussian_kernel(scale, 1.3 * scale / 2)
    assert k.shape[0] % 2 == scale % 2 and k.shape[0] == k.shape[1]
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k[::-1, ::-1])  # centred: symmetric about the LR pixel's position


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("sigma_x2", [1.2, 1.6, 2.0])
def test_closed_form_turns_gaussian_lr_into_bicubic_lr(scale, sigma_x2):
    x = powerlaw_image()
    sigma = sigma_x2 * scale / 2
    y_bic = degrade(x, bicubic_kernel(scale), scale)
    y = degrade(x, gaussian_kernel(scale, sigma), scale)
    filt = correction_filter(parse_kernel(f"gaussian:{sigma}"), scale)
    y_corr = filt.apply_nchw(np.repeat(y[None, None], 3, axis=1))[0, 0]
    before, after = psnr(y, y_bic), psnr(y_corr, y_bic)
    # Measured: 33.9 -> 51.8 dB (1.2 px), 30.5 -> 40.9 (1.6), 28.7 -> 35.6 (2.0) at x2; about the same at x3 and x4.
    assert after > 35.0 and after > before + 6.0, (before, after)
    assert filt.taps.sum() == pytest.approx(1.0) and filt.size % 2 == 1


def test_bicubic_kernel_gives_the_identity_filter():
    filt = correction_filter(parse_kernel("bicubic"), 2)
    assert filt.is_identity
    x = np.random.default_rng(0).random((1, 3, 20, 30)).astype(np.float32)
    np.testing.assert_array_equal(filt.apply_nchw(x), x)


@pytest.mark.parametrize("sigma", [1.6, 2.0])
def test_blind_estimate_recovers_a_gaussian_width(sigma):
    x = powerlaw_image(seed=1)
    y = quantize_uint8(degrade(x * 255.0, gaussian_kernel(2, sigma), 2))
    est = estimate_kernel(y, 2)
    # Measured on three such images: raw 1.53-1.59 (1.6), 1.93-1.97 (2.0); bias-corrected 1.35-1.41 (1.6), 1.78-1.83 (2.0).
    assert est.raw_sigma_px == pytest.approx(sigma, rel=0.06)
    assert est.sigma_px == pytest.approx(sigma, rel=0.2)  # the bias correction is set on real photos, not this model
    assert est.spec.kind == "gaussian"


def test_blind_estimate_of_a_bicubic_image_means_no_correction():
    x = powerlaw_image(seed=2)
    y = quantize_uint8(degrade(x * 255.0, bicubic_kernel(2), 2))
    assert estimate_kernel(y, 2).spec.is_bicubic


def test_kernel_specs_parse_and_list():
    assert parse_kernel("gaussian:1.5").params == (1.5,)
    assert parse_kernel("aniso:2,1,30").params == (2.0, 1.0, 30.0)
    assert [k.params for k in parse_kernels("gaussian:0.8,1.2")] == [(0.8,), (1.2,)]
    assert parse_kernel("estimate").is_estimate
    with pytest.raises(KernelError, match="not available"):
        parse_kernels("estimate")


@pytest.mark.parametrize(
    "text, match",
    [("gaussian:-1", "positive"), ("gaussian:nan", "positive"), ("gaussian", "takes 1"), ("box:3", "unknown kernel"),
     ("aniso:1,2", "takes 3"), ("gaussian:abc", "numbers"), ("gaussian:99", "above")],
)
def test_bad_kernel_specs_are_one_line_errors(text, match):
    with pytest.raises(KernelError, match=match):
        parse_kernel(text)


@pytest.mark.parametrize(
    "array, match",
    [(np.ones((3, 5)), "square"), (np.ones((4, 4)), "odd size"), (np.full((3, 3), np.nan), "NaN"),
     (np.zeros((5, 5)), "positive sum"), (np.ones(5), "2-D")],
)
def test_bad_kernel_files_are_one_line_cli_errors(array, match, tmp_path):
    path = tmp_path / "k.npy"
    np.save(path, array)
    with pytest.raises(KernelError, match=match):
        parse_kernel(str(path))
    res = runner.invoke(app, ["upscale", str(tmp_path), str(path), "-o", str(tmp_path / "o"), "--kernel", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output and match in res.output


def test_a_good_kernel_file_is_used_with_its_centre_pixel(tmp_path):
    k = np.zeros((5, 5))
    k[2, 2] = 1.0  # a delta: for x2 it samples the top-left pixel of each 2x2 block
    path = tmp_path / "delta.npy"
    np.save(path, k)
    from trisr.correction.kernels import kernel_array

    x = np.random.default_rng(0).random((16, 16))
    np.testing.assert_allclose(degrade(x, kernel_array(parse_kernel(str(path)), 2), 2), x[::2, ::2])


@pytest.fixture(scope="module")
def espcn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "espcn-x2"
    torch.manual_seed(0)
    save_model(out, create_zoo_model("espcn", 2, width=16))
    return out


@pytest.fixture(scope="module")
def lr_png(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    img = quantize_uint8(degrade(powerlaw_image(128, 3)[:, :, None].repeat(3, 2) * 255 * rng.uniform(0.8, 1.0, 3), gaussian_kernel(2, 1.6), 2))
    return save_image(tmp_path_factory.mktemp("img") / "lr.png", img)


def test_upscale_with_kernel_bicubic_equals_no_kernel(espcn_run, lr_png, tmp_path):
    outs = []
    for extra in ([], ["--kernel", "bicubic"]):
        out = tmp_path / f"o{len(outs)}.png"
        res = runner.invoke(app, ["upscale", str(espcn_run), str(lr_png), "-o", str(out), "--device", "cpu", *extra])
        assert res.exit_code == 0, res.output
        outs.append(load_image(out))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_upscale_with_estimate_saves_the_kernel(espcn_run, lr_png, tmp_path):
    res = runner.invoke(app, ["upscale", str(espcn_run), str(lr_png), "-o", str(tmp_path), "--device", "cpu",
                              "--kernel", "estimate", "--save-kernel"])
    assert res.exit_code == 0, res.output
    import json

    record = json.loads((tmp_path / "lr_x2.kernel.json").read_text())
    assert record["estimate"]["sigma_px"] > 0.73 and record["filter"]["size"] > 1
    assert "estimated" in res.output


def test_folded_export_matches_the_upscale_path(espcn_run, lr_png, tmp_path):
    """The ONNX artifact with --kernel folded in gives, on an image of its input size, what upscale --kernel gives
    with the run folder (float rounding apart)."""
    pytest.importorskip("onnxruntime")
    from trisr.export.artifacts import load_artifact

    res = runner.invoke(app, ["export", str(espcn_run), "--format", "onnx", "--shape", "64x64", "--kernel", "gaussian:1.6",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    artifact = next((tmp_path / "espcn-x2").glob("*-kgaussian1.6.onnx"))
    art = load_artifact(artifact, "cpu")
    assert art.sidecar["correction"]["kernel"]["spec"] == "gaussian:1.6"
    lr = load_image(lr_png)
    x, _ = Corrector(parse_kernel("gaussian:1.6"), 2)(lr)
    from trisr.rundir import load_model

    with torch.no_grad():
        want = load_model(espcn_run, "cpu")(torch.from_numpy(x)).numpy()
    got = art.run(to_nchw(lr))
    assert np.abs(got - want).max() < 1e-4
    # ... and refuses a second correction on top.
    res = runner.invoke(app, ["upscale", str(artifact), str(lr_png), "-o", str(tmp_path / "u"), "--kernel", "gaussian:1.6"])
    assert res.exit_code == 2 and "already corrects" in res.output


def test_fold_refuses_estimate_and_leaves_bicubic_alone(espcn_run):
    from trisr.rundir import load_model

    net = load_model(espcn_run, "cpu")
    assert fold_correction(net, parse_kernel("bicubic")) is net
    with pytest.raises(KernelError, match="estimate"):
        fold_correction(net, parse_kernel("estimate"))


def test_eval_degrade_reports_the_four_inputs(espcn_run):
    res = runner.invoke(app, ["eval", str(espcn_run), "--degrade", "gaussian:1.6", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    import json

    report = json.loads(res.stdout[res.stdout.index("{"):])
    (k,) = report["kernels"]
    assert k["kernel"]["spec"] == "gaussian:1.6" and len(k["images"]) == 2
    for name in ("matched", "mismatched", "known", "estimated"):
        assert np.isfinite(k["mean"][f"{name}_psnr_db"])

"""Y conversion, PSNR and SSIM conventions (evaluation.md §1-§4, §6, §7.2)."""

import math

import numpy as np
import pytest
import skimage.data
from skimage.color import rgb2ycbcr
from skimage.metrics import structural_similarity

from trisr.data import (
    FULL_RANGE_OFFSET_DB,
    bicubic_downscale,
    bicubic_upscale,
    evaluate_pair,
    psnr_db,
    quantize_uint8,
    rgb_to_y,
    rgb_to_y_full,
    ssim,
)
from trisr.errors import ImageError

SCALE = 4


@pytest.fixture(scope="module")
def pair():
    """(sr, hr) uint8: the bicubic x4 baseline of coffee.png, cropped to a moderate size for speed."""
    hr = skimage.data.coffee()[:200, :240]
    sr = quantize_uint8(bicubic_upscale(bicubic_downscale(hr, SCALE), SCALE))
    return sr, hr


@pytest.mark.parametrize(
    "rgb, y",
    [
        ((1, 1, 1), 235.0),
        ((0, 0, 0), 16.0),
        ((1, 0, 0), 81.481),
        ((0, 1, 0), 144.553),
        ((0, 0, 1), 40.966),
    ],
)
def test_y_of_pure_colours(rgb, y):
    unit = np.array(rgb, dtype=np.float64).reshape(1, 1, 3)
    assert rgb_to_y(unit, input_range=1.0)[0, 0] == pytest.approx(y, abs=1e-10)
    assert rgb_to_y((unit * 255).astype(np.uint8))[0, 0] == pytest.approx(y, abs=1e-10)
    assert rgb_to_y(unit * 255.0)[0, 0] == pytest.approx(y, abs=1e-10)  # float on the 0..255 scale


def test_y_of_constant_128_and_grey_input():
    img = np.full((3, 4, 3), 128, dtype=np.uint8)
    y = rgb_to_y(img)
    assert y.shape == (3, 4) and y.dtype == np.float64
    np.testing.assert_allclose(y, 16 + 219 * 128 / 255, atol=1e-12)
    assert y[0, 0] == pytest.approx(125.929412, abs=1e-6)
    np.testing.assert_allclose(rgb_to_y(img[:, :, 0]), y, atol=1e-12)  # HxW is grey


def test_y_matches_skimage_rgb2ycbcr(pair):
    _, hr = pair
    np.testing.assert_allclose(rgb_to_y(hr), rgb2ycbcr(hr)[:, :, 0], atol=1e-10)


def test_full_range_luma():
    assert rgb_to_y_full(np.array([[[255, 255, 255]]], dtype=np.uint8))[0, 0] == pytest.approx(255.0)
    assert rgb_to_y_full(np.array([[[255, 0, 0]]], dtype=np.uint8))[0, 0] == pytest.approx(0.299 * 255)


def test_full_range_offset_is_exact(pair):
    assert round(FULL_RANGE_OFFSET_DB, 5) == 1.32192
    sr, hr = pair
    for crop in (0, SCALE):
        diff = psnr_db(sr, hr, crop=crop, mode="y") - psnr_db(sr, hr, crop=crop, mode="y_full")
        assert diff == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    diff = psnr_db(a, b, mode="y") - psnr_db(a, b, mode="y_full")
    assert diff == pytest.approx(1.32192, abs=1e-5)


def test_psnr_known_values():
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    b = np.ones((8, 8, 3), dtype=np.uint8)
    assert psnr_db(a, b, mode="rgb") == pytest.approx(10 * math.log10(255**2))
    # every Y difference is 219/255 for a one-level change of all channels
    assert psnr_db(a, b, mode="y") == pytest.approx(10 * math.log10(255**2 / (219 / 255) ** 2))
    assert isinstance(psnr_db(a, b), float)


def test_psnr_identical_is_inf_or_cap(pair):
    _, hr = pair
    assert psnr_db(hr, hr) == math.inf
    assert psnr_db(hr, hr.copy(), crop=4, mode="rgb") == math.inf
    assert psnr_db(hr, hr, cap=100.0) == 100.0
    sr, _ = pair
    assert psnr_db(sr, hr, cap=100.0) == psnr_db(sr, hr)


def test_crop_removes_border_differences():
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:2] = 0  # damage the top two rows only
    assert math.isfinite(psnr_db(sr, hr, crop=0))
    assert math.isfinite(psnr_db(sr, hr, crop=2)) is False
    assert psnr_db(sr, hr, crop=3) == math.inf
    assert ssim(sr, hr, crop=2) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ImageError):
        psnr_db(sr, hr, crop=16)


def test_rgb_psnr_below_y_on_bicubic_baseline(pair):
    sr, hr = pair
    assert psnr_db(sr, hr, crop=SCALE, mode="rgb") < psnr_db(sr, hr, crop=SCALE, mode="y")


def test_ssim_self_is_one(pair):
    _, hr = pair
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)
    assert ssim(hr, hr, crop=4, mode="rgb") == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_skimage_on_y(pair):
    sr, hr = pair
    c = SCALE
    ya = rgb_to_y(sr)[c:-c, c:-c]
    yb = rgb_to_y(hr)[c:-c, c:-c]
    ref = structural_similarity(
        ya, yb, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    ours = ssim(sr, hr, crop=c)
    assert abs(ours - ref) < 1e-12
    assert 0.5 < ours < 1.0


def test_ssim_rgb_is_channel_mean(pair):
    sr, hr = pair
    ref = np.mean(
        [
            structural_similarity(
                sr[:, :, k].astype(float), hr[:, :, k].astype(float), data_range=255,
                gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            )
            for k in range(3)
        ]
    )
    assert ssim(sr, hr, mode="rgb") == pytest.approx(ref, abs=1e-12)


def test_metric_input_errors(pair):
    sr, hr = pair
    with pytest.raises(ImageError, match="same size"):
        psnr_db(sr[:-1], hr)
    with pytest.raises(ImageError, match="11x11"):
        ssim(sr[:12, :12], hr[:12, :12], crop=1)
    with pytest.raises(ValueError):
        psnr_db(sr, hr, mode="ycbcr")


def test_evaluate_pair(pair):
    sr, hr = pair
    res = evaluate_pair(sr, hr, SCALE)
    assert res["crop"] == SCALE and res["mode"] == "y" and res["quantized_uint8"] is True
    assert res["psnr_db"] == pytest.approx(psnr_db(sr, hr, crop=SCALE))
    assert res["ssim"] == pytest.approx(ssim(sr, hr, crop=SCALE))
    # an HR that is not modcropped is cropped to the SR size from the top-left
    bigger = np.pad(hr, ((0, 3), (0, 2), (0, 0)), mode="edge")
    assert evaluate_pair(sr, bigger, SCALE) == res
    assert evaluate_pair(sr, hr, SCALE, crop=0)["crop"] == 0
    with pytest.raises(ImageError, match="larger"):
        evaluate_pair(bigger, hr, SCALE)
    with pytest.raises(ImageError, match="uint8"):
        evaluate_pair(sr.astype(np.float64), hr, SCALE)

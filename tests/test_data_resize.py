"""MATLAB-style bicubic resize (evaluation.md §5, §7.1), modcrop and LR generation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trisr.data import (
    bicubic_downscale,
    bicubic_upscale,
    imresize,
    modcrop,
    psnr_db,
    quantize_uint8,
)
from trisr.errors import ImageError


def ramp(n: int) -> np.ndarray:
    """A[i, j] = i*n + j, i.e. MATLAB reshape(0:N-1, n, n)'."""
    return np.arange(n * n, dtype=np.float64).reshape(n, n)


# (n, output shape, antialias, {row index: expected row}) -- evaluation.md §7.1
GOLDEN_ROWS = [
    (4, (3, 3), True, {
        0: [0.7505518764, 2.1004415011, 3.4503311258],
        1: [6.1501103753, 7.5, 8.8498896247],
        2: [11.5496688742, 12.8995584989, 14.2494481236],
    }),
    (8, (4, 4), True, {
        0: [4.04296875, 6.08203125, 8.10546875, 10.14453125],
        1: [20.35546875, 22.39453125, 24.41796875, 26.45703125],
        2: [36.54296875, 38.58203125, 40.60546875, 42.64453125],
        3: [52.85546875, 54.89453125, 56.91796875, 58.95703125],
    }),
    (8, (2, 2), True, {
        0: [12.3837890625, 16.6318359375],
        1: [46.3681640625, 50.6162109375],
    }),
    (15, (3, 3), True, {
        0: [29.1072, 34.288, 39.4688],
        1: [106.8192, 112.0, 117.1808],
        2: [184.5312, 189.712, 194.8928],
    }),
    (15, (5, 5), True, {
        0: [14.4197530864, 17.5061728395, 20.5185185185, 23.5308641975, 26.6172839506],
    }),
    (8, (3, 4), True, {
        0: [6.4725287733, 8.5115912733, 10.5350287733, 12.5740912733],
        1: [28.44921875, 30.48828125, 32.51171875, 34.55078125],
    }),
    (4, (3, 3), False, {
        0: [0.5439814815, 1.9351851852, 3.3263888889],
    }),
]


@pytest.mark.parametrize("n, shape, aa, rows", GOLDEN_ROWS, ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_matlab_golden_rows(n, shape, aa, rows):
    out = imresize(ramp(n), output_shape=shape, antialias=aa)
    assert out.shape == shape
    assert out.dtype == np.float64
    for r, expected in rows.items():
        np.testing.assert_allclose(out[r], expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("n, shape, aa", [(15, (5, 5), True), (4, (3, 3), False)])
def test_matlab_golden_centre(n, shape, aa):
    out = imresize(ramp(n), output_shape=shape, antialias=aa)
    assert out[shape[0] // 2, shape[1] // 2] == pytest.approx(112.0 if n == 15 else 7.5, abs=1e-8)


def test_scale_argument_matches_output_shape():
    np.testing.assert_allclose(imresize(ramp(8), 0.5), imresize(ramp(8), output_shape=(4, 4)), atol=1e-12)
    out = imresize(ramp(8), scale=(0.375, 0.5))
    np.testing.assert_allclose(out[0], GOLDEN_ROWS[5][3][0], atol=1e-8)
    # output size is ceil(h * scale)
    assert imresize(np.zeros((7, 9)), 0.5).shape == (4, 5)
    assert imresize(np.zeros((5, 3)), 3).shape == (15, 9)


def test_channels_and_dtype():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(20, 18, 3), dtype=np.uint8)
    out = imresize(img, 0.5)
    assert out.shape == (10, 9, 3) and out.dtype == np.float64
    for c in range(3):
        np.testing.assert_allclose(out[:, :, c], imresize(img[:, :, c].astype(float), 0.5), atol=1e-12)
    # no rounding inside imresize
    assert not np.allclose(out, np.round(out))


def test_matches_torch_antialias_in_the_interior():
    """§5.2: torch's antialiased bicubic equals MATLAB except near the borders (it renormalises there)."""
    x = np.random.default_rng(0).random((64, 48)) * 255
    for size in [(16, 12), (128, 96)]:
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x)[None, None], size=size, mode="bicubic", antialias=True, align_corners=False
        )[0, 0].numpy()
        ours = imresize(x, output_shape=size)
        np.testing.assert_allclose(ours[4:-4, 4:-4], ref[4:-4, 4:-4], atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    oh=st.integers(1, 24),
    ow=st.integers(1, 24),
    value=st.floats(-1000, 1000),
    aa=st.booleans(),
)
def test_constant_images_stay_constant(h, w, oh, ow, value, aa):
    out = imresize(np.full((h, w), value), output_shape=(oh, ow), antialias=aa)
    assert out.shape == (oh, ow)
    np.testing.assert_allclose(out, value, atol=1e-9 * max(1.0, abs(value)))


def test_bad_arguments():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), scale=0)
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 2, 2, 2)), 0.5)


def test_modcrop_baboon_size():
    baboon = np.zeros((480, 500, 3), dtype=np.uint8)  # 500 x 480 (W x H)
    out = modcrop(baboon, 12)
    assert out.shape == (480, 492, 3)  # 492 x 480
    img = np.arange(7 * 10).reshape(7, 10)
    np.testing.assert_array_equal(modcrop(img, 3), img[:6, :9])  # bottom/right removed


def test_bicubic_downscale_definition():
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, size=(27, 33, 3), dtype=np.uint8)
    lr = bicubic_downscale(hr, 4)
    assert lr.dtype == np.uint8 and lr.shape == (6, 8, 3)
    expected = np.floor(np.clip(imresize(hr[:24, :32], 0.25), 0, 255) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(lr, expected)
    with pytest.raises(ImageError):
        bicubic_downscale(hr[:2, :2], 4)


def test_quantize_rounds_half_up_and_clips():
    out = quantize_uint8(np.array([-3.0, 0.49, 0.5, 1.5, 2.5, 254.5, 300.0]))
    np.testing.assert_array_equal(out, [0, 0, 1, 2, 3, 255, 255])


@pytest.mark.parametrize("scale, lo, hi", [(2, 28.0, 36.0), (4, 24.0, 30.0)])
def test_bicubic_round_trip_on_real_image(scale, lo, hi):
    import skimage.data

    hr = skimage.data.astronaut()
    lr = bicubic_downscale(hr, scale)
    assert lr.shape == (512 // scale, 512 // scale, 3)
    sr = quantize_uint8(bicubic_upscale(lr, scale))
    assert sr.shape == hr.shape
    value = psnr_db(sr, hr, crop=scale)
    assert lo < value < hi

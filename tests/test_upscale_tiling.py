"""Issue 9: run folders upscale large images in tiles of bounded LR size (trisr.tiled). For convolutional
networks the halo is the receptive-field bound and the stitched output is the one-pass output; networks with
non-local parts are flagged as approximate; images that fit in a tile run in one pass, unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from trisr.cli import app
from trisr.data.images import load_image, save_image
from trisr.errors import TrisrError
from trisr.evaluate import super_resolve
from trisr.export.tiling import default_halo, to_nchw
from trisr.receptive import conv_reach_bound, tiles_exactly
from trisr.rundir import save_model
from trisr.space.config import SpaceConfig
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype
from trisr.space.sample import sample_genotype
from trisr.tiled import DEFAULT_TILE_PX, plan_for_images, plan_tiles, super_resolve_tiled, upscale_array
from trisr.zoo import create_zoo_model

from helpers import TINY_SPACE

runner = CliRunner()
LR_HW = (75, 131)  # several tiles of TILE each way, neither side a multiple of the tile or its step
TILE = (44, 48)


def derived(space: SpaceConfig, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return DerivedNet(sample_genotype(space, seed)).eval()


def residual_net() -> torch.nn.Module:
    """Every op kind of the space (1x1, 3x3, residual, inverted bottleneck) in two cells, ×3."""
    space = SpaceConfig(nf=16, num_cell=2, num_up=1, num_cell_path_search=1, scale=3, ops_per_cell=4)
    torch.manual_seed(1)
    return DerivedNet(Genotype(space, "CCU", [[0, 1, 2, 3], [3, 2, 1, 0]], [[0, 1, 1], [1, 0, 1]])).eval()


CONV_NETS = {
    "derived-x2": lambda: derived(TINY_SPACE, 0),
    "derived-x3-every-op": residual_net,
    "derived-variant-a-x2": lambda: derived(
        SpaceConfig(nf=8, num_cell=2, num_up=1, num_cell_path_search=1, ops_per_cell=2, scale=2, variant="A"), 2),
    "espcn-x2": lambda: create_zoo_model("espcn", 2, width=16).eval(),
    "fsrcnn-x3": lambda: create_zoo_model("fsrcnn", 3, d=8, s=4, m=2).eval(),
    "bicubic-x4": lambda: create_zoo_model("bicubic", 4).eval(),
}


def lr_image(hw=LR_HW, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(CONV_NETS))
def test_tiles_equal_one_pass_for_convolutional_networks(name):
    torch.manual_seed(0)
    model = CONV_NETS[name]()
    plan = plan_tiles(model, TILE)
    assert plan.exact and plan.halo == plan.radius_px == conv_reach_bound(model) and plan.count(LR_HW) >= 6, plan
    lr = lr_image()
    x = to_nchw(lr)
    with torch.no_grad():
        one_pass = model(torch.from_numpy(x)).numpy()
    tiled = upscale_array(model, x, plan)
    assert tiled.shape == one_pass.shape
    assert np.abs(tiled - one_pass).max() <= 1e-5
    # 8-bit: the same image, up to a rounding tie at the odd pixel
    diff = np.abs(super_resolve_tiled(model, lr, plan).astype(int) - super_resolve(model, lr))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("name", sorted(CONV_NETS))
def test_the_halo_is_tight_enough_to_matter(name):
    """One pixel less than the bound and a window no longer reproduces the whole image: the probe sees it."""
    model = CONV_NETS[name]()
    radius = conv_reach_bound(model)
    assert tiles_exactly(model, radius, model.arch.scale)
    if name.startswith(("espcn", "fsrcnn", "bicubic", "derived-x2")):  # plain chains: the bound is the radius
        assert not tiles_exactly(model, radius - 1, model.arch.scale)


@pytest.mark.parametrize("family", ["imdn", "esrt_lite"])
def test_non_local_networks_are_tiled_as_an_approximation(family):
    """IMDN's channel attention takes whole-image statistics, ESRT-lite attends along whole rows and pools on a
    grid fixed by where the image starts: no halo reproduces one pass, so the default halo is used and said."""
    model = create_zoo_model(family, 2, width=8, blocks=1).eval()
    plan = plan_tiles(model, (64, 64))
    assert not plan.exact and plan.halo == default_halo((64, 64))
    assert "approximate" in plan.describe()
    lr = lr_image((70, 90))
    sr = super_resolve_tiled(model, lr, plan)
    assert sr.shape == (140, 180, 3) and sr.dtype == np.uint8


def test_images_that_fit_in_a_tile_run_in_one_pass():
    model = CONV_NETS["espcn-x2"]()
    plan = plan_tiles(model)
    assert plan.tile == DEFAULT_TILE_PX and plan.runs_whole(LR_HW)
    lr = lr_image()
    np.testing.assert_array_equal(super_resolve_tiled(model, lr, plan), super_resolve(model, lr))
    # the command plans (and probes the network) only when some image needs tiles
    assert plan_for_images(model, [LR_HW, (256, 256)]) is None and plan_for_images(model, [LR_HW], (80, 140)) is None
    assert plan_for_images(model, [LR_HW, (256, 257)]) == plan and plan_for_images(model, [LR_HW], TILE).tile == TILE
    # a tile larger than the image on one side only: tiles along the other, never padded
    plan = plan_tiles(model, (128, 40))
    assert not plan.runs_whole(LR_HW) and plan.tile_for(LR_HW) == (75, 39)  # 4 tiles of 39 cover 131 with overlaps of 8
    assert np.abs(super_resolve_tiled(model, lr, plan).astype(int) - super_resolve(model, lr)).max() <= 1


def test_tiles_are_balanced_not_padded_out():
    """Per axis: no more tiles than fixed-size ones, each no larger than asked nor than the image, consecutive
    overlaps >= 2 halos, the last tile ending on the border; 1000 px in tiles of <= 256 with halo 7 = 5 x 212."""
    from trisr.export.tiling import tile_origins
    from trisr.tiled import TilePlan

    for tile, halo in ((16, 4), (40, 7), (64, 9), (256, 7)):
        plan = TilePlan((tile, tile), halo, True, halo)
        for length in range(1, 400, 7):
            t = plan.tile_for((length, 1))[0]
            starts = tile_origins(length, t, halo)
            assert t <= min(tile, length) and len(starts) <= len(tile_origins(max(length, tile), tile, halo))
            assert all(a + t - b >= 2 * halo for a, b in zip(starts, starts[1:])) and starts[-1] + t == length
    assert TilePlan((256, 256), 7, True, 7).tile_for((1000, 1000)) == (212, 212)


def test_the_default_tile_grows_with_a_large_receptive_field_and_small_tiles_are_refused(monkeypatch):
    import trisr.tiled

    monkeypatch.setattr(trisr.tiled, "DEFAULT_TILE_PX", (16, 16))  # below 4 halos of fsrcnn's radius 6
    model = CONV_NETS["fsrcnn-x3"]()
    plan = plan_tiles(model)
    assert plan.exact and plan.tile == (24, 24) == (4 * plan.halo, 4 * plan.halo)
    with pytest.raises(TrisrError, match=r"--tile 16x64 is too small .* halo of 6 LR px .* at least 24x24"):
        plan_tiles(model, (16, 64))


# -- the command ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "espcn-x2"
    torch.manual_seed(0)
    save_model(out, create_zoo_model("espcn", 2, width=16))
    return out


def _upscale(run: Path, img: Path, out: Path, *extra: str):
    res = runner.invoke(app, ["upscale", str(run), str(img), "-o", str(out), "--device", "cpu", *extra])
    assert res.exit_code == 0, res.output
    return load_image(out), res.output


def test_cli_tiles_a_run_folder_like_one_pass(conv_run, tmp_path):
    img = save_image(tmp_path / "big.png", lr_image())
    tiled, said = _upscale(conv_run, img, tmp_path / "t.png", "--tile", "32x40")
    whole, said_whole = _upscale(conv_run, img, tmp_path / "w.png", "--tile", "80x140")
    default, _ = _upscale(conv_run, img, tmp_path / "d.png")
    assert tiled.shape == whole.shape == (150, 262, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    np.testing.assert_array_equal(whole, default)  # fits in the default 256x256 tile: one pass, as before
    assert "tiles of 32x40 LR px" in said and "same output as one pass" in said and "tiles)" in said
    assert "LR px" not in said_whole and "tiles)" not in said_whole


def test_cli_says_when_tiles_approximate(tmp_path):
    run = tmp_path / "esrt"
    save_model(run, create_zoo_model("esrt_lite", 2, width=8, blocks=1, tblocks=1, heads=1, rows=1))
    img = save_image(tmp_path / "big.png", lr_image((40, 70)))
    sr, said = _upscale(run, img, tmp_path / "o.png", "--tile", "32x32")
    assert sr.shape == (80, 140, 3) and "approximate" in said


def test_grey_and_rgba_inputs_keep_their_meaning_when_tiled(conv_run, tmp_path):
    """Grey becomes three equal channels and alpha is dropped (README), in tiles as in one pass."""
    rgb = lr_image((50, 90))
    grey = rgb[:, :, 0]
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    Image.fromarray(np.dstack([rgb, np.full(grey.shape, 7, np.uint8)]), "RGBA").save(tmp_path / "a.png")
    save_image(tmp_path / "rgb.png", rgb)
    save_image(tmp_path / "grey3.png", np.repeat(grey[:, :, None], 3, axis=2))
    out = {name: _upscale(conv_run, tmp_path / f"{name}.png", tmp_path / f"{name}_x2.png", "--tile", "32x32")[0]
           for name in ("g", "a", "rgb", "grey3")}
    np.testing.assert_array_equal(out["g"], out["grey3"])
    np.testing.assert_array_equal(out["a"], out["rgb"])
    assert out["g"].shape == (100, 180, 3)

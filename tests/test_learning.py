"""Does anything learn? A short deterministic training of a small fixed genotype with the shipped recipe must
beat bicubic on the held-out photos by a clear margin and keep their colours.

One training (module fixture, ~20 s on 2 CPU threads) serves every test here. The margins are far from the
measured values (docs/benchmarks.md), so they test learning, not luck; no test depends on wall time.
"""

import numpy as np
import pytest
import torch

from trisr.data.pairs import load_pairs
from trisr.data.resize import bicubic_downscale
from trisr.evaluate import evaluate, super_resolve
from trisr.rundir import load_model
from trisr.search.config import preset
from trisr.space.genotype import Genotype
from trisr.train import train

STEPS = 600


def small_genotype() -> Genotype:
    """Quick-preset space, the shallowest path: one stem cell of conv3x3 / residual ops at mixed widths."""
    space = preset("quick").space
    return Genotype(space, "C", [[1, 2, 1, 0, 1]], [[2, 1, 2, 1]], node_index=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("learn")
    src = out / "genotype.json"
    src.write_text(small_genotype().to_json())
    recipe = preset("quick").recipe().replace(steps=STEPS, batch_size=8)
    summary = train(src, out / "run", recipe, seed=0)
    return summary, load_model(out / "run")


def test_training_beats_bicubic_on_every_held_out_photo(trained):
    summary, _ = trained
    m = summary["metrics"]
    assert m["gain_db"] > 0.4, m  # measured: see docs/benchmarks.md (learning test row)
    for row in m["images"]:
        assert row["psnr_db"] > row["bicubic_psnr_db"] + 0.2, row
    assert summary["settings"]["recipe"]["phase"]["steps"] == STEPS


def test_training_is_deterministic(trained, tmp_path):
    """The same seed gives the same weights: short runs are exactly reproducible on one machine."""
    src = tmp_path / "genotype.json"
    src.write_text(small_genotype().to_json())
    recipe = preset("quick").recipe().replace(steps=20, batch_size=4)
    a = train(src, tmp_path / "a", recipe, seed=3)
    b = train(src, tmp_path / "b", recipe, seed=3)
    assert a["metrics"]["psnr_db"] == b["metrics"]["psnr_db"]


def test_colour_fidelity_on_colour_photos(trained):
    """Mean per-channel bias of the output against HR stays within 1.5 levels of 255 on the held-out colour
    photos (the reference head drifted by up to 10 levels in green)."""
    _, model = trained
    for pair in load_pairs(None, 2, "val"):
        sr = super_resolve(model, pair.lr).astype(np.float64)
        bias = (sr - pair.hr.astype(np.float64)).reshape(-1, 3).mean(0)
        assert np.all(np.abs(bias) < 1.5), (pair.name, bias)


@pytest.mark.parametrize("colour", [(200, 30, 40), (20, 180, 60), (30, 60, 220), (128, 128, 128), (250, 250, 250), (5, 5, 5)])
def test_uniform_colour_patch_comes_back_as_that_colour(trained, colour):
    _, model = trained
    hr = np.empty((64, 64, 3), np.uint8)
    hr[...] = colour
    lr = np.clip(np.rint(bicubic_downscale(hr, 2)), 0, 255).astype(np.uint8)
    sr = super_resolve(model, lr).astype(np.int64)
    inner = sr[8:-8, 8:-8]  # away from the zero-padded borders
    assert np.abs(inner - np.array(colour)).max() <= 2, (colour, inner.reshape(-1, 3).mean(0))

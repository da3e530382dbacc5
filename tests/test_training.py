"""trisr.training: the shared training state resumes bit-exactly from its state_dict (with and without an EMA),
through a real checkpoint file, and the search's fine-tune checkpoints keep their historical keys."""

import io
import json

import numpy as np
import pytest
import torch

from trisr.data.pairs import ImagePair
from trisr.search.config import Phase, Recipe
from trisr.search.engine import _finetune_keys, _trainer_keys
from trisr.training import Trainer
from trisr.zoo import ZooSpec

SPEC = ZooSpec("fsrcnn", 2, {"d": 8, "s": 4, "m": 1})
STEPS = 6


def _pairs() -> list[ImagePair]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        lr = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
        hr = lr.repeat(2, 0).repeat(2, 1)  # any aligned pair will do: this checks state, not learning
        out.append(ImagePair(f"im{i}", hr, lr))
    return out


def _recipe(ema: float) -> Recipe:
    # cosine: the lr changes every step, so a scheduler restored at the wrong step would show
    return Recipe(Phase(steps=STEPS, lr=1e-3, batch_size=2, schedule="cosine", ema=ema), lr_patch=8)


def _trainer(recipe: Recipe, init_seed: int) -> Trainer:
    torch.manual_seed(init_seed)
    return Trainer(SPEC.build(), recipe, _pairs(), seed=4)


def _through_a_file(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)  # as trisr.checkpoint.load_checkpoint reads it


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("ema", [0.0, 0.9])
@pytest.mark.parametrize("k", [0, 2, 5])
def test_state_dict_round_trip_continues_identically(ema, k):
    recipe = _recipe(ema)
    full = _trainer(recipe, init_seed=1)
    losses: list[float] = []
    full.run(lambda done, loss: losses.append(loss))
    assert full.step == STEPS and (full.ema is not None) == (ema > 0)

    first = _trainer(recipe, init_seed=1)

    def stop_at_k(done: int, loss: float) -> None:
        if done == k:
            raise KeyboardInterrupt  # a kill right after step k

    if k > 0:
        with pytest.raises(KeyboardInterrupt):
            first.run(stop_at_k)
    state = _through_a_file(first.state_dict())
    assert state["step"] == k and ("ema" in state) == (ema > 0)
    assert {"model", "opt", "sched", "ranks", "step"} <= set(state)

    torch.manual_seed(12345)  # a different torch RNG and different initial weights: the state must restore both
    second = _trainer(recipe, init_seed=2)
    second.load_state_dict(state)
    rest: list[float] = []
    second.run(lambda done, loss: rest.append(loss))

    assert second.step == STEPS and rest == losses[k:]
    _assert_same(full.model, second.model)
    _assert_same(full.shipped, second.shipped)
    assert (full.shipped is full.model) == (ema == 0)
    assert full.lr == second.lr


def test_fine_tune_checkpoints_keep_their_keys():
    state = _trainer(_recipe(0.9), init_seed=1).state_dict()
    on_disk = _finetune_keys(state)
    assert set(on_disk) == {"derived", "opt", "sched", "ema", "ranks", "step"}
    assert json.loads(on_disk["ranks"])[0].keys() == {"samplers", "rng"}
    assert set(json.loads(on_disk["ranks"])[0]["samplers"]) == {"finetune"}
    back = _trainer_keys(on_disk)
    assert back["ranks"] == state["ranks"] and back["model"] is state["model"]

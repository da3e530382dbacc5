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


def _recipe(ema: float, lr_warmup_steps: int = 0) -> Recipe:
    # cosine: the lr changes every step, so a scheduler restored at the wrong step would show
    phase = Phase(steps=STEPS, lr=1e-3, batch_size=2, schedule="cosine", ema=ema, lr_warmup_steps=lr_warmup_steps)
    return Recipe(phase, lr_patch=8)


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


@pytest.mark.parametrize("ema,lr_warmup_steps", [(0.0, 0), (0.9, 0), (0.9, 3)])
@pytest.mark.parametrize("k", [0, 2, 5])
def test_state_dict_round_trip_continues_identically(ema, lr_warmup_steps, k):
    recipe = _recipe(ema, lr_warmup_steps)
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


@pytest.mark.parametrize("schedule", ["cosine", "multistep"])
def test_warmup_rises_linearly_then_runs_the_schedule_over_the_rest(schedule):
    steps, warm = 20, 5
    ph = Phase(steps=steps, lr=2.0, batch_size=1, schedule=schedule, lr_warmup_steps=warm, milestones=(0.5,))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=ph.lr)
    sched = ph.scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:warm] == pytest.approx([2.0 * (i + 1) / warm for i in range(warm)])
    assert lrs[warm] == pytest.approx(2.0)  # the schedule starts at the peak right after the warm-up
    if schedule == "cosine":
        assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1:]))
        assert sched.get_last_lr()[0] == pytest.approx(2.0 * ph.min_lr_ratio)  # ends where it would without warm-up
    else:
        assert lrs[warm + 7] == pytest.approx(2.0) and lrs[warm + 8] == pytest.approx(1.0)  # halved at 0.5 of the rest
    # without warm-up the phase keeps torch's own schedulers (old checkpoints restore into the same class)
    assert type(Phase(steps=steps, lr=2.0, batch_size=1, schedule=schedule).scheduler(opt)).__name__ != "LambdaLR"


def test_warmup_longer_than_the_phase_is_refused():
    from trisr.errors import TrisrError

    with pytest.raises(TrisrError, match="lr_warmup_steps"):
        Phase(steps=4, lr=1e-3, batch_size=1, lr_warmup_steps=5)

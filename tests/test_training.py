"""trisr.training: the shared training state resumes bit-exactly from its state_dict (with and without an EMA),
through a real checkpoint file, and the search's fine-tune checkpoints keep their historical keys; a fine-tune
time limit cuts the steps by the measured step time and its probe leaves the training it precedes unchanged."""

import io
import json

import numpy as np
import pytest
import torch

from trisr.data.pairs import ImagePair
from trisr.search.config import Phase, Recipe
from trisr.search.engine import _finetune_keys, _trainer_keys
from trisr.training import StepPlan, Trainer, plan_steps
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


def test_no_time_limit_measures_nothing_and_keeps_the_steps(monkeypatch):
    import trisr.training

    def no_probe(*a, **k):
        raise AssertionError("probed without a time limit")

    monkeypatch.setattr(trisr.training, "probe_step_ms", no_probe)
    plan = plan_steps(SPEC.build(), _recipe(0.9), _pairs(), seed=4, max_min=None)
    assert plan == StepPlan(STEPS, STEPS) and not plan.capped and plan.describe() == f"{STEPS} steps"
    assert plan.recipe(_recipe(0.9)) == _recipe(0.9)


def test_a_time_limit_cuts_the_steps_by_the_measured_step_time(monkeypatch):
    import trisr.training

    monkeypatch.setattr(trisr.training, "probe_step_ms", lambda *a, **k: 30_000.0)  # 2 steps a minute
    recipe = _recipe(0.9, lr_warmup_steps=5)
    plan = plan_steps(SPEC.build(), recipe, _pairs(), seed=4, max_min=1.5)
    assert plan == StepPlan(3, STEPS, 1.5, 30_000.0, 1) and plan.capped
    cut = plan.recipe(recipe)
    assert cut.phase.steps == 3 and cut.phase.lr_warmup_steps == 3  # a warm-up longer than the steps shrinks with them
    assert "3 of 6 steps (1.5 min; all would take 3.0 min)" in plan.describe()
    roomy = plan_steps(SPEC.build(), recipe, _pairs(), seed=4, max_min=60.0)
    assert roomy.steps == STEPS and not roomy.capped and "all 6 steps" in roomy.describe()
    # No time left: the floor, said to pass the limit
    floor = plan_steps(SPEC.build(), recipe, _pairs(), seed=4, max_min=0.0, min_steps=2)
    assert floor.steps == 2 and "the floor of 2 of 6 steps" in floor.describe() and "past the time limit" in floor.describe()
    assert plan_steps(SPEC.build(), recipe, _pairs(), seed=4, max_min=1e-6).steps == 1
    assert StepPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_the_step_time_probe_leaves_the_training_unchanged():
    """Probing runs real steps on copies: the model, its sampler and the torch RNG are as they were, so a run
    with a (non-binding) time limit trains bit-identically to one without."""
    recipe = _recipe(0.9)
    plain = _trainer(recipe, init_seed=1)
    plain.run(lambda done, loss: None)

    torch.manual_seed(1)
    model = SPEC.build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    plan = plan_steps(model, recipe, _pairs(), seed=4, max_min=600.0)
    assert plan.steps == STEPS and plan.step_ms is not None and plan.step_ms > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    probed = Trainer(model, plan.recipe(recipe), _pairs(), seed=4)
    probed.run(lambda done, loss: None)
    _assert_same(plain.model, probed.model)
    _assert_same(plain.shipped, probed.shipped)

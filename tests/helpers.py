"""Shared tiny settings of the test suite (importable as ``from helpers import ...``: pytest puts tests/ on
``sys.path``); tests/conftest.py offers the same as fixtures."""

from trisr.runtime.timing import TimingProtocol
from trisr.search.config import Phase, RunConfig
from trisr.space.config import SpaceConfig

#: The smallest useful search space: 2 cells, one upsampling, one searched cell path, 2 operations per cell.
TINY_SPACE = SpaceConfig(nf=8, num_cell=2, num_up=1, num_cell_path_search=1, ops_per_cell=2, scale=2)

#: A timing protocol of milliseconds (profiling and study tests check plumbing and schema, not latency).
FAST = TimingProtocol(warmup_runs=2, warmup_s=0.0, repeats=2, window_s=0.005, min_runs=3, retries=0)


def tiny_config(**kw) -> RunConfig:
    """A search configuration on :data:`TINY_SPACE` that runs end to end in seconds; ``kw`` overrides fields."""
    base = dict(
        preset="test",
        space=TINY_SPACE,
        lr_patch=12,
        warmup=Phase(steps=4, lr=1e-3, batch_size=2),
        search=Phase(steps=6, lr=1e-3, batch_size=2),
        finetune=Phase(steps=4, lr=1e-3, batch_size=2),
        control_every=2,
        log_every=2,
        checkpoint_every=2,
        cost_resolution=(32, 32),
    )
    base.update(kw)
    return RunConfig(**base)

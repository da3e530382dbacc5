"""Latency measurement protocol shared by profiling and benchmarking (deployment.md §5).

1. Warm-up: at least ``warmup_runs`` runs and ``warmup_s`` seconds (allocators, kernel selection, caches).
2. ``repeats`` timed windows; each runs until ``window_s`` of samples and at least ``min_runs`` are
   collected (time-based, so fast entries get many samples and slow ones still finish).
3. Outliers inside a window (interrupts, page faults) are clipped with Tukey's far fence (> Q3 + 3 IQR);
   whole windows above 1.25x (``SLOW_FACTOR``) the median of window medians are dropped (on small VMs a
   window can lose a vCPU entirely, deployment.md §5.3; :func:`keep_fast`, also used by bench and study to
   drop slow repetitions, :func:`combine_repetitions`).
4. The point estimate is the median of the window medians; p10/p90 come from the pooled kept samples.
   If the window medians spread more than ``max_spread`` (coefficient of variation), everything is
   measured again, up to ``retries`` times, and the steadiest attempt is kept (``stable=False`` if none
   met the bound).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TimingProtocol:
    warmup_runs: int = 5
    warmup_s: float = 0.1
    repeats: int = 3
    window_s: float = 0.2
    min_runs: int = 5
    max_runs: int = 2000
    max_spread: float = 0.1
    retries: int = 2

    def __post_init__(self) -> None:
        import math

        from trisr.errors import TrisrError

        if self.repeats < 1:
            raise TrisrError(f"--repeats must be >= 1, got {self.repeats}")
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise TrisrError(f"--window-s must be a finite number > 0, got {self.window_s}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    n: int
    windows: int
    dropped_windows: int
    cv: float  # coefficient of variation of the kept window medians
    stable: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _window(run: Callable[[], None], sync: Callable[[], None], p: TimingProtocol) -> np.ndarray:
    samples: list[float] = []
    total = 0.0
    while len(samples) < p.max_runs and (len(samples) < p.min_runs or total < p.window_s):
        t0 = time.perf_counter()
        run()
        sync()
        dt = time.perf_counter() - t0
        samples.append(dt * 1e3)
        total += dt
    a = np.asarray(samples)
    q1, q3 = np.percentile(a, [25, 75])
    return a[a <= q3 + 3.0 * (q3 - q1)]


#: A window or repetition whose median exceeds this factor times the median of all of them is dropped (it
#: lost a vCPU, deployment.md §5.2-5.3). The one rule for profiling (windows), bench and study (repetitions).
SLOW_FACTOR = 1.25


def keep_fast(medians: Sequence[float]) -> np.ndarray:
    """Boolean mask of the medians to keep: those at most :data:`SLOW_FACTOR` times the median of all."""
    m = np.asarray(medians, dtype=float)
    return m <= SLOW_FACTOR * float(np.median(m))


def combine_repetitions(timings: Sequence[Timing]) -> dict:
    """Combine repeated :class:`Timing` measurements of one network (bench and study repeat ``Runner.time``
    themselves, interleaved across networks): drop repetitions by :func:`keep_fast`, then median of the kept
    repetition medians, and medians of their p10s and p90s.

    Returns ``median_ms``, ``p10_ms``, ``p90_ms``, ``rep_medians_ms`` (every repetition, dropped ones too),
    ``dropped_reps``, ``cv`` (of the kept medians; None for one), ``n`` (kept samples) and ``stable`` (every
    kept repetition was).
    """
    keep = keep_fast([t.median_ms for t in timings])
    kept = [t for t, k in zip(timings, keep) if k]
    medians = [t.median_ms for t in kept]
    return {
        "median_ms": float(statistics.median(medians)),
        "p10_ms": float(statistics.median(t.p10_ms for t in kept)),
        "p90_ms": float(statistics.median(t.p90_ms for t in kept)),
        "rep_medians_ms": [t.median_ms for t in timings],
        "dropped_reps": len(timings) - len(kept),
        "cv": float(np.std(medians) / np.mean(medians)) if len(medians) > 1 else None,
        "n": sum(t.n for t in kept),
        "stable": all(t.stable for t in kept),
    }


def summarize(windows: list[np.ndarray], max_spread: float) -> Timing:
    medians = np.array([np.median(w) for w in windows])
    keep = keep_fast(medians)
    kept = [w for w, k in zip(windows, keep) if k]
    pooled = np.concatenate(kept)
    kept_medians = medians[keep]
    cv = float(np.std(kept_medians) / np.mean(kept_medians)) if kept_medians.size > 1 else 0.0
    p10, p90 = np.percentile(pooled, [10, 90])
    return Timing(
        median_ms=float(np.median(kept_medians)),
        p10_ms=float(p10),
        p90_ms=float(p90),
        n=int(pooled.size),
        windows=int(medians.size),
        dropped_windows=int((~keep).sum()),
        cv=cv,
        stable=cv <= max_spread,
    )


def measure(run: Callable[[], None], protocol: TimingProtocol = TimingProtocol(), sync: Callable[[], None] | None = None) -> Timing:
    """Time ``run()`` (one inference); ``sync`` waits for asynchronous devices (CUDA) after each run."""
    sync = sync or (lambda: None)
    start = time.perf_counter()
    i = 0
    while i < protocol.warmup_runs or time.perf_counter() - start < protocol.warmup_s:
        run()
        sync()
        i += 1
    best: Timing | None = None
    for _ in range(1 + protocol.retries):
        t = summarize([_window(run, sync, protocol) for _ in range(protocol.repeats)], protocol.max_spread)
        if best is None or t.cv < best.cv:
            best = t
        if t.stable:
            break
    assert best is not None
    return best

"""Scale each zoo family to a latency budget by *measuring* it in the target runtime.

Zoo networks are not in the latency table (their ops are not the search space's), so each rung of a
family's ladder (its knob settings, smallest to largest) is exported and timed where the model will run;
the family's entry for budget B is the largest rung whose measured median latency fits B. Measurements
are kept in the study folder (``zoo_latency.json``), so a resumed study and every budget reuse them.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trisr.errors import TrisrError
from trisr.progress import Reporter
from trisr.runtime.timing import TimingProtocol
from trisr.io import atomic_write_json

CACHE_FILE = "zoo_latency.json"
#: Rung timing: three 0.2 s windows after warm-up; the final study timing re-measures the chosen rungs.
FIT_PROTOCOL = TimingProtocol(repeats=3)


@dataclass(frozen=True)
class Rung:
    family: str
    knobs: dict
    digest: str
    median_ms: float
    p10_ms: float
    p90_ms: float

    @property
    def label(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.knobs.items()) if k != "skip")
        return f"{self.family}({inner})" if inner else self.family


class LatencyCache:
    """Measured latency of zoo configurations in one target runtime, persisted atomically after each one."""

    def __init__(self, path: Path, target: dict) -> None:
        self.path, self.target = path, target
        self.entries: dict[str, dict] = {}
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("target") != target:
                raise TrisrError(f"{path} was measured on another target; use a new study folder")
            self.entries = data["entries"]

    def measure(self, spec, backend, resolution: tuple[int, int]) -> Rung:
        from trisr.profile.profiler import time_module

        key = spec.digest()
        if key not in self.entries:
            model = spec.build().eval()
            with tempfile.TemporaryDirectory(prefix="trisr-zoo-") as tmp:
                t = time_module(backend, model, (1, 3, *resolution), FIT_PROTOCOL, Path(tmp))
            self.entries[key] = {"family": spec.family, "knobs": spec.knobs, "median_ms": t.median_ms,
                                 "p10_ms": t.p10_ms, "p90_ms": t.p90_ms}
            atomic_write_json(self.path, {"target": self.target, "entries": self.entries})
        e = self.entries[key]
        return Rung(e["family"], dict(e["knobs"]), key, e["median_ms"], e["p10_ms"], e["p90_ms"])


def fit_family(
    family: str,
    scale: int,
    budgets_ms: list[float],
    backend,
    resolution: tuple[int, int],
    cache: LatencyCache,
    reporter: Reporter | None = None,
) -> dict[float, Rung | None]:
    """For every budget, the largest rung of ``family`` whose measured latency fits it (None: not even the
    smallest does). Rungs are measured from the smallest up; the climb stops after two rungs in a row slower than
    the largest budget. Latency grows along a ladder only roughly (MACs are strictly increasing, but on CPUs a
    width that is not a multiple of the SIMD block can be slower than a wider one), hence the second look."""
    from trisr.zoo import ZOO, ZooSpec

    entry = ZOO.get(family)
    reporter = reporter or Reporter()
    top = max(budgets_ms)
    measured: list[Rung] = []
    reporter.phase(f"fit {family} to {', '.join(f'{b:g}' for b in budgets_ms)} ms", len(entry.ladder))
    for i, knobs in enumerate(entry.ladder):
        rung = cache.measure(ZooSpec(family, scale, dict(knobs)), backend, resolution)
        measured.append(rung)
        reporter.step(i + 1, {"rung": rung.label, "ms": rung.median_ms})
        if len(measured) >= 2 and min(r.median_ms for r in measured[-2:]) > top:
            break
    reporter.end_phase()
    return {b: next((r for r in reversed(measured) if r.median_ms <= b), None) for b in budgets_ms}

"""Export every network of a study to the target's format, verify it, and time all of them in one process
with interleaved repetitions (deployment.md §5: a slow spell of the machine then hits every network alike,
instead of whichever happened to be measured during it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trisr.export.bench import bench_protocol
from trisr.export.formats import format_for_backend
from trisr.progress import Reporter
from trisr.runtime.timing import combine_repetitions

#: One 0.5 s window per network per repetition; the repetitions are interleaved across networks.
WINDOW_S = 0.5


@dataclass
class Timed:
    artifact: Path
    verified: bool
    reason: str | None
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    rep_medians_ms: list[float] | None = None


def export_and_time(
    runs: dict[str, Path],
    out: Path,
    backend,
    resolution: tuple[int, int],
    reps: int,
    reporter: Reporter | None = None,
) -> dict[str, Timed]:
    """``runs``: name -> run folder. Each is exported (static ``resolution``) under ``out`` at the precision of
    ``backend`` — the one its latency table was measured at, so prediction and timing describe the same
    artifact — verified against PyTorch on the held-out photos, and then all are timed together, ``reps``
    interleaved rounds."""
    from trisr.export.pipeline import ExportRequest, export_run
    from trisr.export.shapes import InputSpec

    reporter = reporter or Reporter()
    fmt = format_for_backend(backend.name, backend.precision)
    spec = InputSpec(tuple(resolution))
    timed: dict[str, Timed] = {}
    runners = {}
    reporter.phase(f"export + verify ({fmt.name})", len(runs))
    for i, (name, run) in enumerate(runs.items()):
        req = ExportRequest(Path(run), fmt, backend.precision, spec, out, device=backend.device, threads=backend.threads)
        result = export_run(req)
        timed[name] = Timed(result.artifact, result.ok, result.reason)
        if result.ok:
            runners[name] = result.model.runner()
        reporter.step(i + 1, {"network": name, "verified": result.ok})
    reporter.end_phase()
    protocol = bench_protocol(WINDOW_S)
    samples: dict[str, list] = {name: [] for name in runners}
    reporter.phase(f"timing {len(runners)} networks, {reps} interleaved rounds", reps * len(runners))
    done = 0
    for _ in range(reps):
        for name, runner in runners.items():
            samples[name].append(runner.time(protocol))
            done += 1
            reporter.step(done, {"network": name, "ms": samples[name][-1].median_ms})
    reporter.end_phase()
    for name, ts in samples.items():
        agg = combine_repetitions(ts)  # the rule bench uses: drop slow rounds, medians of the rest
        t = timed[name]
        t.median_ms, t.p10_ms, t.p90_ms, t.rep_medians_ms = agg["median_ms"], agg["p10_ms"], agg["p90_ms"], agg["rep_medians_ms"]
    return timed

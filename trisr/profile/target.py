"""Resolve a deployment target (device + backend) and its latency table; measure derived networks there."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from trisr.errors import TrisrError
from trisr.export.lut import NOT_IN_TABLE
from trisr.profile.lut import LatencyTable, default_lut_path, load_lut
from trisr.profile.profiler import measure_network, profile
from trisr.progress import Reporter
from trisr.runtime.base import DEFAULT_BACKEND, Backend, create_backend
from trisr.runtime.timing import TimingProtocol
from trisr.space.config import SpaceConfig

DEVICES = ("cpu", "cuda", "jetson")


def make_backend(device: str, backend: str | None, threads: int | None = None, precision: str | None = None) -> Backend:
    if device not in DEVICES:
        raise TrisrError(f"unknown target device {device!r}; use one of {', '.join(DEVICES)}")
    from trisr.checks import check_threads

    check_threads(threads)  # before `threads or cpu_count` turns 0 into all cores
    name = backend or DEFAULT_BACKEND[device]
    if device == "cuda" and name == "tensorrt":
        # TensorRT is the shipping runtime on NVIDIA GPUs; fall back to torch CUDA where it is absent.
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None and backend is None:
            name = "torch"
    return create_backend(name, "cuda" if device == "jetson" and name == "torch" else device, threads or (os.cpu_count() or 1), precision)


def backend_from_target(target: dict) -> Backend:
    return create_backend(target["backend"], target["device"], target.get("threads"), target.get("precision"))


def resolve_latency_table(
    space: SpaceConfig,
    resolution: tuple[int, int],
    profile_path: Path | None,
    device: str,
    backend_name: str | None,
    threads: int | None,
    allow_mismatch: bool,
    reporter: Reporter,
    calibrate: int = 20,
    profiles: Path | None = None,
    precision: str | None = None,
) -> tuple[LatencyTable, Backend, Path]:
    """The LUT for this space on this target and the file it lives in: the given file, the cached one under the
    profiles folder (``profiles``; default ``$TRISR_PROFILES`` or ./profiles, :func:`trisr.profile.lut.profiles_root`),
    or a fresh profile (shown with progress, then cached there)."""
    if profile_path is not None:
        lut = load_lut(profile_path)
        if backend_name is None and precision is None:
            backend = backend_from_target(lut.target)
        else:
            backend = make_backend(device, backend_name or lut.target.get("backend"), threads, precision)
        lut.check(space, None if allow_mismatch else backend.describe(), resolution)
        return lut, backend, Path(profile_path)
    backend = make_backend(device, backend_name, threads, precision)
    path = default_lut_path(backend.describe(), space, resolution, profiles)
    if path.exists():
        lut = load_lut(path)
        lut.check(space, None if allow_mismatch else backend.describe(), resolution)
        reporter.message(f"using latency table {path}")
        return lut, backend, path
    reporter.message(f"no latency table for this target yet: profiling {backend.name} on {device} @ {resolution[0]}x{resolution[1]} LR")
    from trisr.lock import locked

    with locked(path, "file"):  # two commands profiling the same target do not write over each other
        lut = profile(space, backend, resolution, TimingProtocol(), calibrate=calibrate, reporter=reporter)
        path.parent.mkdir(parents=True, exist_ok=True)
        lut.save(path)
    reporter.message(f"latency table written to {path}")
    return lut, backend, path


MEASURE_ROUNDS = 3


def measure_rounds(backend: Backend, arch, resolution: tuple[int, int], model: torch.nn.Module | None = None):
    """``MEASURE_ROUNDS`` independent rounds (each compiles, warms up and times 5 windows) of a network of ``arch``
    (random weights unless ``model``: timing does not depend on them), and the round with the median latency."""
    rounds = [measure_network(backend, arch, tuple(resolution), TimingProtocol(repeats=5), model=model)
              for _ in range(MEASURE_ROUNDS)]
    return rounds, sorted(rounds, key=lambda t: t.median_ms)[len(rounds) // 2]


def measure_genotype_ms(backend: Backend, genotype, resolution: tuple[int, int]) -> float:
    """Latency (ms) of a network of ``genotype`` in the target runtime, judged like :func:`latency_report`."""
    return measure_rounds(backend, genotype, resolution)[1].median_ms


def latency_report(model: torch.nn.Module, lut: LatencyTable, backend: Backend, budget_ms: float | None) -> dict:
    """Predicted vs measured latency of a network (``model.arch``: derived or zoo) in the target runtime, against
    the budget. Only trisr genotypes have a prediction; for zoo networks ``predicted_ms`` and ``error_pct`` are
    None and ``predicted_reason`` says "not in the latency table".

    Measured in ``MEASURE_ROUNDS`` independent rounds (each compiles, warms up and times 5 windows) and judged on
    the round with the median latency: on a shared machine one round of ~1 s can fall into a slow spell (seen
    here: 34.4 ms in one round, 28.1-29.3 ms in the next three), and the median of rounds is robust to that
    without favouring fast outliers. Every round is reported."""
    rounds, timing = measure_rounds(backend, model.arch, lut.resolution, model)
    in_table = model.arch.kind == "trisr"
    predicted = lut.predict_ms(model.arch) if in_table else None
    verdict = None if budget_ms is None else ("PASS" if timing.median_ms <= budget_ms else "FAIL")
    return {
        "latency": {
            "resolution": list(lut.resolution),
            "backend": backend.describe(),
            "predicted_ms": predicted,
            "predicted_reason": None if in_table else NOT_IN_TABLE,
            "measured": timing.to_dict(),
            "rounds_ms": [t.median_ms for t in rounds],
            "error_pct": None if predicted is None else 100 * (predicted - timing.median_ms) / timing.median_ms,
            "budget_ms": budget_ms,
            "verdict": verdict,
        }
    }


def shipped_metrics(model: torch.nn.Module, backend: Backend, pairs: list, scale: int, resolution: tuple[int, int], run_dir: Path) -> dict:
    """The held-out PSNR of what ships: ``model`` exported in the format of ``backend``'s runtime at its precision
    (static input of the table's ``resolution``; int8: the export's own calibration and first/last policy), loaded
    back and run on ``pairs`` in tiles of that size — exactly ``trisr export`` + verification, into a temporary
    folder. Beside it, PyTorch fp32 on the same tiles. ``{}`` where the runtime has no export format (torch)."""
    import tempfile

    from trisr.export.formats import FORMATS
    from trisr.export.pipeline import ExportRequest, export_run
    from trisr.export.shapes import InputSpec
    from trisr.export.verify import TorchReference

    fmt = next((f for f in FORMATS if f.backend == backend.name and backend.precision in f.precisions), None)
    if fmt is None:
        return {}
    model = model.to("cpu", torch.float32).eval()
    with tempfile.TemporaryDirectory(prefix="trisr-ship-") as tmp:
        req = ExportRequest(Path(run_dir), fmt, backend.precision, InputSpec(tuple(resolution)), Path(tmp),
                            device=backend.device, threads=backend.threads)
        result = export_run(req, model, TorchReference(model, pairs, scale))
        v = result.verification
        runtime = result.model.describe()
    return {
        "metrics_shipped": {
            "format": fmt.name,
            "precision": backend.precision,
            "runtime": runtime,
            "input_hw": list(resolution),
            "psnr_db": v.psnr_db,
            "torch_psnr_db": v.torch_psnr_db,
            "psnr_loss_db": v.psnr_loss_db,
            "psnr_vs_torch_db": v.psnr_vs_torch_db,
            "max_abs": v.max_abs,
            "verified": result.ok,
            "images": [{"name": i.name, "psnr_db": i.psnr_db, "torch_psnr_db": i.torch_psnr_db} for i in v.images],
        }
    }

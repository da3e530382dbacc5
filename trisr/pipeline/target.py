"""The deployment target of a run: what a latency budget is measured against, resolved in one place and kept
with the run.

A :class:`TargetRequest` is what the user asked for (``--device``, ``--backend``, ``--threads``, ``--precision``,
``--profile``; None = the default, or the run's own on a resume). :func:`resolve_target` turns it into the
latency table, the runtime that times networks, and a :class:`DeployTarget` — device, runtime and its version,
precision, threads, input size, the machine, and the digest of the table's content — written to
``RUN/target.json``. A resume reads that record back: flags it was not given take the run's values, flags that
differ from them, and a runtime version or table that changed since, are refused in one line. So a resumed run
can never switch target, precision or table silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from trisr.errors import TrisrError
from trisr.io import atomic_write_json, read_json
from trisr.progress import Reporter

TARGET_FILE = "target.json"
TARGET_SCHEMA_VERSION = 1


class TargetMismatch(TrisrError):
    """A resume asked for another target than the run was started with."""


@dataclass(frozen=True)
class TargetRequest:
    device: str | None = None
    backend: str | None = None
    threads: int | None = None
    precision: str | None = None
    profile: Path | None = None  # a latency table file; default: the cached one for the target, else profiled
    profiles: Path | None = None  # the folder of cached tables (a location, not part of the target)
    allow_mismatch: bool = False


@dataclass(frozen=True)
class DeployTarget:
    """Everything that decides what a latency budget means. ``key()`` is what a resume must match."""

    device: str
    backend: str
    version: str | None
    precision: str
    threads: int
    input_hw: tuple[int, int]
    table_digest: str
    table: str | None  # the table file (where it was found or written)
    machine: dict = field(default_factory=dict)  # cpu, isa, machine; gpu where there is one
    schema_version: int = TARGET_SCHEMA_VERSION

    def key(self) -> dict:
        return {"device": self.device, "backend": self.backend, "version": self.version, "precision": self.precision,
                "threads": self.threads, "input": f"{self.input_hw[0]}x{self.input_hw[1]}", "table": self.table_digest}

    def describe(self) -> str:
        h, w = self.input_hw
        return (f"{self.backend} {self.version} {self.precision} on {self.device} ({self.threads} threads) @ {h}x{w} LR, "
                f"table {self.table_digest}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_hw"] = list(self.input_hw)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DeployTarget":
        if d.get("schema_version") != TARGET_SCHEMA_VERSION:
            raise TrisrError(f"target record schema version {d.get('schema_version')} is not supported")
        return cls(**{**d, "input_hw": tuple(d["input_hw"])})

    def save(self, run: Path) -> None:
        atomic_write_json(Path(run) / TARGET_FILE, self.to_dict())


def load_target(run: Path) -> DeployTarget | None:
    """The target recorded in ``run``, or None for a run without one (budgets in MACs or parameters, or a run
    of an earlier trisr)."""
    path = Path(run) / TARGET_FILE
    if not path.exists():
        return None
    d = read_json(path, "target record")
    try:
        return DeployTarget.from_dict(d)
    except (TypeError, KeyError) as exc:
        raise TrisrError(f"{path} is not a valid target record: {exc}") from None


def table_digest(lut) -> str:
    """A short digest of a table's content: it changes when the table is re-profiled or re-validated."""
    return hashlib.sha256(json.dumps(lut.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ResolvedTarget:
    lut: object  # trisr.profile.lut.LatencyTable
    runtime: object  # trisr.runtime.base.Backend: times networks at the table's precision
    target: DeployTarget
    path: Path  # the table file


def resolve_target(space, resolution: tuple[int, int], req: TargetRequest, reporter: Reporter) -> ResolvedTarget:
    """The table, runtime and target record for ``req`` (see the module docstring)."""
    from trisr.profile.target import resolve_latency_table

    lut, runtime, path = resolve_latency_table(
        space, tuple(resolution), req.profile, req.device or "cpu", req.backend, req.threads, req.allow_mismatch, reporter,
        profiles=req.profiles, precision=req.precision,
    )
    d = runtime.describe()
    machine = {k: d[k] for k in ("cpu", "isa", "machine", "gpu", "compute_capability") if d.get(k) is not None}
    target = DeployTarget(runtime.device, runtime.name, d.get("version"), runtime.precision, int(runtime.threads),
                          tuple(lut.resolution), table_digest(lut), str(path), machine)
    return ResolvedTarget(lut, runtime, target, path)


def request_for_resume(saved: DeployTarget | None, req: TargetRequest) -> TargetRequest:
    """``req`` completed from the run's own target: a flag left out takes the run's value; a flag that differs
    from it is refused. Without a record (an earlier trisr's run), ``req`` as given."""
    if saved is None:
        return req
    asked = {"--device": (req.device, saved.device), "--backend": (req.backend, saved.backend),
             "--threads": (req.threads, saved.threads), "--precision": (req.precision, saved.precision)}
    differ = [f"{flag} {mine} (the run has {theirs})" for flag, (mine, theirs) in asked.items()
              if mine is not None and str(mine) != str(theirs)]
    if differ:
        raise TargetMismatch(f"the run was started for {saved.describe()}; this resume asks for {', '.join(differ)}: "
                             "resume without those flags, or start a new run in another --out")
    profile = req.profile
    if profile is None and saved.table and Path(saved.table).exists():
        profile = Path(saved.table)
    return replace(req, device=saved.device, backend=saved.backend, threads=saved.threads, precision=saved.precision,
                   profile=profile)


def check_resumed(saved: DeployTarget | None, now: DeployTarget) -> None:
    """Refuse a resume whose resolved target differs from the run's: a runtime upgraded since, another table
    (re-profiled, re-validated or given with --profile), another input size."""
    if saved is None:
        return
    a, b = saved.key(), now.key()
    differ = [f"{k} {a[k]} -> {b[k]}" for k in a if str(a[k]) != str(b[k])]
    if differ:
        raise TargetMismatch(f"the run was started for {saved.describe()}, and its target has changed since ({'; '.join(differ)}); "
                             "a resumed search must use the runtime and latency table it started with: restore them, or "
                             "start a new run in another --out")

"""The latency lookup table (LUT): per-entry latencies measured in the target runtime, plus the
calibration that turns their sum into whole-network latency, as versioned JSON.

Prediction for a derived network (deployment.md §6.3-6.4)::

    raw       = sum of the in-context entry latencies (head, every op at its widths, up blocks, tail)
    predicted = overhead_ms + sum_g scale_g * raw_g        (g: groups of entries, see ``GROUPS``)

with one scale for everything ("affine") or one per op type plus one for the fixed blocks ("per_op"),
whichever predicted held-out calibration networks better. ``to_cost_table`` folds the calibration into
per-entry costs, so the search's expected latency equals the calibrated prediction at one-hot weights.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trisr.errors import CostTableError, TrisrError
from trisr.io import read_json
from trisr.space.config import SpaceConfig
from trisr.space.cost import ADD_KEY, CostTable, op_key
from trisr.space.genotype import Genotype

LUT_SCHEMA_VERSION = 1
#: What must be the same between the machine a table was measured on and the one it is used on. ``isa``: two
#: CPUs with one vendor name (an AMD EPYC with AVX-512 and one with AVX2 only) time the same network 2.6x apart.
MATCH_KEYS = ("backend", "device", "precision", "threads", "version", "cpu", "isa", "machine", "gpu", "compute_capability")


def _show(value) -> str:
    return " ".join(value) if isinstance(value, list) else repr(value)


def profile_command(target: dict, resolution: tuple[int, int]) -> str:
    """The ``trisr profile`` command that measures a table for ``target`` (a backend descriptor) on this machine."""
    return (f"trisr profile --device {target.get('device', 'cpu')} --backend {target.get('backend')} "
            f"--precision {target.get('precision')} --threads {target.get('threads')} --input {resolution[0]}x{resolution[1]}")


@dataclass
class LutEntry:
    latency_ms: float  # in-context cost: what the search sums
    fixed_ms: float  # per-inference boundary cost seen when the entry runs alone
    t_x1_ms: float  # the entry alone
    t_x3_ms: float | None  # three copies in a row (same-width entries only)
    p10_ms: float
    p90_ms: float
    n: int
    cv: float
    stable: bool


@dataclass
class Calibration:
    model: str  # "affine" or "per_op"
    overhead_ms: float
    scales: dict[str, float]  # group -> scale
    n: int  # networks fitted on
    loo_rmspe: dict[str, float]  # leave-one-out RMSPE of each candidate model
    networks: list[dict] = field(default_factory=list)  # genotype path, raw sums, measured ms


@dataclass
class LatencyTable:
    space: SpaceConfig
    resolution: tuple[int, int]  # LR input (H, W)
    batch: int
    target: dict  # device/runtime descriptor: backend, version, device, threads, precision, cpu/gpu...
    protocol: dict
    entries: dict[str, LutEntry]
    calibration: Calibration | None = None
    validation: dict | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    host: str = field(default_factory=platform.node)
    profiling_s: float = 0.0
    schema_version: int = LUT_SCHEMA_VERSION

    # -- keys and prediction --------------------------------------------------------------------------

    @property
    def space_fingerprint(self) -> str:
        return self.space.fingerprint()

    def entry(self, key: str) -> LutEntry:
        try:
            return self.entries[key]
        except KeyError:
            raise CostTableError(f"latency table has no entry {key!r} (profile the space again)") from None

    def genotype_keys(self, genotype: Genotype) -> list[str]:
        keys = ["head", "tail"] + ["up"] * genotype.path.count("U") + [ADD_KEY] * genotype.num_links
        for c in range(len(genotype.ops)):
            ch = genotype.cell_channels(c)
            keys += [op_key(name, ch[i], ch[i + 1]) for i, name in enumerate(genotype.cell_op_names(c))]
        return keys

    def group_sums(self, genotype: Genotype) -> dict[str, float]:
        """Raw entry latency per group: one group per op type, "fixed" for head, tail and up blocks."""
        sums = {g: 0.0 for g in groups(self.space)}
        for key in self.genotype_keys(genotype):
            sums[group_of(key)] += self.entry(key).latency_ms
        return sums

    def raw_ms(self, genotype: Genotype) -> float:
        return sum(self.group_sums(genotype).values())

    def predict_ms(self, genotype: Genotype) -> float:
        if self.calibration is None:
            raise TrisrError("the latency table is not calibrated (run trisr profile with --calibrate N > 0)")
        sums = self.group_sums(genotype)
        cal = self.calibration
        return cal.overhead_ms + sum(cal.scales[g] * s for g, s in sums.items())

    def to_cost_table(self) -> CostTable:
        """Per-entry calibrated costs in ms: expected cost at one-hot weights == ``predict_ms``."""
        if self.calibration is None:
            raise TrisrError("the latency table is not calibrated (run trisr profile with --calibrate N > 0)")
        cal = self.calibration
        entries = {k: cal.scales[group_of(k)] * e.latency_ms for k, e in self.entries.items()}
        entries["head"] += cal.overhead_ms  # the constant rides on the head, present in every network
        return CostTable(
            metric="latency_ms",
            space_fingerprint=self.space_fingerprint,
            resolution=self.resolution,
            entries=entries,
            descriptor={"kind": "measured", **self.target},
        )

    # -- compatibility ------------------------------------------------------------------------------------

    def check(self, space: SpaceConfig, target: dict | None = None, resolution: tuple[int, int] | None = None) -> None:
        """Refuse a table measured for another search space, resolution, device or runtime version."""
        if self.space_fingerprint != space.fingerprint():
            raise CostTableError(
                f"latency table covers search space {self.space_fingerprint}, not this one ({space.fingerprint()}); "
                "profile this space (trisr profile --preset ...)"
            )
        if resolution is not None and tuple(resolution) != tuple(self.resolution):
            raise CostTableError(
                f"latency table was measured at {self.resolution[0]}x{self.resolution[1]} LR, not {resolution[0]}x{resolution[1]}"
            )
        if target is None:
            return
        for key in MATCH_KEYS:
            mine, theirs = self.target.get(key), target.get(key)
            if mine is not None and theirs is not None and str(mine) != str(theirs):
                raise CostTableError(
                    f"latency table was measured with {key} {_show(mine)}, this machine has {_show(theirs)}: a table is "
                    f"used only where it was measured; profile this machine with `{profile_command(target, self.resolution)}` "
                    "(or pass --allow-mismatch)"
                )

    # -- serialisation ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        d = {
            "schema_version": self.schema_version,
            "space": self.space.to_dict(),
            "space_fingerprint": self.space_fingerprint,
            "resolution": list(self.resolution),
            "batch": self.batch,
            "target": self.target,
            "protocol": self.protocol,
            "created": self.created,
            "host": self.host,
            "profiling_s": self.profiling_s,
            "calibration": None if self.calibration is None else asdict(self.calibration),
            "validation": self.validation,
            "entries": {k: asdict(e) for k, e in self.entries.items()},
        }
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyTable":
        if d.get("schema_version") != LUT_SCHEMA_VERSION:
            raise CostTableError(f"latency table schema version {d.get('schema_version')} is not supported (expected {LUT_SCHEMA_VERSION})")
        space = SpaceConfig.from_dict(d["space"])
        if d.get("space_fingerprint") not in (None, space.fingerprint()):
            raise CostTableError("latency table is inconsistent: its space fingerprint does not match its space")
        cal = d.get("calibration")
        return cls(
            space=space,
            resolution=tuple(d["resolution"]),
            batch=int(d["batch"]),
            target=dict(d["target"]),
            protocol=dict(d["protocol"]),
            entries={k: LutEntry(**v) for k, v in d["entries"].items()},
            calibration=None if cal is None else Calibration(**cal),
            validation=d.get("validation"),
            created=d.get("created", ""),
            host=d.get("host", ""),
            profiling_s=float(d.get("profiling_s", 0.0)),
        )

    def save(self, path: str | Path) -> Path:
        from trisr.io import atomic_write_json

        path = Path(path)
        atomic_write_json(path, self.to_dict())
        return path


def load_lut(path: str | Path) -> LatencyTable:
    d = read_json(path, "latency table", error=CostTableError, not_json="is malformed (not JSON text)",
                  folder_hint="pass a table file (trisr profile writes them under profiles/)")
    if not isinstance(d, dict):
        raise CostTableError(f"latency table {path} is malformed: expected a JSON object, got a {type(d).__name__}")
    try:
        return LatencyTable.from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CostTableError(f"latency table {path} is malformed: {exc.__class__.__name__}: {exc}") from None


def groups(space: SpaceConfig) -> list[str]:
    return list(space.ops) + ["fixed"]


def group_of(key: str) -> str:
    return key.split(":")[1] if key.startswith("op:") else "fixed"


#: Environment variable naming the folder of latency tables (default ``./profiles``, relative to the current
#: directory); the ``--profiles DIR`` option of ``trisr search``, ``profile`` and ``study`` overrides it.
PROFILES_ENV = "TRISR_PROFILES"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def profiles_root(root: str | os.PathLike | None = None) -> Path:
    """Where latency tables are looked up and written: ``root`` if given, else ``$TRISR_PROFILES`` if set and
    non-empty, else ``profiles`` (relative to the current directory)."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(PROFILES_ENV) or "profiles")


def safe_component(value) -> str:
    """One file-name component from an untrusted field (e.g. a remote table's device name): characters outside
    [A-Za-z0-9._-] become '_', and leading dots are replaced so that '.', '..' and hidden names cannot occur."""
    text = _UNSAFE.sub("_", str(value))
    text = re.sub(r"^\.", "_", text)
    return text or "_"


def default_lut_path(
    target: dict, space: SpaceConfig, resolution: tuple[int, int], root: str | os.PathLike | None = None
) -> Path:
    """<root>/<device>-<backend>-<precision>-t<threads>-<H>x<W>-<space>.json, ``root`` resolved by
    :func:`profiles_root` (``--profiles``, then ``$TRISR_PROFILES``, then ``./profiles``). Every component is
    sanitised (the fields may come from a remote machine's table) and the result must lie inside the root."""
    c = safe_component
    name = (
        f"{c(target.get('device'))}-{c(target.get('backend'))}-{c(target.get('precision'))}-t{c(target.get('threads'))}"
        f"-{c(resolution[0])}x{c(resolution[1])}-{c(space.fingerprint())}.json"
    )
    root = profiles_root(root)
    path = root / name
    if path.resolve().parent != root.resolve():
        raise TrisrError(f"refusing to write a latency table outside {root}: {name}")
    return path

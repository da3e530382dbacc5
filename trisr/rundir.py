"""The run folder: what a search or training run writes, and how other commands read it back.

Layout::

    RUN/config.json        run configuration (schema-versioned)
    RUN/genotype.json      the derived architecture (schema-versioned), for trisr networks
    RUN/arch.json          instead of genotype.json, for zoo networks: the ``trisr.zoo.ZooSpec``
    RUN/model.safetensors  the derived network's weights
    RUN/summary.json       metrics, costs, settings, versions, wall time
    RUN/log.txt            human-readable log;  RUN/events.jsonl  the same, one JSON object per line
    RUN/cost_table.json    the cost table the search used (analytic, or calibrated latency)
    RUN/checkpoint.pt      resumable state (atomic; loaded with weights_only=True)
    RUN/supernet.safetensors  the trained supernet at derivation (for inherited baselines of the same run)

Every network trisr handles exposes ``model.arch`` (``.kind``, ``.scale``, ``.digest()``, ``.to_dict()``): a
:class:`~trisr.space.genotype.Genotype` (kind ``trisr``) or a :class:`~trisr.zoo.ZooSpec` (kind ``zoo``).
:func:`save_model` writes the file of its kind, :func:`load_model` reads whichever the folder holds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from trisr.errors import TrisrError
from trisr.io import atomic_write_json, read_json
from trisr.space.derived import DerivedNet
from trisr.space.genotype import Genotype

GENOTYPE_FILE = "genotype.json"
ARCH_FILE = "arch.json"
MODEL_FILE = "model.safetensors"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
COST_TABLE_FILE = "cost_table.json"
LOG_FILE = "log.txt"
EVENTS_FILE = "events.jsonl"
SUPERNET_FILE = "supernet.safetensors"
SUMMARY_SCHEMA_VERSION = 1
#: What a run folder needs elsewhere (e.g. copied to a remote host to bench it there).
RUN_FILES = (GENOTYPE_FILE, ARCH_FILE, MODEL_FILE, SUMMARY_FILE, CONFIG_FILE)


class RunLog:
    """Appends to log.txt and events.jsonl; a no-op on non-zero ranks (only rank 0 writes outputs)."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.out, self.enabled = out, enabled
        if enabled:
            out.mkdir(parents=True, exist_ok=True)

    def event(self, kind: str, **fields) -> None:
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        record = {"time": stamp, "event": kind, **fields}
        with open(self.out / EVENTS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        text = " ".join(f"{k}={_short(v)}" for k, v in fields.items())
        with open(self.out / LOG_FILE, "a") as f:
            f.write(f"{stamp} {kind} {text}\n")


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def arch_record(arch) -> dict:
    """An architecture as a JSON dict that says its kind (checkpoints, sidecars): ``{"kind": ..., **arch.to_dict()}``."""
    return {**arch.to_dict(), "kind": arch.kind}


def arch_from_record(d: dict):
    """The architecture of :func:`arch_record` (or of a plain genotype dict, which has no kind)."""
    if not isinstance(d, dict):
        raise TrisrError("invalid architecture record (expected a JSON object)")
    kind = d.get("kind", "trisr")
    if kind == "zoo":
        from trisr.zoo import ZooSpec

        return ZooSpec.from_dict(d)
    if kind != "trisr":
        raise TrisrError(f"unknown architecture kind {kind!r} (expected trisr or zoo)")
    return Genotype.from_dict({k: v for k, v in d.items() if k != "kind"})


def load_arch(path: str | Path):
    """The architecture of a genotype file, an arch file (any JSON file: dispatched on its content) or a run folder
    (``Genotype`` or ``ZooSpec``)."""
    path = Path(path)
    if path.is_dir():
        path = _arch_file(path)
    d = read_json(path, "architecture file")
    if isinstance(d, dict) and "kind" not in d and "family" in d:
        d = {**d, "kind": "zoo"}
    return arch_from_record(d)


def build_model(arch) -> torch.nn.Module:
    """A freshly initialised network of ``arch`` (a ``Genotype`` or a ``ZooSpec``); ``model.arch`` is ``arch``."""
    if getattr(arch, "kind", None) == "zoo":
        return arch.build()
    if isinstance(arch, Genotype):
        return DerivedNet(arch)
    raise TrisrError(f"not an architecture: {type(arch).__name__}")


def _arch_file(run: Path) -> Path:
    """The one architecture file of a run folder (genotype.json or arch.json); TrisrError for none or both."""
    have = [run / name for name in (GENOTYPE_FILE, ARCH_FILE) if (run / name).exists()]
    if not have:
        raise TrisrError(f"{run} holds neither {GENOTYPE_FILE} nor {ARCH_FILE}; is it a finished trisr run?")
    if len(have) == 2:
        raise TrisrError(f"{run} holds both {GENOTYPE_FILE} and {ARCH_FILE}; remove the one that does not belong")
    return have[0]


def is_finished(run: str | Path) -> bool:
    """A run folder whose network is trained and scored (its summary and weights are written last)."""
    run = Path(run)
    return (run / SUMMARY_FILE).exists() and (run / MODEL_FILE).exists()


def save_model(out: Path, model: torch.nn.Module) -> None:
    """The network's weights (safetensors) and its architecture file (genotype.json or arch.json, by kind)."""
    arch = model.arch
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = out / (MODEL_FILE + ".tmp")
    meta = {"arch_digest": arch.digest(), "kind": arch.kind}
    if arch.kind == "trisr":
        meta.update(genotype_digest=arch.digest(), format="trisr-derived")
    else:
        meta.update(format=f"trisr-{arch.kind}")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(out / MODEL_FILE)
    own, other = (GENOTYPE_FILE, ARCH_FILE) if arch.kind == "trisr" else (ARCH_FILE, GENOTYPE_FILE)
    atomic_write_json(out / own, arch.to_dict())
    (out / other).unlink(missing_ok=True)  # one architecture file per folder


def load_model(run: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of a run folder (trisr or zoo, by the architecture file it holds), weights loaded safely
    from safetensors."""
    run = Path(run)
    if not run.is_dir():
        raise TrisrError(f"run folder not found: {run}")
    arch_path = _arch_file(run)
    if not (run / MODEL_FILE).exists():
        raise TrisrError(f"{run} holds no {MODEL_FILE}; the run has not finished (resume it with --resume)")
    model = build_model(load_arch(arch_path))
    try:
        state = load_file(str(run / MODEL_FILE))
    except Exception as exc:
        raise TrisrError(f"cannot read weights {run / MODEL_FILE}: {exc}") from None
    expected = model.state_dict()
    missing = set(expected) ^ set(state)
    if missing:
        raise TrisrError(f"weights in {run / MODEL_FILE} do not match the architecture (tensors {sorted(missing)[:3]}...)")
    wrong = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise TrisrError(
            f"weights in {run / MODEL_FILE} do not match the architecture in {arch_path.name}: {k} has shape "
            f"{tuple(state[k].shape)}, the architecture needs {tuple(expected[k].shape)} ({len(wrong)} tensor(s) differ)"
        )
    model.load_state_dict(state)
    return model.to(device).eval()


def save_supernet(out: Path, supernet: torch.nn.Module) -> None:
    """The supernet's weights and architecture parameters, atomically (safetensors: no pickle)."""
    state = {k: v.detach().cpu().contiguous() for k, v in supernet.state_dict().items()}
    tmp = out / (SUPERNET_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"space": supernet.space.fingerprint(), "format": "trisr-supernet"})
    tmp.replace(out / SUPERNET_FILE)


def load_supernet(run: str | Path, device: str | torch.device = "cpu"):
    """The supernet a run kept at derivation, built from the run's configuration."""
    from trisr.search.config import RunConfig
    from trisr.space.supernet import Supernet

    run = Path(run)
    path = run / SUPERNET_FILE
    if not path.exists():
        raise TrisrError(f"{run} holds no {SUPERNET_FILE} (runs keep their supernet from this version on)")
    from trisr.search.strategies import STRATEGY_BY_NAME

    cfg = RunConfig.load(run / CONFIG_FILE)
    net = Supernet(cfg.space, cfg.relax, network=STRATEGY_BY_NAME[cfg.strategy].network)
    try:
        net.load_state_dict(load_file(str(path)))
    except Exception as exc:
        raise TrisrError(f"cannot read supernet {path}: {str(exc).splitlines()[0]}") from None
    return net.to(device).eval()


def write_summary(out: Path, summary: dict) -> None:
    atomic_write_json(out / SUMMARY_FILE, {"schema_version": SUMMARY_SCHEMA_VERSION, **summary})


def read_summary(run: Path) -> dict:
    try:
        return json.loads((Path(run) / SUMMARY_FILE).read_text())
    except FileNotFoundError:
        raise TrisrError(f"{run} holds no {SUMMARY_FILE}") from None

"""Option vocabulary shared by the commands: the spec's words.

Two meanings, never mixed:

* ``--device cpu|cuda|jetson`` (:class:`Target`) is where the network is **deployed and timed**: the device a
  latency table is measured on, a budget is met on, an artifact is exported for and benchmarked on (``profile``,
  ``search``, ``export``, ``bench``, ``study``, ``deploy``). ``--target``, the word of earlier releases, is kept
  as a hidden alias so existing scripts keep working.
* ``--train-device cpu|cuda|auto`` (:class:`TorchDevice`) is where **PyTorch trains** (``search``, ``train``,
  ``study``, ``deploy``); ``--torch-device`` is where PyTorch runs a run folder's network in ``eval`` and
  ``upscale``. These two commands deploy nothing, so their old ``--device`` stays a hidden alias there, and so
  does ``train``'s.

All are enums: ``--help`` lists the choices and typer refuses others with exit status 2. Defaults are None and
resolved here, so an alias and its option can be told apart (giving both with different values is refused).
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Optional

from trisr.errors import TrisrError


class Target(str, Enum):
    """Deployment target: where the network will run (latency tables, artifacts, benchmarks)."""

    cpu = "cpu"
    cuda = "cuda"
    jetson = "jetson"


class TorchDevice(str, Enum):
    """Where PyTorch runs search, training, evaluation and upscaling."""

    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


DEVICE_HELP = ("Deployment device the network is timed and shipped on: cpu, cuda (NVIDIA GPU) or jetson "
               "(default cpu). Not where PyTorch trains (--train-device).")
TRAIN_DEVICE_HELP = ("Where PyTorch trains: cpu, cuda or auto (cuda when torch sees a GPU; default auto). "
                     "Not the deployment device (--device).")
TORCH_DEVICE_HELP = "Where PyTorch runs the network: cpu, cuda or auto (cuda when torch sees a GPU; default auto)."


def _one_of(value, alias, names: str):
    """``value`` or its hidden ``alias``; both given and different is refused."""
    if value is not None and alias is not None and value != alias:
        raise TrisrError(f"{names} name the same setting; give one ({value.value} vs {alias.value})")
    return value if value is not None else alias


def deploy_device(device: Target | None, target_alias: Target | None = None, default: Target | None = Target.cpu) -> Target | None:
    """The deployment device of ``--device`` (or its hidden alias ``--target``), else ``default``."""
    chosen = _one_of(device, target_alias, "--device and --target")
    return default if chosen is None else chosen


def pick_torch_device(device: TorchDevice | None, alias: TorchDevice | None = None,
                      names: str = "--torch-device and --device") -> TorchDevice:
    """The option or its hidden alias, unresolved (default auto)."""
    chosen = _one_of(device, alias, names)
    return TorchDevice.auto if chosen is None else chosen


def train_device(device: TorchDevice | None, alias: TorchDevice | None = None, names: str = "--train-device and --device") -> str:
    """Where PyTorch runs, resolved (:func:`torch_device`) from the option or its hidden alias (default auto)."""
    return torch_device(pick_torch_device(device, alias, names))


def run_config_changes(cfg, strategy: Optional[str] = None, seed: Optional[int] = None, scale: Optional[int] = None,
                       warmup_steps: Optional[int] = None, search_steps: Optional[int] = None,
                       finetune_steps: Optional[int] = None, max_minutes: Optional[float] = None) -> dict:
    """The ``RunConfig`` changes of the flags ``search`` and ``deploy`` share (``--strategy``, ``--seed``, ``--scale``,
    the three step counts, ``--max-minutes``), for ``cfg.replace(**changes)``."""
    from dataclasses import replace

    from trisr.search.strategies import get_strategy

    changes: dict = {}
    if strategy is not None:
        changes.update(get_strategy(strategy).config_changes(cfg))
    if seed is not None:
        changes["seed"] = seed
    if scale is not None:
        changes["space"] = cfg.space.replace(scale=scale)
    for name, value in (("warmup", warmup_steps), ("search", search_steps), ("finetune", finetune_steps)):
        if value is not None:
            changes[name] = replace(getattr(cfg, name), steps=value)
    if finetune_steps is not None:
        changes["max_wall_min"] = 0.0  # an explicit step count is trained in full
    if max_minutes is not None:
        changes["max_wall_min"] = max_minutes
    return changes


def torch_device(device: TorchDevice | str) -> str:
    """``auto`` resolved; ``cuda`` refused with one line when torch sees no GPU."""
    import torch

    name = TorchDevice(device).value
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrisrError("PyTorch on cuda asked for (--train-device/--torch-device cuda), but torch sees no CUDA GPU")
    return name


def parse_hw(text: str) -> tuple[int, int]:
    """``"256x256"`` -> (256, 256): an LR size as HxW."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise TrisrError(f"resolution must look like 256x256 (HxW), got {text!r}") from None
    if h < 1 or w < 1:
        raise TrisrError(f"resolution must be positive, got {text!r}")
    return h, w


def input_spec(shape: str, dynamic: bool = False, min_hw: Optional[str] = None, opt_hw: Optional[str] = None,
               max_hw: Optional[str] = None):
    """The artifact input of ``--shape`` / ``--dynamic --min --opt --max`` (export and bench)."""
    from trisr.export.shapes import InputSpec

    if not dynamic and (min_hw or opt_hw or max_hw):
        raise TrisrError("--min/--opt/--max describe a dynamic input; add --dynamic")
    base = parse_hw(opt_hw or shape)
    if not dynamic:
        return InputSpec(base)
    return InputSpec(base, True, parse_hw(min_hw) if min_hw else None, parse_hw(max_hw) if max_hw else None)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def keep_float_option(text: Optional[str]) -> tuple[str, ...]:
    """``--keep-float``: which convolutions int8 keeps float (default first and last)."""
    if text is None:
        return ("first", "last")
    parts = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    if parts == ("none",):
        return ()
    if not parts or any(p not in ("first", "last") for p in parts):
        raise TrisrError(f"--keep-float takes first, last, first,last or none, not {text!r}")
    return parts

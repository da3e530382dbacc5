"""Option vocabulary shared by the commands.

Two words, never mixed: ``--target`` is the deployment target a latency is measured or an artifact runs on
(:class:`Target`: cpu, cuda, jetson); ``--device`` is where PyTorch itself runs (:class:`TorchDevice`: cpu,
cuda, auto). Both are enums, so ``--help`` lists the choices and typer refuses others with exit status 2.
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


TARGET_HELP = "Deployment target: cpu, cuda (NVIDIA GPU) or jetson."
DEVICE_HELP = "Where PyTorch runs: cpu, cuda or auto (cuda when torch sees a GPU)."


def torch_device(device: TorchDevice | str) -> str:
    """``auto`` resolved; ``cuda`` refused with one line when torch sees no GPU."""
    import torch

    name = TorchDevice(device).value
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrisrError("--device cuda asked for, but torch sees no CUDA GPU")
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

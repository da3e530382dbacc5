"""The backend interface (registry ``BACKENDS``), in nn-Meter's convert / run / report split:

* ``test_connection()`` says clearly what is missing (which package or extra to install);
* ``load(onnx_path, module, input_shape)`` compiles an ONNX file (or, for torch, takes the module) into a
  :class:`Runner` -- the convert step, timed apart from inference;
* ``Runner.run(x)`` runs one input; ``Runner.time(protocol)`` measures latency (the run step);
* ``describe()`` reports the runtime, its version, device, threads and precision (the report step).

The backends live one per module (``onnxruntime``, ``openvino``, ``torch``, ``tensorrt``) and register
themselves on import; ``trisr/runtime/__init__.py`` imports them, this module imports none of them.
Optional runtimes are imported lazily inside their backend so ``import trisr`` works without them.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from trisr.errors import TrisrError
from trisr.registry import Registry
from trisr.runtime.devices import cpu_isa, cpu_name
from trisr.runtime.timing import Timing, TimingProtocol, measure

BACKENDS: Registry[type["Backend"]] = Registry("backend")
#: Sensible default backend per target device.
DEFAULT_BACKEND = {"cpu": "onnxruntime", "cuda": "tensorrt", "jetson": "tensorrt"}


class RuntimeUnavailable(TrisrError):
    """A backend cannot run here; the message says what to install."""


@dataclass
class Runner:
    """A compiled model ready to run on fixed-shape float32 NCHW input."""

    input_shape: tuple[int, ...]
    _run: Callable[[np.ndarray], np.ndarray]
    compile_s: float = 0.0
    _sync: Callable[[], None] | None = None
    _bound: Callable[[], None] | None = None  # one inference on a preset input (timing path)
    info: dict = field(default_factory=dict)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(x, dtype=np.float32))

    def time(self, protocol: TimingProtocol = TimingProtocol()) -> Timing:
        if self._bound is not None:
            return measure(self._bound, protocol, self._sync)
        x = np.random.default_rng(0).random(self.input_shape, dtype=np.float32)
        return measure(lambda: self._run(x), protocol, self._sync)


class Backend:
    name: str = ""
    devices: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    default_precision: str = "fp32"  # what create_backend asks for when no precision is given
    install_hint: str = ""
    #: Precisions that run natively only on CPUs with one of these ISA extensions (``cpu_isa()`` names); the
    #: backend refuses them elsewhere rather than measure an emulation.
    precision_isa: dict[str, tuple[str, ...]] = {}

    @classmethod
    def default_precision_for(cls, device: str) -> str:
        """The precision the runtime itself uses on ``device`` when none is asked for (OpenVINO: bf16 on CPUs
        with native BF16). Tables, searches and measurements without ``--precision`` use this."""
        return cls.default_precision

    def check_isa(self) -> None:
        needs = self.precision_isa.get(self.precision) if self.device == "cpu" else None
        if needs and not set(needs) & set(cpu_isa()):
            raise RuntimeUnavailable(
                f"{self.name} {self.precision} needs a CPU with {' or '.join(n.upper().replace('_', '-') for n in needs)}; "
                f"this one ({cpu_name()}) has none: use --precision fp32"
            )

    def __init__(self, device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> None:
        if device not in self.devices:
            raise TrisrError(f"backend {self.name} runs on {', '.join(self.devices)}, not {device}")
        if precision not in self.precisions:
            raise TrisrError(f"backend {self.name} supports precisions {', '.join(self.precisions)}, not {precision}")
        self.device = device
        self.threads = threads or (os.cpu_count() or 1)
        self.precision = precision

    # nn-Meter style: say what is missing before doing any work.
    def test_connection(self) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict:
        d = {
            "backend": self.name,
            "version": self.version(),
            "device": self.device,
            "threads": self.threads,
            "precision": self.precision,
            "cpu": cpu_name(),
            "isa": cpu_isa(),
            "machine": platform.machine(),
        }
        return d

    def load(
        self, onnx_path: Path | None, module: torch.nn.Module | None, input_shape: tuple[int, ...], entry_io: bool = False,
        keep_float: tuple[str, ...] = ("first", "last"),
    ) -> Runner:
        """Compile for ``input_shape``. ``entry_io``: the model is a standalone profiling entry; a backend may
        declare boundary layouts that avoid the layout conversions a whole network pays only once. ``keep_float``:
        at int8, the convolutions ("first", "last") of this model that stay float — the export's policy for a
        whole network; a profiling entry passes what its part of the network gets."""
        raise NotImplementedError

    @property
    def needs_onnx(self) -> bool:
        return True


def require_module(module: str, hint: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise RuntimeUnavailable(f"{module} is not installed: {hint}")


def create_backend(name: str, device: str = "cpu", threads: int | None = None, precision: str | None = None) -> Backend:
    from trisr.checks import check_threads

    check_threads(threads)
    try:
        cls = BACKENDS.get(name)
    except KeyError as exc:
        raise TrisrError(str(exc).strip('"')) from None
    backend = cls(device, threads, precision or cls.default_precision_for(device))
    backend.test_connection()
    backend.check_isa()
    return backend


def load_runner(
    backend: Backend, module: torch.nn.Module, input_shape: tuple[int, ...], workdir: Path, entry_io: bool = False,
    keep_float: tuple[str, ...] = ("first", "last"),
) -> Runner:
    """Convert (export to ONNX where the backend needs it) and compile ``module`` for ``input_shape``."""
    from trisr.runtime.onnx_io import export_onnx

    onnx_path = None
    if backend.needs_onnx:
        onnx_path = export_onnx(module, input_shape, workdir / "model.onnx")
    return backend.load(onnx_path, module, input_shape, entry_io, keep_float)

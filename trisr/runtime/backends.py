"""Inference runtimes behind one interface (registry ``BACKENDS``), in nn-Meter's convert / run / report
split:

* ``test_connection()`` says clearly what is missing (which package or extra to install);
* ``load(onnx_path, module, input_shape)`` compiles an ONNX file (or, for torch, takes the module) into a
  :class:`Runner` -- the convert step, timed apart from inference;
* ``Runner.run(x)`` runs one input; ``Runner.time(protocol)`` measures latency (the run step);
* ``describe()`` reports the runtime, its version, device, threads and precision (the report step).

Optional runtimes are imported lazily so ``import trisr`` works without them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from trisr.errors import TrisrError
from trisr.registry import Registry
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


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Backend:
    name: str = ""
    devices: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    install_hint: str = ""

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
            "machine": platform.machine(),
        }
        return d

    def load(
        self, onnx_path: Path | None, module: torch.nn.Module | None, input_shape: tuple[int, ...], entry_io: bool = False
    ) -> Runner:
        """Compile for ``input_shape``. ``entry_io``: the model is a standalone profiling entry; a backend may
        declare boundary layouts that avoid the layout conversions a whole network pays only once."""
        raise NotImplementedError

    @property
    def needs_onnx(self) -> bool:
        return True


def _require(module: str, hint: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise RuntimeUnavailable(f"{module} is not installed: {hint}")


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    install_hint = "pip install onnxruntime (onnxruntime-gpu for CUDA)"

    def test_connection(self) -> None:
        _require("onnxruntime", self.install_hint)
        import onnxruntime as ort

        if self.device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeUnavailable("onnxruntime has no CUDAExecutionProvider here: pip install onnxruntime-gpu")

    def version(self) -> str:
        import onnxruntime as ort

        return ort.__version__

    def load(self, onnx_path, module, input_shape, entry_io=False) -> Runner:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # ENABLE_ALL, not EXTENDED: EXTENDED skips the NCHWc layout transform (deployment.md §3.2).
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        providers = ["CUDAExecutionProvider"] if self.device == "cuda" else ["CPUExecutionProvider"]
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(onnx_path), sess_options=so, providers=providers)
        compile_s = time.perf_counter() - t0
        name = sess.get_inputs()[0].name
        return Runner(tuple(input_shape), lambda x: sess.run(None, {name: x})[0], compile_s)


@BACKENDS.register("openvino")
class OpenVINOBackend(Backend):
    name = "openvino"
    devices = ("cpu",)
    precisions = ("fp32", "fp16")
    install_hint = "pip install openvino"

    def test_connection(self) -> None:
        _require("openvino", self.install_hint)
        import openvino as ov

        if "CPU" not in ov.Core().available_devices:
            raise RuntimeUnavailable("OpenVINO sees no CPU device")

    def version(self) -> str:
        import openvino as ov

        return ov.get_version()

    def load(self, onnx_path, module, input_shape, entry_io=False) -> Runner:
        import openvino as ov

        core = ov.Core()
        t0 = time.perf_counter()
        model = core.read_model(str(onnx_path))
        if model.inputs[0].get_partial_shape().is_dynamic:
            model.reshape({model.inputs[0]: ov.PartialShape(list(input_shape))})
        if entry_io:
            # A lone layer with NCHW tensors pays an input and an output reorder (several ms at 32x256x256)
            # that a network pays once; NHWC boundary tensors remove them (deployment.md §2.5, measured:
            # fixed cost 7.5 -> 0.1 ms for conv3x3 32->32 at 256x256).
            from openvino.preprocess import PrePostProcessor

            ppp = PrePostProcessor(model)
            for io in (ppp.input(), ppp.output()):
                io.tensor().set_layout(ov.Layout("NHWC"))
                io.model().set_layout(ov.Layout("NCHW"))
            model = ppp.build()
            n, c, h, w = input_shape
            input_shape = (n, h, w, c)
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
            # Explicit: the CPU plugin may otherwise pick bf16/f16 on hosts that support them.
            "INFERENCE_PRECISION_HINT": "f16" if self.precision == "fp16" else "f32",
        }
        compiled = core.compile_model(model, "CPU", config)
        compile_s = time.perf_counter() - t0
        request = compiled.create_infer_request()  # one request, reused (deployment.md §2.3)

        def run(x: np.ndarray) -> np.ndarray:
            request.infer({0: np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if entry_io else x})
            y = request.get_output_tensor(0).data.copy()
            return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if entry_io else y

        x0 = np.random.default_rng(0).random(tuple(input_shape), dtype=np.float32)
        request.set_input_tensor(ov.Tensor(x0))
        return Runner(tuple(input_shape), run, compile_s, _bound=lambda: request.infer())


@BACKENDS.register("torch")
class TorchBackend(Backend):
    name = "torch"
    devices = ("cpu", "cuda")
    precisions = ("fp32", "fp16")
    install_hint = "pip install torch"

    @property
    def needs_onnx(self) -> bool:
        return False

    def test_connection(self) -> None:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeUnavailable("torch sees no CUDA GPU")
        if self.device == "cpu" and self.precision == "fp16":
            raise RuntimeUnavailable("torch fp16 inference needs --device cuda")

    def version(self) -> str:
        return torch.__version__

    def describe(self) -> dict:
        d = super().describe()
        if self.device == "cuda":
            d.update(gpu_descriptor())
        return d

    def load(self, onnx_path, module, input_shape, entry_io=False) -> Runner:
        if module is None:
            raise TrisrError("the torch backend needs the module, not an ONNX file")
        dev = torch.device(self.device)
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        else:
            torch.backends.cudnn.benchmark = True  # algorithm search happens in warm-up (deployment.md §5.5)
        t0 = time.perf_counter()
        module = module.to(dev, dtype).eval()
        compile_s = time.perf_counter() - t0
        x_dev = torch.rand(*input_shape, device=dev, dtype=dtype)
        sync = torch.cuda.synchronize if self.device == "cuda" else None

        @torch.inference_mode()
        def run(x: np.ndarray) -> np.ndarray:
            y = module(torch.from_numpy(x).to(dev, dtype))
            return y.float().cpu().numpy()

        @torch.inference_mode()
        def bound() -> None:
            module(x_dev)

        return Runner(tuple(input_shape), run, compile_s, _sync=sync, _bound=bound)


def gpu_descriptor() -> dict:
    if not torch.cuda.is_available():
        return {}
    i = torch.cuda.current_device()
    cap = torch.cuda.get_device_capability(i)
    return {
        "gpu": torch.cuda.get_device_name(i),
        "compute_capability": f"{cap[0]}.{cap[1]}",
        "driver": nvidia_driver_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def nvidia_driver_version() -> str | None:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None  # Jetson has no nvidia-smi; its L4T release identifies the driver
    res = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    return res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else None


def create_backend(name: str, device: str = "cpu", threads: int | None = None, precision: str | None = None) -> Backend:
    try:
        cls = BACKENDS.get(name)
    except KeyError as exc:
        raise TrisrError(str(exc).strip('"')) from None
    backend = cls(device, threads, precision or ("fp16" if name == "tensorrt" else "fp32"))
    backend.test_connection()
    return backend


def load_runner(backend: Backend, module: torch.nn.Module, input_shape: tuple[int, ...], workdir: Path, entry_io: bool = False) -> Runner:
    """Convert (export to ONNX where the backend needs it) and compile ``module`` for ``input_shape``."""
    from trisr.runtime.onnx_io import export_onnx

    onnx_path = None
    if backend.needs_onnx:
        onnx_path = export_onnx(module, input_shape, workdir / "model.onnx")
    return backend.load(onnx_path, module, input_shape, entry_io)


# Imported for its registration side effect; the module itself imports tensorrt lazily.
importlib.import_module("trisr.runtime.tensorrt_backend")

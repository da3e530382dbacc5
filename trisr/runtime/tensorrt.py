"""TensorRT backend (CUDA GPUs and Jetson), written against the documented TensorRT Python API
(deployment.md §4). TensorRT cannot be installed on the project's CI or development machines, so this
path is exercised only where it exists; everything else in trisr works without it.

* build: ``Builder`` -> ``create_network(0)`` (explicit batch is the only mode in 10.x) -> ``OnnxParser``
  -> builder config (workspace pool, FP16 flag on 10.x, persistent timing cache, optimization profile for
  dynamic inputs) -> ``build_serialized_network``;
* run: ``Runtime.deserialize_cuda_engine`` -> execution context -> ``set_tensor_address`` with torch CUDA
  buffers -> ``execute_async_v3`` on a torch stream, timed with CUDA events via stream synchronisation.

INT8 on 10.x is implicit quantization with a MinMax calibrator and a calibration cache next to the engine.
TensorRT 11 removed the weak-typing precision flags and implicit calibration; there FP16/INT8 need an ONNX
converted by NVIDIA ModelOpt before the build, which trisr does not do yet: asking for FP16/INT8 on 11.x
is refused with a clear message instead of silently building FP32.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from trisr.errors import TrisrError
from trisr.runtime.base import BACKENDS, Backend, Runner, RuntimeUnavailable
from trisr.runtime.devices import gpu_descriptor, jetson_descriptor

INSTALL_HINT = (
    "TensorRT is missing: on Jetson use JetPack's python3-libnvinfer (venv with --system-site-packages); "
    "on a workstation install NVIDIA's wheels (pip install 'trisr[tensorrt]' with NVIDIA's package index)"
)


def import_tensorrt():
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        raise RuntimeUnavailable(INSTALL_HINT)
    import tensorrt as trt

    return trt


def trt_major(trt) -> int:
    return int(trt.__version__.split(".")[0])


def timing_cache_path(cache_dir: Path, descriptor: dict, precision: str) -> Path:
    key = "|".join(str(descriptor.get(k)) for k in ("gpu", "compute_capability", "tensorrt", "cuda")) + "|" + precision
    return cache_dir / f"trt-timing-{hashlib.sha256(key.encode()).hexdigest()[:16]}.cache"


def make_calibrator(trt, batches, input_shape: tuple[int, ...], cache_path: Path | None):
    """TensorRT 10 implicit INT8 calibration with MinMax (ENTROPY_2 gave all-zero outputs in ultralytics'
    experience, deployment.md §4.4). Batches are 1x3xHxW float32 arrays in [0, 1]; the calibration table is
    cached next to the engine so later builds skip calibration."""

    class MinMaxCalibrator(trt.IInt8MinMaxCalibrator):
        def __init__(self) -> None:
            trt.IInt8MinMaxCalibrator.__init__(self)
            self._batches = iter(batches or [])
            self._device: torch.Tensor | None = None  # allocated on the first batch

        def get_batch_size(self) -> int:
            return int(input_shape[0])

        def get_batch(self, names):
            batch = next(self._batches, None)
            if batch is None:
                return None  # calibration done
            if self._device is None:
                self._device = torch.empty(tuple(input_shape), device="cuda", dtype=torch.float32)
            self._device.copy_(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            return [int(self._device.data_ptr())]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path is not None and cache_path.exists() else None

        def write_calibration_cache(self, cache) -> None:
            if cache_path is not None:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_bytes(bytes(cache))

    return MinMaxCalibrator()


def build_engine(
    onnx_path: Path,
    input_shape: tuple[int, ...],
    precision: str = "fp16",
    workspace_gb: float = 2.0,
    cache_dir: Path | None = None,
    dynamic: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None,
    calib_batches=None,
    calib_cache: Path | None = None,
) -> bytes:
    """Serialized engine bytes for ``onnx_path`` (kept byte-clean; metadata goes into a sidecar).

    INT8 (TensorRT 10.x implicit quantization) needs ``calib_batches`` or an existing ``calib_cache``."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TrisrError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision in ("fp16", "int8"):
        if trt_major(trt) >= 11:
            raise TrisrError(
                f"TensorRT {trt.__version__} has no FP16/INT8 builder flags; build FP32 (--precision fp32) "
                "or use TensorRT 10.x (ModelOpt conversion is not supported yet)"
            )
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 engines still run layers kept out of INT8 in FP16
        if precision == "int8":
            if calib_batches is None and not (calib_cache is not None and calib_cache.exists()):
                raise TrisrError("a TensorRT INT8 engine needs calibration images (--calib DIR) or an existing calibration cache")
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = make_calibrator(trt, calib_batches, input_shape, calib_cache)
    if dynamic is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, *dynamic)
        config.add_optimization_profile(profile)
    cache_file = None
    if cache_dir is not None:
        desc = {**gpu_descriptor(), "tensorrt": trt.__version__}
        cache_file = timing_cache_path(cache_dir, desc, precision)
        blob = cache_file.read_bytes() if cache_file.exists() else b""
        config.set_timing_cache(config.create_timing_cache(blob), False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise TrisrError(f"TensorRT failed to build an engine from {onnx_path}")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(plan)


def engine_runner(plan: bytes, input_shape: tuple[int, ...], compile_s: float = 0.0) -> Runner:
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise TrisrError("TensorRT could not deserialize the engine (built for another GPU or TensorRT version?)")
    ctx = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    ctx.set_input_shape(inputs[0], tuple(input_shape))
    dtype = {trt.float32: torch.float32, trt.float16: torch.float16}
    x_dev = torch.empty(tuple(input_shape), device="cuda", dtype=dtype[engine.get_tensor_dtype(inputs[0])])
    out_shape = tuple(ctx.get_tensor_shape(outputs[0]))
    y_dev = torch.empty(out_shape, device="cuda", dtype=dtype[engine.get_tensor_dtype(outputs[0])])
    ctx.set_tensor_address(inputs[0], x_dev.data_ptr())
    ctx.set_tensor_address(outputs[0], y_dev.data_ptr())
    stream = torch.cuda.Stream()

    def bound() -> None:
        ctx.execute_async_v3(stream.cuda_stream)

    def run(x: np.ndarray) -> np.ndarray:
        x_dev.copy_(torch.from_numpy(x))
        torch.cuda.synchronize()
        bound()
        stream.synchronize()
        return y_dev.float().cpu().numpy()

    return Runner(tuple(input_shape), run, compile_s, _sync=stream.synchronize, _bound=bound)


@BACKENDS.register("tensorrt")
class TensorRTBackend(Backend):
    name = "tensorrt"
    devices = ("cuda", "jetson")
    precisions = ("fp16", "fp32", "int8")
    default_precision = "fp16"
    install_hint = INSTALL_HINT

    def __init__(self, device="cuda", threads=None, precision="fp16", cache_dir: Path | None = None) -> None:
        super().__init__(device, threads, precision)
        if cache_dir is None:
            from trisr.profile.lut import profiles_root

            cache_dir = profiles_root() / ".trt-cache"
        self.cache_dir = cache_dir

    def test_connection(self) -> None:
        import_tensorrt()
        if not torch.cuda.is_available():
            raise RuntimeUnavailable("TensorRT needs a CUDA GPU, and torch sees none")

    def version(self) -> str:
        return import_tensorrt().__version__

    def describe(self) -> dict:
        d = super().describe()
        d.update(gpu_descriptor())
        if self.device == "jetson":
            d["jetson"] = jetson_descriptor()
        return d

    def load(self, onnx_path, module, input_shape, entry_io=False, keep_float=("first", "last")) -> Runner:
        t0 = time.perf_counter()
        calib = None
        if self.precision == "int8":
            # Latency does not depend on the calibration values; a few random batches fix the scales.
            rng = np.random.default_rng(0)
            calib = [rng.random(tuple(input_shape), dtype=np.float32) for _ in range(4)]
        plan = build_engine(onnx_path, tuple(input_shape), self.precision, cache_dir=self.cache_dir, calib_batches=calib)
        return engine_runner(plan, tuple(input_shape), time.perf_counter() - t0)

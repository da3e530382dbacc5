"""ONNX Runtime backend (CPU, and CUDA with onnxruntime-gpu); onnxruntime is imported lazily."""

from __future__ import annotations

import time

from trisr.runtime.base import BACKENDS, Backend, Runner, RuntimeUnavailable, require_module


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    install_hint = "pip install onnxruntime (onnxruntime-gpu for CUDA)"

    def test_connection(self) -> None:
        require_module("onnxruntime", self.install_hint)
        import onnxruntime as ort

        if self.device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeUnavailable("onnxruntime has no CUDAExecutionProvider here: pip install onnxruntime-gpu")

    def version(self) -> str:
        import onnxruntime as ort

        return ort.__version__

    def load(self, onnx_path, module, input_shape, entry_io=False, keep_float=("first", "last")) -> Runner:
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

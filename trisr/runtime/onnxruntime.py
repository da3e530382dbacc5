"""ONNX Runtime backend (CPU, and CUDA with onnxruntime-gpu); onnxruntime is imported lazily.

int8 is static QDQ quantization (``trisr.export.exporters.quantize_onnx_qdq``, the ``onnx`` int8 export's own
call and first/last-float policy); ORT fuses DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from trisr.runtime.base import BACKENDS, Backend, Runner, RuntimeUnavailable, require_module


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    precisions = ("fp32", "int8")
    install_hint = "pip install onnxruntime (onnxruntime-gpu for CUDA)"
    # U8S8 without VNNI goes through 16-bit intermediate sums that can saturate (ORT's quantization docs): not
    # the int8 path a VNNI/AMX CPU runs, so not measured as one.
    precision_isa = {"int8": ("avx512_vnni", "avx_vnni", "amx_int8")}
    #: Random calibration inputs for int8 latency measurement: timing does not depend on the scales.
    INT8_TIMING_SAMPLES = 4

    def test_connection(self) -> None:
        require_module("onnxruntime", self.install_hint)
        import onnxruntime as ort

        if self.device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeUnavailable("onnxruntime has no CUDAExecutionProvider here: pip install onnxruntime-gpu")
        if self.device == "cuda" and self.precision == "int8":
            raise RuntimeUnavailable("onnxruntime int8 is measured on the CPU here; on CUDA use the trt format")

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
        io = None
        with tempfile.TemporaryDirectory(prefix="trisr-ort-") as tmp:
            if self.precision == "int8":  # quantized the way the int8 export quantizes (same call and policy)
                from trisr.export.exporters import quantize_onnx_qdq

                rng = np.random.default_rng(0)
                samples = [rng.random(tuple(input_shape), dtype=np.float32) for _ in range(self.INT8_TIMING_SAMPLES)]
                qpath = Path(tmp) / "model.int8.onnx"
                quantize_onnx_qdq(Path(onnx_path), qpath, samples, tuple(keep_float), quiet=True)
                onnx_path = qpath
                if entry_io:
                    onnx_path, io = uint8_boundaries(qpath, Path(tmp) / "model.int8.io.onnx")
            sess = ort.InferenceSession(str(onnx_path), sess_options=so, providers=providers)
        compile_s = time.perf_counter() - t0
        name = sess.get_inputs()[0].name
        if io is None:
            return Runner(tuple(input_shape), lambda x: sess.run(None, {name: x})[0], compile_s)
        quant_in, dequant_out = io

        def run(x: np.ndarray) -> np.ndarray:
            return dequant_out(sess.run(None, {name: quant_in(x)})[0])

        x0 = quant_in(np.random.default_rng(0).random(tuple(input_shape), dtype=np.float32))
        return Runner(tuple(input_shape), run, compile_s, _bound=lambda: sess.run(None, {name: x0}))


def uint8_boundaries(path: Path, out: Path):
    """A profiling entry as it runs inside an int8 network. There activations pass between layers as uint8 in
    the NHWC layout of ORT's QLinearConv, so a lone entry would pay a QuantizeLinear, a DequantizeLinear and two
    NCHW<->NHWC transposes that the network pays once, not per layer (measured: conv3x3 32->32 at 256x256,
    1.47 -> 0.75 ms alone, while three in a row cost 2.3 ms either way). A quantized boundary is therefore cut
    to the uint8 tensor itself, declared NHWC (ORT's transpose optimizer cancels its own transpose against
    ours). A float boundary (the image into the head, out of the tail: their convolutions stay float) is left
    as the network has it. Returns the new file and ``Runner.run``'s float NCHW <-> boundary conversions."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(path))
    g = proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}

    def to_nhwc(vi) -> None:
        dims = vi.type.tensor_type.shape.dim
        n, c, h, w = (d.dim_value for d in dims)
        for d, v in zip(dims, (n, h, w, c)):
            d.dim_value = v
        vi.type.tensor_type.elem_type = onnx.TensorProto.UINT8

    def ident(a):
        return a

    quant_in = dequant_out = ident
    consumers = [n for n in g.node if g.input[0].name in n.input]
    if len(consumers) == 1 and consumers[0].op_type == "QuantizeLinear":
        q = consumers[0]
        scale, zp = float(inits[q.input[1]]), int(inits[q.input[2]])
        g.node.remove(q)
        g.node.insert(0, helper.make_node("Transpose", [g.input[0].name], [q.output[0]], perm=[0, 3, 1, 2]))
        to_nhwc(g.input[0])

        def quant_in(x, scale=scale, zp=zp):
            return np.ascontiguousarray(np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))

    producer = next((n for n in g.node if g.output[0].name in n.output), None)
    if producer is not None and producer.op_type == "DequantizeLinear":
        scale, zp = float(inits[producer.input[1]]), int(inits[producer.input[2]])
        g.node.remove(producer)
        g.node.append(helper.make_node("Transpose", [producer.input[0]], [g.output[0].name], perm=[0, 2, 3, 1]))
        to_nhwc(g.output[0])

        def dequant_out(y, scale=scale, zp=zp):
            return np.ascontiguousarray(((y.astype(np.float32) - zp) * np.float32(scale)).transpose(0, 3, 1, 2))

    onnx.save(proto, str(out))
    return out, (quant_in, dequant_out)

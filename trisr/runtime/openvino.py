"""OpenVINO backend (CPU); openvino is imported lazily."""

from __future__ import annotations

import time

import numpy as np

from trisr.runtime.base import BACKENDS, Backend, Runner, RuntimeUnavailable, require_module


@BACKENDS.register("openvino")
class OpenVINOBackend(Backend):
    name = "openvino"
    devices = ("cpu",)
    precisions = ("fp32", "bf16", "fp16", "int8")
    install_hint = "pip install openvino"
    precision_isa = {"bf16": ("avx512_bf16", "amx_bf16"), "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}
    #: trisr precision -> CPU plugin INFERENCE_PRECISION_HINT, and back. int8: NNCF-quantized ops run int8, the
    #: rest f32 (as int8 artifacts are run).
    HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
    #: Random calibration inputs for int8 latency measurement: timing does not depend on the scales.
    INT8_TIMING_SAMPLES = 4
    FROM_OV = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}

    @classmethod
    def default_precision_for(cls, device: str) -> str:
        """What the CPU plugin picks when asked nothing: bf16 on CPUs with native BF16 (AVX512-BF16, AMX), else f32."""
        try:
            import openvino as ov

            return cls.FROM_OV.get(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string(), "fp32")
        except Exception:  # noqa: BLE001 - not installed or no CPU plugin: test_connection says why
            return cls.default_precision

    def test_connection(self) -> None:
        require_module("openvino", self.install_hint)
        if self.precision == "int8":
            require_module("nncf", "pip install 'trisr[int8]' (NNCF post-training quantization)")
        import openvino as ov

        if "CPU" not in ov.Core().available_devices:
            raise RuntimeUnavailable("OpenVINO sees no CPU device")

    def version(self) -> str:
        import openvino as ov

        return ov.get_version()

    def load(self, onnx_path, module, input_shape, entry_io=False, keep_float=("first", "last")) -> Runner:
        import openvino as ov

        core = ov.Core()
        t0 = time.perf_counter()
        model = core.read_model(str(onnx_path))
        if model.inputs[0].get_partial_shape().is_dynamic:
            model.reshape({model.inputs[0]: ov.PartialShape(list(input_shape))})
        if self.precision == "int8":  # quantized the way the int8 export quantizes (same NNCF call and policy)
            from trisr.export.exporters import quantize_ov_model

            rng = np.random.default_rng(0)
            samples = [rng.random(tuple(input_shape), dtype=np.float32) for _ in range(self.INT8_TIMING_SAMPLES)]
            model, _ = quantize_ov_model(model, samples, tuple(keep_float), quiet=True)
        if entry_io:
            # A lone layer with NCHW tensors pays an input and an output reorder (several ms at 32x256x256)
            # that a network pays once; NHWC boundary tensors remove them (deployment.md §2.5, measured:
            # fixed cost 7.5 -> 0.1 ms for conv3x3 32->32 at 256x256).
            from openvino.preprocess import PrePostProcessor

            ppp = PrePostProcessor(model)
            for io in (ppp.input(), ppp.output()):
                io.tensor().set_layout(ov.Layout("NHWC"))
                io.model().set_layout(ov.Layout("NCHW"))
                if self.precision == "bf16":  # inside a bf16 network activations stay bf16: no f32<->bf16 per entry
                    io.tensor().set_element_type(ov.Type.bf16)
            model = ppp.build()
            n, c, h, w = input_shape
            input_shape = (n, h, w, c)
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.threads,
            # Always explicit, so a table or an artifact says what ran (the plugin's own default varies by CPU).
            "INFERENCE_PRECISION_HINT": self.HINTS[self.precision],
        }
        compiled = core.compile_model(model, "CPU", config)
        compile_s = time.perf_counter() - t0
        request = compiled.create_infer_request()  # one request, reused (deployment.md §2.3)

        bf16_io = entry_io and self.precision == "bf16"

        def run(x: np.ndarray) -> np.ndarray:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if entry_io else x
            if bf16_io:
                request.set_input_tensor(_bf16_tensor(ov, x))
                request.infer()
                y = _from_bf16(request.get_output_tensor(0).data)
            else:
                request.infer({0: x})
                y = request.get_output_tensor(0).data.copy()
            return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if entry_io else y

        x0 = np.random.default_rng(0).random(tuple(input_shape), dtype=np.float32)
        request.set_input_tensor(_bf16_tensor(ov, x0) if bf16_io else ov.Tensor(x0))
        return Runner(tuple(input_shape), run, compile_s, _bound=lambda: request.infer())


def _bf16_tensor(ov, x: np.ndarray):
    """A bf16 OpenVINO tensor holding ``x`` (float32, rounded to nearest even on the 16 dropped mantissa bits)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    t = ov.Tensor(ov.Type.bf16, ov.Shape(list(x.shape)))
    t.data.view(np.uint16)[...] = rounded
    return t


def _from_bf16(data: np.ndarray) -> np.ndarray:
    return (np.asarray(data).view(np.uint16).astype(np.uint32) << 16).view(np.float32)

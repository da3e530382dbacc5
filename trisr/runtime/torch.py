"""PyTorch eager backend (CPU and CUDA): runs the module itself, no ONNX."""

from __future__ import annotations

import time

import numpy as np
import torch

from trisr.errors import TrisrError
from trisr.runtime.base import BACKENDS, Backend, Runner, RuntimeUnavailable
from trisr.runtime.devices import gpu_descriptor


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

    def load(self, onnx_path, module, input_shape, entry_io=False, keep_float=("first", "last")) -> Runner:
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

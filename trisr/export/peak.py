"""What the hardware attains, per runtime and precision: a large matrix product run by each runtime at each
precision the benchmark rows ran at, in the same process and session as the rows.

``torch.mm`` in FP32 is no ceiling here (the runtimes' own convolutions beat it: 157 % recorded in
docs/benchmarks.md §5), and a BF16 row needs a BF16 reference. So the reference of a row is the best GFLOP/s any
runtime reaches on an ``n x n x n`` MatMul (``2 n^3`` FLOP) *at that row's runtime precision*; a row's "% of
attainable" divides its own GFLOP/s (``2 x MACs / latency``) by it. The matrix product is built as a one-node
ONNX graph (input ``A``, constant ``B``) so that ONNX Runtime and OpenVINO compile it like any artifact; torch
runs ``A @ B``; an int8 reference is the same MatMul quantized by the int8 backend's own quantizer (NNCF for
OpenVINO, ONNX Runtime's QDQ quantizer), in GOP/s.
A precision no runtime here can run gets no reference rather than a wrong one.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trisr.runtime.timing import TimingProtocol

__all__ = ["Peak", "matmul_onnx", "measure_peaks", "attainable"]

#: Matrix size: large enough to reach the plateau on a CPU (a 2048^3 product is 17 GFLOP), small enough to time.
DEFAULT_N = 2048


@dataclass
class Peak:
    backend: str
    precision: str
    n: int
    median_ms: float
    gflop_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def matmul_onnx(n: int, path: Path, seed: int = 0) -> Path:
    """A one-node ONNX model ``Y = A @ B`` with ``A`` the ``n x n`` float32 input and ``B`` a constant."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    b = np.random.default_rng(seed).standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])],
        "matmul",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])],
        [numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


class _MatMul:  # a torch module for the torch backend, built lazily (torch is imported by the backend anyway)
    @staticmethod
    def create(n: int, seed: int = 0):
        import torch

        class MatMul(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                g = torch.Generator().manual_seed(seed)
                self.register_buffer("b", torch.randn(n, n, generator=g))

            def forward(self, a):
                return a @ self.b

        return MatMul()


def measure_peaks(
    targets: list[tuple[str, str]], device: str = "cpu", threads: int | None = None, n: int = DEFAULT_N,
    protocol: TimingProtocol | None = None, reps: int = 3, log=None,
) -> list[Peak]:
    """Time the ``n``-cube MatMul in each ``(backend, precision)`` of ``targets`` (median of ``reps`` windows).
    A pair the machine cannot run (missing runtime, precision without its ISA) is skipped and logged."""
    from trisr.errors import TrisrError
    from trisr.runtime.base import create_backend

    log = log or (lambda msg: None)
    protocol = protocol or TimingProtocol(window_s=0.5, repeats=1, warmup_s=0.2)
    out: list[Peak] = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = matmul_onnx(n, Path(tmp) / "matmul.onnx")
        for name, precision in dict.fromkeys(targets):  # unique, in order
            try:
                backend = create_backend(name, device, threads, precision)
                module = _MatMul.create(n) if not backend.needs_onnx else None
                runner = backend.load(onnx_path if backend.needs_onnx else None, module, (n, n))
                medians = sorted(runner.time(protocol).median_ms for _ in range(reps))
            except TrisrError as exc:
                log(f"matmul reference {name} {precision}: skipped ({exc})")
                continue
            ms = medians[len(medians) // 2]
            out.append(Peak(name, precision, n, ms, 2.0 * n**3 / (ms * 1e6)))
    return out


def attainable(peaks: list[Peak], precision: str) -> Peak | None:
    """The best reference at ``precision`` (the runtime's precision, not the artifact's label)."""
    same = [p for p in peaks if p.precision == precision]
    return max(same, key=lambda p: p.gflop_s) if same else None

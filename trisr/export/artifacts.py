"""Load an exported artifact (ONNX, OpenVINO IR, TensorRT engine) back through its sidecar, so that the
deployed file is what ``trisr upscale``, verification and ``trisr bench`` run.

The sidecar is read and the artifact's bytes checked against it before anything is compiled; a TensorRT
engine is additionally refused when it was built for another GPU or TensorRT version. Inputs outside what
the artifact accepts are refused with the allowed range; images of other sizes run in tiles of the
artifact's input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trisr.errors import TrisrError
from trisr.export.formats import Format, format_for_path, get_format
from trisr.export.sidecar import check_files, check_required, check_trt_target, read_sidecar, sidecar_path
from trisr.export.shapes import HW, InputSpec
from trisr.export.tiling import to_nchw, to_uint8_image, upscale_tiled
from trisr.runtime.base import Runner, create_backend


@dataclass
class ArtifactModel:
    path: Path
    fmt: Format
    sidecar: dict
    spec: InputSpec
    scale: int
    precision: str
    device: str
    threads: int | None = None
    _runners: dict = field(default_factory=dict, repr=False)

    # -- runners -------------------------------------------------------------------------------------

    def runner(self, hw: HW | None = None) -> Runner:
        """A compiled runner for LR size ``hw`` (default: the artifact's input size), cached per size."""
        hw = tuple(self.spec.shape if hw is None else hw)
        self.spec.check(hw)
        if hw not in self._runners:
            self._runners[hw] = self.fmt.load_fn()(self, self.spec.nchw(hw))
        return self._runners[hw]

    def run(self, x: np.ndarray) -> np.ndarray:
        """One 1x3xhxw float32 input, of a size the artifact accepts."""
        return self.runner((x.shape[2], x.shape[3])).run(x)

    def upscale_array(self, lr: np.ndarray) -> np.ndarray:
        """1x3xHxW float32 -> 1x3x(sH)x(sW): whole when the artifact accepts the size, else in tiles."""
        hw = (lr.shape[2], lr.shape[3])
        if self.spec.accepts(hw):
            return self.run(lr)
        return upscale_tiled(self.run, lr, self.spec.shape, self.scale)

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 LR image -> quantised uint8 SR image (same convention as ``trisr upscale RUN``)."""
        return to_uint8_image(self.upscale_array(to_nchw(lr)))

    # -- description -----------------------------------------------------------------------------------

    @property
    def size_mb(self) -> float:
        return sum(rec["bytes"] for rec in self.sidecar.get("files", [])) / 1e6

    def runtime_precision(self) -> str:
        """Precision the backend is asked for (the format's ``runtime_precision`` table; explicit fp32 otherwise)."""
        return dict(self.fmt.runtime_precision).get(self.precision, "fp32")

    def describe(self) -> dict:
        backend = create_backend(self.fmt.backend, self.device, self.threads, self.runtime_precision())
        return {**backend.describe(), "artifact_precision": self.precision}


def _resolve_device(fmt: Format, device: str | None) -> str:
    if device in (None, "auto"):
        return fmt.devices[0]
    if device not in fmt.devices:
        raise TrisrError(f"{fmt.name} artifacts run on {', '.join(fmt.devices)}, not {device}")
    return device


def load_artifact(path: str | Path, device: str | None = None, threads: int | None = None) -> ArtifactModel:
    """Open an artifact written by ``trisr export``: sidecar read and checked, runtime available."""
    path = Path(path)
    if not path.is_file():
        raise TrisrError(f"artifact not found: {path}")
    fmt = format_for_path(path)
    sidecar = read_sidecar(path)
    check_required(path, sidecar)
    if get_format(sidecar.get("format", "")) is not fmt:
        raise TrisrError(f"{sidecar_path(path).name} describes a {sidecar.get('format')} artifact, not {fmt.name}")
    check_files(path, sidecar)
    device = _resolve_device(fmt, device)
    fmt.require(sidecar.get("precision"), device)
    model = ArtifactModel(
        path=path,
        fmt=fmt,
        sidecar=sidecar,
        spec=InputSpec.from_dict(sidecar["input"]),
        scale=int(sidecar["scale"]),
        precision=str(sidecar["precision"]),
        device=device,
        threads=threads,
    )
    fmt.check_target(model)
    return model


def load_artifact_runner(path: str | Path, device: str | None = None, threads: int | None = None) -> Runner:
    """A runner for the artifact at its own input size (for timing and fixed-size inference)."""
    return load_artifact(path, device, threads).runner()


# -- loaders named in the format table ---------------------------------------------------------------------


def load_with_backend(artifact: ArtifactModel, input_shape: tuple[int, ...]) -> Runner:
    """ONNX Runtime / OpenVINO: compile the file itself for one input shape."""
    backend = create_backend(artifact.fmt.backend, artifact.device, artifact.threads, artifact.runtime_precision())
    return backend.load(artifact.path, None, input_shape)


def check_engine_target(artifact: ArtifactModel) -> None:
    """TensorRT: the sidecar's build target (GPU, compute capability, TensorRT, CUDA) against the live one."""
    from trisr.export.sidecar import trt_target

    recorded = artifact.sidecar.get("details", {}).get("target") or {}
    check_trt_target(recorded, trt_target(), artifact.path.name)


def load_engine(artifact: ArtifactModel, input_shape: tuple[int, ...]) -> Runner:
    """TensorRT: the sidecar's build target is checked against the live GPU before deserializing."""
    import time

    from trisr.runtime.tensorrt import engine_runner

    check_engine_target(artifact)
    create_backend(artifact.fmt.backend, artifact.device, artifact.threads, artifact.precision)  # GPU + TensorRT present
    t0 = time.perf_counter()
    runner = engine_runner(artifact.path.read_bytes(), input_shape)
    runner.compile_s = time.perf_counter() - t0  # deserialize + context: the engine's load time
    return runner

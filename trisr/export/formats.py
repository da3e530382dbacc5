"""The table of export formats. It alone drives CLI validation, ``--help`` text, export (``exporter``),
loading (``loader``) and the bench loop: add a row here to add a format.

``exporter``, ``loader`` and ``target_check`` are ``"module:function"`` strings, imported only when used, so
reading the table never imports a runtime (nor torch: ``trisr --help`` stays fast). What differs between formats
is a field here, never a test of a format's name elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

from trisr.errors import TrisrError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
#: Export options that only some formats accept (``Format.options``).
OPTION_FLAGS = {"dynamic": "--dynamic", "calib": "--calib", "keep_float": "--keep-float", "workspace_gb": "--workspace-gb"}
#: The in-process PyTorch module, measured by ``trisr bench`` as the baseline; not an export format.
BASELINE = "torch"


@dataclass(frozen=True)
class Extra:
    """A precision that needs a package beyond the format's own runtime."""

    precision: str
    module: str
    install_hint: str


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str  # the artifact's file suffix; its sidecar is ``<artifact>.json``
    backend: str  # trisr.runtime backend that runs the artifact
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    default_precision: str
    options: tuple[str, ...]  # keys of OPTION_FLAGS this format accepts
    requires: str  # module that must be importable
    install_hint: str
    exporter: str
    loader: str
    extras: tuple[Extra, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: Artifact precision -> the precision the runtime is asked for; absent ones run an explicit fp32 (OpenVINO
    #: fp16/int8 artifacts carry FP16 weights or quantized ops and compute the rest in f32). An OpenVINO bf16
    #: artifact is the fp32 IR compiled with the bf16 inference hint; a TensorRT engine runs what it was built for.
    runtime_precision: tuple[tuple[str, str], ...] = ()
    #: "module:function(artifact)" that refuses an artifact built for another machine, checked when loading.
    target_check: str | None = None
    #: Printed before an export starts (e.g. that it can take minutes).
    export_note: str = ""
    #: Whether int8 can come from a QDQ ONNX exported by trisr (a quantization-aware fine-tuned run's own ranges,
    #: so the artifact is exactly the trained network); otherwise such a run is quantized after training like any
    #: other, its weights still adapted to int8.
    takes_qdq: bool = False

    # -- validation ------------------------------------------------------------------------------------

    def check_precision(self, precision: str) -> str:
        if precision not in self.precisions:
            raise TrisrError(
                f"format {self.name} supports precision {', '.join(self.precisions)}, not {precision!r}"
            )
        return precision

    def check_options(self, given: dict[str, bool]) -> None:
        """``given`` maps option keys to whether the user set them; refuse the ones this format ignores."""
        for key, used in given.items():
            if used and key not in self.options:
                takers = [f.name for f in FORMATS if key in f.options]
                raise TrisrError(f"{OPTION_FLAGS[key]} applies to format {' or '.join(takers)}, not {self.name}")

    def missing(self, precision: str | None = None, device: str | None = None) -> str | None:
        """Why this format cannot export/run here (one line with the fix), or None when it can."""
        if device is not None and device not in self.devices:
            return f"{self.name} runs on {', '.join(self.devices)}, not {device}"
        if importlib.util.find_spec(self.requires) is None:
            return f"{self.requires} is not installed: {self.install_hint}"
        for extra in self.extras:
            if extra.precision == precision and importlib.util.find_spec(extra.module) is None:
                return f"{self.name} {precision} needs {extra.module}: {extra.install_hint}"
        return None

    def require(self, precision: str | None = None, device: str | None = None) -> None:
        reason = self.missing(precision, device)
        if reason is not None:
            from trisr.runtime.base import RuntimeUnavailable  # imports torch: only on failure

            raise RuntimeUnavailable(reason)

    def help_line(self) -> str:
        precisions = ", ".join(p + ("*" if p == self.default_precision else "") for p in self.precisions)
        return f"{self.name} ({self.suffix}; {'/'.join(self.devices)}; {precisions})"

    # -- lazy hooks ------------------------------------------------------------------------------------

    def export_fn(self) -> Callable:
        return _resolve(self.exporter)

    def load_fn(self) -> Callable:
        return _resolve(self.loader)

    def check_target(self, artifact) -> None:
        """Refuse ``artifact`` when it was built for another machine (formats with a ``target_check``)."""
        if self.target_check is not None:
            _resolve(self.target_check)(artifact)


def _resolve(target: str) -> Callable:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


FORMATS: tuple[Format, ...] = (
    Format(
        name="onnx",
        suffix=".onnx",
        backend="onnxruntime",
        devices=("cpu", "cuda"),
        precisions=("fp32", "int8"),
        default_precision="fp32",
        options=("dynamic", "calib", "keep_float"),
        requires="onnxruntime",
        install_hint="pip install onnx onnxruntime",
        exporter="trisr.export.exporters:export_onnx_artifact",
        loader="trisr.export.artifacts:load_with_backend",
        description="single-file ONNX (opset 17, DepthToSpace CRD), run with ONNX Runtime; "
        "int8 = QDQ static quantization (ONNX Runtime's quantizer, U8S8, per-channel weights)",
        # Not takes_qdq: ORT fuses trisr's own QDQ graph only partly (float ReLU/Add between Q/DQ pairs remain);
        # measured on the quick network 37.8 ms against 20.0 ms for its own quantizer's graph, same PSNR.
    ),
    Format(
        name="openvino",
        suffix=".xml",
        backend="openvino",
        devices=("cpu",),
        precisions=("fp32", "bf16", "fp16", "int8"),
        default_precision="fp32",
        options=("dynamic", "calib", "keep_float"),
        requires="openvino",
        install_hint="pip install openvino",
        exporter="trisr.export.exporters:export_openvino_artifact",
        loader="trisr.export.artifacts:load_with_backend",
        extras=(Extra("int8", "nncf", "pip install 'trisr[int8]' (NNCF post-training quantization)"),),
        aliases=("ov",),
        description="OpenVINO IR (.xml + .bin); bf16 = run with the bf16 inference hint (CPUs with AVX512-BF16/AMX); "
        "fp16 = FP16-compressed weights; int8 = NNCF PTQ",
        runtime_precision=(("bf16", "bf16"),),
        takes_qdq=True,
    ),
    Format(
        name="trt",
        suffix=".engine",
        backend="tensorrt",
        devices=("cuda", "jetson"),
        precisions=("fp16", "fp32", "int8"),
        default_precision="fp16",
        options=("dynamic", "calib", "workspace_gb"),
        requires="tensorrt",
        install_hint=(
            "on Jetson use JetPack's python3-libnvinfer (venv with --system-site-packages); "
            "on a workstation install NVIDIA's wheels (pip install 'trisr[tensorrt]' with NVIDIA's package index)"
        ),
        exporter="trisr.export.exporters:export_trt_artifact",
        loader="trisr.export.artifacts:load_engine",
        aliases=("tensorrt", "engine"),
        description="serialized TensorRT engine, built on the target GPU; refused on another GPU/TensorRT",
        runtime_precision=(("fp16", "fp16"), ("fp32", "fp32"), ("int8", "int8")),
        target_check="trisr.export.artifacts:check_engine_target",
        export_note="building a TensorRT engine can take minutes; the timing cache makes later builds faster",
    ),
)


def format_names() -> list[str]:
    return [f.name for f in FORMATS]


def get_format(name: str) -> Format:
    key = name.strip().lower()
    for fmt in FORMATS:
        if key == fmt.name or key in fmt.aliases:
            return fmt
    raise TrisrError(f"unknown format {name!r}; choose {', '.join(format_names())}")


def format_for_backend(backend: str, precision: str | None = None) -> Format:
    """The format whose artifacts the runtime ``backend`` runs (at ``precision``, when given)."""
    for fmt in FORMATS:
        if fmt.backend == backend and (precision is None or precision in fmt.precisions):
            return fmt
    raise TrisrError(f"no export format runs in backend {backend!r}" + (f" at {precision}" if precision else "")
                     + f"; formats: {', '.join(format_names())}")


def format_for_path(path) -> Format:
    """The format of an artifact file, from its suffix."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    for fmt in FORMATS:
        if suffix == fmt.suffix:
            return fmt
    known = ", ".join(f"{f.suffix} ({f.name})" for f in FORMATS)
    raise TrisrError(f"{path} is not a known artifact: expected a run folder or a file ending in {known}")


def parse_format_list(text: str | None) -> list[Format]:
    """``"onnx,openvino"`` -> formats, in the order given; ``None`` or ``"all"`` -> the whole table."""
    if text is None or text.strip().lower() == "all":
        return list(FORMATS)
    out: list[Format] = []
    for part in text.split(","):
        if part.strip():
            fmt = get_format(part)
            if fmt not in out:
                out.append(fmt)
    if not out:
        raise TrisrError("--format names no format")
    return out


def help_text() -> str:
    """One line for ``--help``: every format with suffix, devices and precisions (* = default)."""
    return "; ".join(f.help_line() for f in FORMATS)

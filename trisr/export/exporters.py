"""One exporter per format (named in the format table): module -> artifact file(s) + format details.

* ONNX: the project's exporter (``trisr.runtime.onnx_io``: TorchScript exporter, fixed opset, one
  self-contained file, PixelShuffle as ``DepthToSpace`` CRD), metadata in ``metadata_props``, full check.
* OpenVINO: read from that ONNX (the single source, deployment.md §2.1), bounded dynamic dims when asked,
  saved as IR; fp32 with ``compress_to_fp16=False`` (the numerical reference), bf16 = that same IR (the
  runtime is asked for bf16 when it loads it: a compile-time hint, not a file property), fp16 = FP16-compressed
  weights, int8 = NNCF post-training quantization on calibration patches.
* TensorRT: ``build_engine`` from that ONNX with the persistent timing cache; the engine bytes are
  written as built and the build target (GPU, compute capability, TensorRT, JetPack/L4T) goes to the sidecar.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trisr.errors import TrisrError
from trisr.export.shapes import InputSpec
from trisr.runtime.onnx_io import OPSET, export_onnx


@dataclass(frozen=True)
class ExportOptions:
    opset: int = OPSET
    calib_dir: Path | None = None
    calib_samples: int = 300
    #: Convolutions kept in float by INT8 quantization: "first" (it sees the 8-bit image itself; quantizing it
    #: cost 0.45 dB on the quick network, keeping it float ~0 dB), "last" (writes the output).
    keep_float: tuple[str, ...] = ("first", "last")
    workspace_gb: float = 2.0
    cache_dir: Path | None = None  # TensorRT timing cache
    metadata: dict = field(default_factory=dict)  # str -> str, written where the format has a place for it
    #: int8 of a quantization-aware fine-tuned run: the model handed to the exporter is already fake-quantized with
    #: the run's trained ranges (trisr.quant.fakequant), and is exported as it is (QDQ ONNX) instead of being
    #: quantized after training. The path of the run's range file, for the sidecar.
    qat_ranges: str | None = None


@dataclass
class Exported:
    path: Path  # the artifact (what a runtime opens)
    files: list[Path]  # every file that makes it up
    details: dict  # format-specific facts for the sidecar


def _onnx(model: torch.nn.Module, spec: InputSpec, path: Path, opts: ExportOptions) -> Path:
    return export_onnx(
        model, spec.nchw(spec.shape), path, dynamic_hw=spec.dynamic, opset=opts.opset,
        metadata=opts.metadata, full_check=True,
    )


def export_onnx_artifact(model, spec: InputSpec, precision: str, path: Path, opts: ExportOptions) -> Exported:
    details: dict = {"opset": opts.opset, "exporter": "torch.onnx (TorchScript, dynamo=False)", "checker": "full"}
    if precision != "int8" or opts.qat_ranges is not None:
        _onnx(model, spec, path, opts)
        if opts.qat_ranges is not None:
            details["int8"] = qat_details(opts)
        return Exported(path, [path], details)
    from trisr.export.calibration import calibration_images, calibration_patches

    images, source = calibration_images(opts.calib_dir, int(model.arch.scale))
    patches = calibration_patches(images, spec.shape, opts.calib_samples)
    with tempfile.TemporaryDirectory() as tmp:
        float_path = _onnx(model, spec, Path(tmp) / "model.onnx", opts)
        info = quantize_onnx_qdq(float_path, path, patches, opts.keep_float)
    info.update({"calibration": source, "samples": len(patches), "patch_hw": list(spec.shape)})
    details["int8"] = info
    return Exported(path, [path], details)


def qat_details(opts: ExportOptions) -> dict:
    return {"tool": "quantization-aware fine-tuning (trisr.quant.fakequant): the fake-quantized network exported as "
                    "QDQ ONNX, no post-training quantization", "ranges": opts.qat_ranges}


def kept_float(convs: list, keep_float: tuple[str, ...]) -> list:
    """The int8 first/last policy, shared by every quantizer (NNCF, ORT, QAT): of ``convs`` in execution order,
    those ``keep_float`` ("first", "last") keeps in float, each once."""
    keep = []
    if convs and "first" in keep_float:
        keep.append(convs[0])
    if convs and "last" in keep_float and convs[-1] not in keep:
        keep.append(convs[-1])
    return keep


# ONNX Runtime INT8: QDQ static quantization, uint8 activations (asymmetric: SR features are not zero-centred) and
# int8 per-channel symmetric weights -- the U8S8 form ORT fuses into QLinearConv (VNNI on x86). Ranges are MinMax
# over all calibration patches (ORT's calibrator keeps only each tensor's per-sample min and max, so 300 patches
# cost little memory; its CalibMaxIntermediateOutputs option is avoided: in ORT 1.32 it discards the batches it
# flushes).
def quantize_onnx_qdq(onnx_in: Path, onnx_out: Path, samples: list, keep_float: tuple[str, ...], quiet: bool = False) -> dict:
    """ONNX Runtime static QDQ quantization of ``onnx_in`` on ``samples`` (input arrays) into ``onnx_out``, the
    convolutions named by ``keep_float`` ("first", "last") kept in float. Shared by the ``onnx`` int8 export and
    by ONNX Runtime int8 latency measurement, so a table's int8 entries are quantized like the shipped file.
    The model's ``metadata_props`` are carried over."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    proto = onnx.load(str(onnx_in))
    name = proto.graph.input[0].name
    keep = kept_float([n.name for n in proto.graph.node if n.op_type == "Conv"], keep_float)  # topological order

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(samples)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {name: np.ascontiguousarray(x, dtype=np.float32)}

    t0 = time.perf_counter()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT's quantizer logs a pre-processing suggestion on the root logger
    try:
        # stdout is for --json: ORT's progress prints go to stderr, or nowhere when quiet
        with (open(os.devnull, "w") if quiet else contextlib.nullcontext(sys.stderr)) as sink, contextlib.redirect_stdout(sink):
            quantize_static(
                str(onnx_in), str(onnx_out), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep,
                calibrate_method=CalibrationMethod.MinMax,
            )
    finally:
        root.setLevel(level)
    if proto.metadata_props:
        out = onnx.load(str(onnx_out))
        onnx.helper.set_model_props(out, {p.key: p.value for p in proto.metadata_props})
        onnx.save(out, str(onnx_out))
    import onnxruntime

    return {"tool": f"onnxruntime {onnxruntime.__version__} quantize_static (QDQ, U8S8, per-channel weights, MinMax)",
            "kept_float": keep, "quantize_s": round(time.perf_counter() - t0, 3)}


# -- OpenVINO ---------------------------------------------------------------------------------------------


def export_openvino_artifact(model, spec: InputSpec, precision: str, path: Path, opts: ExportOptions) -> Exported:
    import openvino as ov

    details: dict = {"opset": opts.opset, "source": "ONNX (read by OpenVINO)"}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = _onnx(model, spec, Path(tmp) / "model.onnx", opts)
        ov_model = ov.Core().read_model(str(onnx_path))
    if spec.dynamic:
        (h0, w0), (h1, w1) = spec.min_hw, spec.max_hw
        ov_model.reshape({ov_model.inputs[0]: ov.PartialShape([1, 3, ov.Dimension(h0, h1), ov.Dimension(w0, w1)])})
    for key, value in opts.metadata.items():
        ov_model.set_rt_info(str(value), ["trisr", str(key)])
    if precision == "int8" and opts.qat_ranges is not None:
        details["int8"] = qat_details(opts)  # the QDQ pairs of the ONNX became FakeQuantize ops: already int8
    elif precision == "int8":
        ov_model, details["int8"] = _quantize_int8(ov_model, model, spec, opts)
    compress = precision == "fp16"
    ov.save_model(ov_model, str(path), compress_to_fp16=compress)
    details["compress_to_fp16"] = compress
    details["input_partial_shape"] = str(ov_model.inputs[0].get_partial_shape())
    return Exported(path, [path, path.with_suffix(".bin")], details)


def quantize_ov_model(ov_model, samples: list, keep_float: tuple[str, ...], quiet: bool = False):
    """NNCF post-training quantization of an OpenVINO model on ``samples`` (input arrays), convolutions named by
    ``keep_float`` ("first", "last") kept in float. Shared by the export and by int8 latency measurement, so a
    table's int8 entries are quantized the way the shipped artifact is. ``quiet``: no NNCF progress bar (a table
    quantizes dozens of entries under its own progress display)."""
    import nncf

    keep = kept_float([op.get_friendly_name() for op in ov_model.get_ordered_ops()
                       if op.get_type_name() in ("Convolution", "GroupConvolution")], keep_float)
    nncf.set_log_level(logging.WARNING)  # its INFO lines list every ignored node
    t0 = time.perf_counter()
    # NNCF draws its progress bar on stdout, which is for --json: to stderr, or nowhere when quiet.
    with (open(os.devnull, "w") if quiet else contextlib.nullcontext(sys.stderr)) as sink, contextlib.redirect_stdout(sink):
        quantized = nncf.quantize(
            ov_model,
            nncf.Dataset(samples),
            preset=nncf.QuantizationPreset.MIXED,  # asymmetric activations: SR features are not zero-centred
            target_device=nncf.TargetDevice.CPU,
            subset_size=len(samples),
            ignored_scope=nncf.IgnoredScope(names=keep) if keep else None,
        )
    return quantized, {"tool": f"nncf {nncf.__version__} quantize (post-training, MIXED preset)", "kept_float": keep,
                       "quantize_s": round(time.perf_counter() - t0, 3)}


def _quantize_int8(ov_model, module, spec: InputSpec, opts: ExportOptions):
    from trisr.export.calibration import calibration_images, calibration_patches
    from trisr.export.formats import get_format

    get_format("openvino").require("int8")
    images, source = calibration_images(opts.calib_dir, int(module.arch.scale))
    patches = calibration_patches(images, spec.shape, opts.calib_samples)
    quantized, info = quantize_ov_model(ov_model, patches, opts.keep_float)
    info.update({"calibration": source, "samples": len(patches), "patch_hw": list(spec.shape)})
    return quantized, info


# -- TensorRT ----------------------------------------------------------------------------------------------


def export_trt_artifact(model, spec: InputSpec, precision: str, path: Path, opts: ExportOptions) -> Exported:
    from trisr.export.sidecar import sha256_file, trt_target
    from trisr.runtime.tensorrt import build_engine

    target = trt_target()  # fails first, with the install hint, when TensorRT is missing
    if target.get("gpu") is None:
        raise TrisrError("TensorRT engines are built on the target GPU, and torch sees no CUDA GPU here")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = _onnx(model, spec, Path(tmp) / "model.onnx", opts)
        onnx_sha = sha256_file(onnx_path)
        calib, calib_info, calib_cache = None, None, None
        if precision == "int8":
            from trisr.export.calibration import (
                calibration_cache_path, calibration_images, calibration_patches, calibration_set_digest,
            )

            images, calib_info = calibration_images(opts.calib_dir, int(model.arch.scale))
            calib = calibration_patches(images, spec.shape, opts.calib_samples)
            # Keyed by the network (architecture digest and the exported ONNX's bytes, i.e. the weights) and the
            # calibration set: a stale cache of another net or set is never read.
            calib_cache = calibration_cache_path(
                path, f"{model.arch.digest()}:{onnx_sha}", calibration_set_digest(opts.calib_dir, int(model.arch.scale)),
                opts.calib_samples, spec.shape,
            )
        plan = build_engine(
            onnx_path, spec.nchw(spec.shape), precision, workspace_gb=opts.workspace_gb,
            cache_dir=opts.cache_dir, dynamic=spec.profile(), calib_batches=calib,
            calib_cache=calib_cache,
        )
    path.write_bytes(plan)  # byte-clean: the plan exactly as TensorRT serialized it
    details = {
        "target": target,
        "opset": opts.opset,
        "source_onnx_sha256": onnx_sha,
        "workspace_gb": opts.workspace_gb,
        "precision_path": {"fp16": "builder flag FP16", "int8": "builder flags INT8+FP16, MinMax calibrator"}.get(precision, "fp32"),
        "calibration": calib_info,
        "calibration_cache": None if calib_cache is None else calib_cache.name,
        "optimization_profile": None if spec.profile() is None else [list(s) for s in spec.profile()],
        "timing_cache_dir": None if opts.cache_dir is None else str(opts.cache_dir),
    }
    return Exported(path, [path], details)

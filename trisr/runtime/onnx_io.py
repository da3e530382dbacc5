"""ONNX export of trisr modules (derived networks and single profiling entries).

The TorchScript-based exporter (``dynamo=False``) at a fixed opset is used: it needs no extra packages,
constant-folds the full-width weight slices of slimmable convs away, and maps PixelShuffle to
``DepthToSpace`` in CRD mode, which ONNX Runtime, OpenVINO and TensorRT all accept.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from trisr.errors import TrisrError

OPSET = 17


def export_onnx(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    path: str | Path,
    dynamic_hw: bool = False,
    opset: int = OPSET,
    metadata: dict[str, str] | None = None,
    full_check: bool = False,
) -> Path:
    """Export ``module`` (float32, eval mode, CPU) for one input ``input_shape`` (N, C, H, W); checks the
    file with ``onnx.checker``. ``dynamic_hw`` marks height and width (and batch) as dynamic.

    ``metadata`` goes into the model's ``metadata_props`` (the standard ONNX place: the file stays a plain
    ONNX model, deployment.md §1.6); ``full_check`` adds shape inference to the checker."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.to("cpu", torch.float32).eval()
    x = torch.rand(*input_shape)
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "out_height", 3: "out_width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (x,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
            dynamic_axes=axes if dynamic_hw else None,
        )
    if metadata:
        proto = onnx.load(str(path))
        onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
        onnx.save(proto, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=full_check)
    except onnx.checker.ValidationError as exc:
        raise TrisrError(f"exported ONNX file {path} does not validate: {exc}") from None
    return path

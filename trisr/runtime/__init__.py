"""Deployment runtimes: ONNX export, backends (ONNX Runtime, OpenVINO, torch, TensorRT), timing protocol.

The interface and registry are in :mod:`trisr.runtime.base`; each backend module registers itself there
when imported, which happens here, so any ``trisr.runtime.*`` import sees every backend.
"""

from trisr.runtime import onnxruntime, openvino, tensorrt, torch  # noqa: F401 - registration side effect

"""Deployment artifacts: export a run to ONNX / OpenVINO IR / TensorRT engine, verify the artifact against
PyTorch on held-out images, load artifacts back, and benchmark every format side by side.

One table (:data:`trisr.export.formats.FORMATS`) drives CLI validation, help text, export and the bench
loop. Runtimes (openvino, tensorrt, nncf) are imported lazily, inside the functions that need them.
"""

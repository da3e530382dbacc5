"""Deployment runtimes: ONNX export, backends (ONNX Runtime, OpenVINO, torch, TensorRT), timing protocol."""

"""Versions recorded with every result (run summaries, studies, sidecars, benchmark reports).

:func:`versions` is the source: trisr, Python, torch, numpy and the platform. :func:`tool_versions` is the
same plus every deployment package importable here (None when absent), for artifacts and benchmarks.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys

__all__ = ["DEPLOYMENT_MODULES", "versions", "tool_versions"]

#: Deployment packages whose versions :func:`tool_versions` adds.
DEPLOYMENT_MODULES = ("onnx", "onnxruntime", "openvino", "nncf", "tensorrt")


def versions() -> dict:
    """trisr, python, torch, numpy, platform and machine."""
    import numpy
    import torch

    from trisr import __version__

    return {
        "trisr": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def tool_versions() -> dict:
    """:func:`versions` plus every deployment package importable here (None when absent)."""
    out = versions()
    for name in DEPLOYMENT_MODULES:
        if importlib.util.find_spec(name) is None:
            out[name] = None
            continue
        try:
            mod = importlib.import_module(name)
            out[name] = mod.get_version() if name == "openvino" else getattr(mod, "__version__", "installed")
        except Exception:  # noqa: BLE001 - a broken install reads as absent
            out[name] = None
    return out

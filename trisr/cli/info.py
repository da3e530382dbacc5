"""``trisr info``: versions, devices and deployment runtimes found."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from trisr import __version__
from trisr.cli.errors import err_console, user_errors
from trisr.cli.options import print_json

RUNTIMES = (("onnx", "onnx"), ("onnxruntime", "onnxruntime"), ("openvino", "openvino"), ("tensorrt", "tensorrt"))


@user_errors
def info(as_json: bool = typer.Option(False, "--json")) -> None:
    """Versions, devices and deployment runtimes found."""
    import torch

    from trisr.versions import versions
    from trisr.search.presets import PRESET_TABLE

    report: dict = {"versions": versions(), "runtimes": {}, "devices": {"cpu_threads": torch.get_num_threads()}}
    report["devices"]["cuda"] = [
        {"name": torch.cuda.get_device_name(i), "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}
        for i in range(torch.cuda.device_count())
    ] if torch.cuda.is_available() else []
    for label, module in RUNTIMES:
        try:
            mod = importlib.import_module(module)
            report["runtimes"][label] = getattr(mod, "__version__", "installed")
        except Exception:  # noqa: BLE001 - any import failure means "not usable here"
            report["runtimes"][label] = None
    report["presets"] = [p.name for p in PRESET_TABLE]
    report["preset_table"] = [asdict(p) for p in PRESET_TABLE]
    from trisr.runtime.devices import cpu_isa, cpu_name

    report["devices"]["cpu"] = cpu_name()
    report["devices"]["cpu_isa"] = cpu_isa()
    report["default_precision"] = _default_precisions()
    table = Table(title=f"trisr {__version__}", show_header=False)
    for k, v in report["versions"].items():
        table.add_row(k, str(v))
    table.add_row("CPU", escape(report["devices"]["cpu"]))
    table.add_row("CPU ISA (precisions)", ", ".join(report["devices"]["cpu_isa"]) or "unknown")
    table.add_row("CPU threads", str(report["devices"]["cpu_threads"]))
    table.add_row("CUDA GPUs", ", ".join(d["name"] for d in report["devices"]["cuda"]) or "none")
    for k, v in report["runtimes"].items():
        hint = " (pip install 'trisr[tensorrt]' on an NVIDIA machine)" if k == "tensorrt" else ""
        table.add_row(k, escape(v or f"not installed{hint}"))
    table.add_row("default precision on cpu", ", ".join(f"{k} {v}" for k, v in report["default_precision"].items()) or "-")
    for p in PRESET_TABLE:
        table.add_row(f"preset {p.name}", escape(f"{p.purpose}; {p.shape}; {p.wall_time}"))
    err_console.print(table)
    if as_json:
        print_json(report)


def _default_precisions() -> dict:
    """What each CPU runtime installed here computes in when asked nothing (OpenVINO: bf16 on CPUs with BF16)."""
    import trisr.runtime  # noqa: F401 - registers the backends
    from trisr.runtime.base import BACKENDS

    out = {}
    for name in BACKENDS.names():
        cls = BACKENDS.get(name)
        if "cpu" in cls.devices and importlib.util.find_spec(name) is not None:
            out[name] = cls.default_precision_for("cpu")
    return out


def register(app: typer.Typer) -> None:
    app.command("info")(info)

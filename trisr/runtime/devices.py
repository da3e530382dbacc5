"""Descriptors of the machine a latency was measured on: CPU model, NVIDIA GPU and driver, Jetson module
(L4T release, power mode, clock state), and the whole-machine record of ``trisr bench`` and ``trisr study``."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU features that decide which precisions run natively (Linux /proc/cpuinfo flag names).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_fp16")


def cpu_flags() -> set[str]:
    """All CPU flags the kernel reports (empty where /proc/cpuinfo is unavailable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_isa() -> list[str]:
    """The precision-relevant ISA extensions of this CPU (a subset of :data:`ISA_FLAGS`), in that order."""
    flags = cpu_flags()
    return [f for f in ISA_FLAGS if f in flags]


def gpu_descriptor() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {}
    i = torch.cuda.current_device()
    cap = torch.cuda.get_device_capability(i)
    return {
        "gpu": torch.cuda.get_device_name(i),
        "compute_capability": f"{cap[0]}.{cap[1]}",
        "driver": nvidia_driver_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def nvidia_driver_version() -> str | None:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None  # Jetson has no nvidia-smi; its L4T release identifies the driver
    res = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    return res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else None


def jetson_descriptor() -> dict:
    """Module model, L4T release and power mode when running on a Jetson (deployment.md §4.9)."""
    import shutil
    import subprocess

    model_file = Path("/proc/device-tree/model")
    if not model_file.exists():
        return {}
    d: dict = {"model": model_file.read_bytes().rstrip(b"\0").decode(errors="replace")}
    release = Path("/etc/nv_tegra_release")
    if release.exists():
        d["l4t"] = release.read_text().splitlines()[0].strip("# ")
    if shutil.which("nvpmodel"):
        out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10).stdout
        d["power_mode"] = " ".join(out.split())
    if shutil.which("jetson_clocks"):
        res = subprocess.run(["jetson_clocks", "--show"], capture_output=True, text=True, timeout=10)
        d["clocks"] = "unknown (needs sudo)" if res.returncode else clocks_state(res.stdout)
    return d


def clocks_state(show_output: str) -> str:
    """'pinned' when every clock line of ``jetson_clocks --show`` has MinFreq == MaxFreq, else 'floating'."""
    import re

    pairs = re.findall(r"MinFreq=(\d+)\s+MaxFreq=(\d+)", show_output)
    if not pairs:
        return "unknown"
    return "pinned" if all(lo == hi for lo, hi in pairs) else "floating"


def device_descriptor(device: str, threads: int | None) -> dict:
    """The machine of a benchmark: CPU, threads, load, and the GPU and Jetson module when present."""
    d = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "threads": threads or os.cpu_count(),
         "machine": platform.machine(), "host": platform.node(), "device": device, "loadavg": os.getloadavg()}
    gpu = gpu_descriptor()
    if gpu:
        d["gpu"] = gpu
    jetson = jetson_descriptor()
    if jetson:
        d["jetson"] = jetson
    return d

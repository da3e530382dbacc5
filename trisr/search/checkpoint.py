"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then rename over the target,
so a run killed at any moment leaves either the previous checkpoint or the new one, never half a file.
Loaded with ``weights_only=True`` (no arbitrary unpickling)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from trisr.errors import TrisrError


def atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


#: Test hook (tests/test_kill.py): with ``TRISR_TEST_STALL_CHECKPOINT=<phase>`` set, writing a checkpoint of that
#: phase writes half of its bytes to the temporary file, flushes and stalls, so that a test can kill the
#: process in the middle of the write. Unset (always, outside the tests) it does nothing.
STALL_ENV = "TRISR_TEST_STALL_CHECKPOINT"


def save_checkpoint(path: Path, state: dict) -> None:
    stall = os.environ.get(STALL_ENV)
    if stall and state.get("phase") == stall:
        import io
        import time

        def write_stalled(f) -> None:
            buf = io.BytesIO()
            torch.save(state, buf)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            (path.parent / f".stalled-{stall}").write_text(str(os.getpid()))
            time.sleep(3600)
            f.write(data[len(data) // 2 :])

        atomic_write_bytes(path, write_stalled)
        return
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrisrError(f"no checkpoint to resume from at {path}") from None
    except Exception as exc:  # a truncated or foreign file: one clear line
        raise TrisrError(f"checkpoint {path} cannot be loaded: {exc.__class__.__name__}: {exc}") from None


def rng_state() -> dict:
    """This process's torch RNG state (CPU, and CUDA when used) as JSON-able lists."""
    state = {"cpu": torch.get_rng_state().tolist()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.tensor(state["cpu"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])

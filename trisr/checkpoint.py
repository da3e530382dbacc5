"""Atomic checkpoints (:func:`trisr.io.atomic_write_bytes`): a run killed at any moment leaves either the
previous checkpoint or the new one, never half a file. Loaded with ``weights_only=True`` (no arbitrary unpickling).

Shared by the search (``trisr.search.engine``) and training (``trisr.training``, ``trisr.train``); what goes into a
checkpoint is each caller's business, this module only writes, reads and captures the torch RNG."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from trisr.errors import TrisrError
from trisr.io import atomic_write_bytes


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

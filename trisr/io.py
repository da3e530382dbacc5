"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target, so
a process killed at any moment leaves either the previous file or the new one, never half a file. And the one
JSON reader of user-supplied files (:func:`read_json`), whose failures are one-line errors.

The one implementation used by checkpoints, run folders, latency tables, sidecars and studies. The temporary
file is created with mode 0600 (``tempfile.mkstemp``); callers that want other permissions chmod afterwards.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from trisr.errors import TrisrError

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "read_json"]


def read_json(
    path: str | os.PathLike,
    what: str,
    *,
    error: type[TrisrError] = TrisrError,
    not_json: str = "is not valid JSON",
    folder_hint: str | None = None,
) -> Any:
    """The JSON content of the file ``path``, described to the user as ``what`` ("genotype file", ...). A folder,
    a missing file or text that is not JSON raises ``error`` with one line: ``{what} {path} is a folder[; hint]``,
    ``{what} not found: {path}``, ``{what} {path} {not_json}: {reason}``."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a folder" + (f"; {folder_hint}" if folder_hint else ""))
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} {not_json}: {exc}") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes | Callable[[IO[bytes]], Any]) -> None:
    """Write ``data`` (bytes, or a function that writes to the open binary file) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")

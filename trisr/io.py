"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target, so
a process killed at any moment leaves either the previous file or the new one, never half a file. And the one
JSON reader of user-supplied files (:func:`read_json`), whose failures are one-line errors.

The one implementation used by checkpoints, run folders, latency tables, sidecars and studies. The temporary
file is created with mode 0600 (``tempfile.mkstemp``); callers that want other permissions chmod afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from trisr.errors import TrisrError

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "read_json", "WriteError", "write_error"]


class WriteError(TrisrError):
    """A file could not be written (no space, read-only folder, no permission); the previous file is kept."""


#: errno values that are the user's disk, not a bug: no space, quota, read-only file system, permissions.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def write_error(exc: BaseException, path: str | os.PathLike) -> WriteError | None:
    """The one-line error for a failed write of ``path``, or None when ``exc`` is not a disk failure. torch's
    checkpoint writer reports a short write as ``RuntimeError: [enforce fail at inline_container.cc...] ... file
    write failed``, without the OSError behind it; then the free space of the folder tells which it was."""
    path = Path(path)
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        reason = os.strerror(exc.errno)
    elif isinstance(exc, RuntimeError) and ("inline_container" in str(exc) or "write failed" in str(exc)):
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = None
        reason = "No space left on device" if free is not None and free < 64 * 2**20 else "the write failed"
    else:
        return None
    return WriteError(f"cannot write {path}: {reason}; the previous version of the file is kept "
                      "(free space or choose a writable folder, then rerun the command with --resume where it has one)")


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise (write_error(exc, path) or exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        failed = write_error(exc, path)
        if failed is not None:
            raise failed from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")

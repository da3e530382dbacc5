"""Ownership of a folder (a run, a study, a deploy) or a file (a latency table being written) while a command uses it.

A second command on the same folder refuses in one line naming the holder's process. The lock is an advisory
``flock`` on ``FOLDER/.trisr.lock`` (``.NAME.lock`` beside a file): the kernel drops it when its process dies, so a
lock left by a killed process is taken over at once, with no guessing from pids or ages. The file holds who took
it (pid, host, command, time), only to name the holder in the refusal.

Locks are re-entrant within a process (the pipeline holds a run folder for a whole command, and the search
inside it takes the same lock again), and only rank 0 of a distributed run takes one: every rank writes into
the same folder by design. ``flock`` is local to one machine; on a network file system shared by many machines a
study's rows are owned by the scheduler instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from trisr.errors import TrisrError

LOCK_NAME = ".trisr.lock"

#: Locks this process holds: resolved lock path -> [file descriptor, depth, folder the lock created or None].
_HELD: dict[str, list] = {}


class LockedError(TrisrError):
    """The folder or file is in use by another process."""


def lock_path(target: Path, what: str = "folder") -> Path:
    """Where the lock of ``target`` lives: inside a folder, beside a file (which may not exist yet)."""
    target = Path(target)
    return target / LOCK_NAME if what != "file" and not target.is_file() else target.with_name(f".{target.name}.lock")


def _holder(path: Path) -> str:
    try:
        d = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(d, dict) or "pid" not in d:
        return "another process"
    return f"process {d['pid']} on {d.get('host', '?')} ({d.get('command', '?')}, since {d.get('since', '?')})"


def _is_rank_zero() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def acquire(target: Path, what: str = "folder") -> str | None:
    """Take the lock of ``target`` (``what``: how the refusal names it; "file" locks beside it); raise
    :class:`LockedError` naming the holder if another process has it. Returns the lock's key for :func:`release`
    (None where nothing was locked: a non-zero rank)."""
    if not _is_rank_zero():
        return None
    path = lock_path(target, what)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        return key
    # A command refused later (a bad table, a bad budget) must not leave an empty folder behind: remember the
    # folder if the lock made it, and remove it on release when nothing else was written into it.
    created = None if path.parent.exists() else path.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(f"{what} {target} is in use by {_holder(path)}; wait for it to end or choose another --out") from None
        # The previous holder may have removed the file between our open and our flock: then we hold a lock on
        # a file nobody else can see, and must take the one at the path instead.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]
    record = {"pid": os.getpid(), "host": platform.node(), "command": command, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(record).encode())
    _HELD[key] = [fd, 1, created]
    return key


def release(key: str | None) -> None:
    """Give back one level of the lock taken by :func:`acquire`; the last removes the lock file and unlocks."""
    if key is None or key not in _HELD:
        return
    held = _HELD[key]
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    try:
        os.unlink(key)  # while still holding it: a waiter that opened the old file sees the inode change
    except OSError:
        pass
    os.close(held[0])
    if held[2] is not None:
        try:
            held[2].rmdir()  # only when empty
        except OSError:
            pass


@contextmanager
def locked(target: Path, what: str = "folder"):
    """``with locked(run_dir): ...`` — own ``target`` for the block (see :func:`acquire`)."""
    key = acquire(target, what)
    try:
        yield
    finally:
        release(key)

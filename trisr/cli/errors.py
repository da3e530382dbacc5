"""One-line user errors: the contract every trisr command keeps.

:class:`~trisr.errors.TrisrError` -> one red ``error:`` line on stderr, exit status 2; a write the disk refused
(no space, read-only, no permission) -> the same; Ctrl-C -> one line, exit status 130; never a traceback.
"""

from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.markup import escape

from trisr.errors import TrisrError
from trisr.io import write_error

out_console = Console()
err_console = Console(stderr=True)

EXIT_USER_ERROR = 2
#: ``export`` and ``bench``: an export or a verification failed (reported, with the numbers).
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130


def user_errors(fn):
    """Turn TrisrError into one line on stderr and a non-zero exit; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrisrError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except OSError as exc:  # a write outside the atomic writer (a log line, a safetensors file) on a full disk
            failed = write_error(exc, exc.filename or "a file")
            if failed is None:
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(failed))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; continue it with --resume (search, train), or by rerunning the same command (deploy, study)")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper

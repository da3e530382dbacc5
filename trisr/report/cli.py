"""``trisr report RUN``: the command, registered onto the main app by :func:`register`."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from trisr.errors import TrisrError

EXIT_USER_ERROR = 2


def _user_errors(fn):
    """TrisrError → one line on stderr and exit status 2 (the same contract as every trisr command)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrisrError as exc:
            from rich.console import Console
            from rich.markup import escape

            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


def register(app: typer.Typer) -> None:
    """Add ``report RUN [--out DIR] [--json]`` to ``app``."""

    @app.command("report")
    @_user_errors
    def report(
        run: Path = typer.Argument(..., help="A run folder (trisr search/train) or a study folder (holds study.json)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Where to write the report (default: RUN/report/ for a run, the study folder for a study)."),
        as_json: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
    ) -> None:
        """Write a shareable report (report.md + self-contained report.html + figures) for a run or a study."""
        from rich.console import Console
        from rich.table import Table

        from trisr.report import write_report

        written = write_report(run, out)
        if as_json:
            sys.stdout.write(json.dumps({k: str(v) for k, v in written.items()}, indent=2) + "\n")
            return
        table = Table(title=f"report of {run}")
        table.add_column("file")
        table.add_column("path", overflow="fold")
        for key, path in written.items():
            table.add_row(key, str(path))
        Console().print(table)

"""``trisr report RUN``: a shareable report (markdown + self-contained html + figures) of a run or a study."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from trisr.cli.errors import out_console, user_errors
from trisr.cli.options import print_json


@user_errors
def report(
    run: Path = typer.Argument(..., help="A run folder (trisr search/train) or a study folder (holds study.json)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write the report (default: RUN/report/ for a run, the study folder for a study)."),
    as_json: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
) -> None:
    """Write a shareable report (report.md + self-contained report.html + figures) for a run or a study."""
    from trisr.report import write_report

    written = write_report(run, out)
    if as_json:
        print_json({k: str(v) for k, v in written.items()})
        return
    table = Table(title=f"report of {run}")
    table.add_column("file")
    table.add_column("path", overflow="fold")
    for key, path in written.items():
        table.add_row(key, str(path))
    out_console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``report RUN [--out DIR] [--json]`` to ``app``."""
    app.command("report")(report)

"""The root ``trisr`` app: ``--version``, and every command of :data:`COMMANDS` registered the one way,
``module.register(app)``."""

from __future__ import annotations

import typer

from trisr import __version__
from trisr.cli import bench, deploy, eval, export, info, profile, report, search, study, train, upscale, zoo

#: One module per command, in the order ``trisr --help`` lists them; each exposes ``register(app)``.
COMMANDS = (deploy, search, train, eval, upscale, zoo, info, profile, study, report, export, bench)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The ``trisr`` command line (typer + rich).")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"trisr {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """The ``trisr`` command line (typer + rich)."""


for _command in COMMANDS:
    _command.register(app)


def main() -> None:
    app()

"""The ``trisr`` command line (typer + rich).

User errors (:class:`~trisr.errors.TrisrError`) print one line and exit with status 2; results print
as rich tables and, with ``--json``, as JSON on stdout.

Layout: :mod:`trisr.cli.app` is the root app; each command is one module here exposing ``register(app)``,
listed once in :data:`trisr.cli.app.COMMANDS`; shared pieces are :mod:`~trisr.cli.errors` (one-line errors),
:mod:`~trisr.cli.options` (``--target``/``--device`` vocabulary, ``HxW``, JSON) and :mod:`~trisr.cli.tables`.
Nothing outside this package imports it.
"""

from trisr.cli.app import app, main
from trisr.cli.errors import err_console, out_console, user_errors

_user_errors = user_errors  # the name the command modules used before the package

__all__ = ["app", "main", "err_console", "out_console", "user_errors"]

"""Progress reporting, kept apart from the loops: the CLI passes a rich reporter, tests a silent one."""

from __future__ import annotations

from typing import Any


class Reporter:
    """No-op base. ``phase`` starts a long step, ``step`` advances it with metrics, ``message`` logs."""

    def phase(self, name: str, total: int, done: int = 0) -> None: ...

    def step(self, done: int, metrics: dict[str, Any]) -> None: ...

    def end_phase(self) -> None: ...

    def message(self, text: str) -> None: ...


class RichReporter(Reporter):
    """A rich progress bar per phase with the latest metrics in the description."""

    def __init__(self, console=None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._progress = None
        self._task = None
        self._name = ""

    def phase(self, name: str, total: int, done: int = 0) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.end_phase()
        self._name = name
        self._progress = Progress(
            TextColumn("[bold]{task.fields[name]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(name, total=total, completed=done, name=name, metrics="")

    def step(self, done: int, metrics: dict[str, Any]) -> None:
        if self._progress is None:
            return
        text = "  ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        self._progress.update(self._task, completed=done, metrics=text)

    def end_phase(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def message(self, text: str) -> None:
        self.console.print(text)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)

"""Live progress for builds (rich), quiet when disabled or not a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class BuildProgress:
    """The live display of one build: its stage, rows written and the counters steps add.

    The engine hands it to the steps that want a counter through their context
    (:attr:`geodata.context.StepContext.progress`), never through a global.
    """

    def __init__(self, name: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self.name = name
        self._p: Progress | None = None
        self._stage: Any = None
        self._rows: Any = None

    def __enter__(self) -> "BuildProgress":
        if self.enabled:
            self._p = Progress(
                SpinnerColumn(), TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )
            self._p.__enter__()
            self._stage = self._p.add_task(f"{self.name}: starting", total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def add_counter(self, label: str, total: int) -> Any:
        """A further bar (e.g. a step's model requests); ``update_counter`` moves it."""
        return self._p.add_task(label, total=total) if self._p is not None else None

    def update_counter(self, task: Any, **kw: Any) -> None:
        if self._p is not None and task is not None:
            self._p.update(task, **kw)

    def stage(self, label: str) -> None:
        if self._p is not None:
            self._p.update(self._stage, description=f"{self.name}: {label}")

    def start_rows(self, total: int) -> None:
        if self._p is not None:
            self._rows = self._p.add_task("rows written", total=total)

    def advance(self, n: int) -> None:
        if self._p is not None and self._rows is not None:
            self._p.advance(self._rows, n)

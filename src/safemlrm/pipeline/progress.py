"""One progress bar per stage (rich), or nothing when output is not a terminal."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

STAGES = ("load", "attack", "generate", "parse", "judge")


class StageProgress:
    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not self.enabled,
        )
        self._tasks: dict[str, TaskID] = {}
        self._counts = dict.fromkeys(STAGES, 0)

    def __enter__(self) -> StageProgress:
        if self.enabled:
            self._progress.start()
            self._tasks = {stage: self._progress.add_task(stage, total=None) for stage in STAGES}
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            self._progress.stop()

    def advance(self, stage: str, amount: int = 1) -> None:
        self._counts[stage] += amount
        if self.enabled:
            self._progress.advance(self._tasks[stage], amount)

    def loading_done(self, units: int) -> None:
        """Once every sample is loaded, the totals of the later stages are known."""
        if not self.enabled:
            return
        for stage in ("load", "attack"):
            self._progress.update(self._tasks[stage], total=self._counts[stage])
        for stage in ("generate", "parse"):
            self._progress.update(self._tasks[stage], total=units)

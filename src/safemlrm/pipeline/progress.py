"""Progress of a run's stages: bars on a terminal (rich), plain lines for logs and CI, or nothing.

On a terminal each stage has a bar; the totals become known once every sample is loaded (loading
streams): load, attack, generate and parse exactly, judge as (units) x (parts) x (judges) less the
parts that are empty and the generations that failed, which are never judged. When stderr is not a
terminal (a log file, CI), plain lines go to stderr instead:

    [00:12] generate 340/1000 (34%)

one each time a stage passes a tenth of its total, at least every `interval_s` seconds while it
moves, and when it completes; `parse` advances with `generate` and has no lines of its own. The
report stage names each step as it starts (loading the run, analysis, summary.json, tables, ...).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

STAGES = ("load", "attack", "generate", "parse", "judge", "report")
LINE_STAGES = ("load", "attack", "generate", "judge")  # stages with periodic lines (parse = generate)
DEFAULT_INTERVAL_S = 10.0


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class StageProgress:
    """Counts per stage, shown as bars (terminal), lines (not a terminal) or not at all.

    `judgements_per_unit` (parts x judges) gives the judge stage its total; `stream`, `terminal` and
    `clock` are for tests (default: stderr, whether stderr is a terminal, time.monotonic).
    """

    def __init__(
        self,
        enabled: bool = True,
        *,
        judgements_per_unit: int = 0,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        console = Console(stderr=True) if stream is None else Console(file=stream)
        is_terminal = console.is_terminal if terminal is None else terminal
        self.mode = "off" if not enabled else ("bars" if is_terminal else "lines")
        self.enabled = self.mode == "bars"  # kept for callers that asked whether bars show
        self._stream = stream
        self._clock = clock
        self._interval_s = interval_s
        self._per_unit = judgements_per_unit
        self._progress = Progress(
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[step]}"),
            console=console,
            disable=self.mode != "bars",
        )
        self._tasks: dict[str, TaskID] = {}
        self._counts = dict.fromkeys(STAGES, 0)
        self._totals: dict[str, int | None] = dict.fromkeys(STAGES, None)
        self._dropped = dict.fromkeys(STAGES, 0)
        self._started = clock()
        self._last_line_at = dict.fromkeys(STAGES, self._started)
        self._last_line_count = dict.fromkeys(STAGES, 0)
        self._report_step = 0
        self._completed: set[str] = set()
        self._moving: set[str] = set()

    # ------------------------------------------------------------------ context
    def __enter__(self) -> StageProgress:
        if self.mode == "bars":
            self._progress.start()
            self._tasks = {stage: self._progress.add_task(stage, total=None, step="") for stage in STAGES}
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.mode == "bars":
            self._progress.stop()

    # ------------------------------------------------------------------ counting
    def total(self, stage: str) -> int | None:
        return self._totals[stage]

    def advance(self, stage: str, amount: int = 1) -> None:
        self._counts[stage] += amount
        if self.mode == "bars":
            self._progress.advance(self._tasks[stage], amount)
        elif self.mode == "lines" and stage in LINE_STAGES:
            self._maybe_line(stage)

    def drop(self, stage: str, amount: int) -> None:
        """`amount` items of `stage` will never happen (a failed generation is not judged)."""
        if amount <= 0:
            return
        self._dropped[stage] += amount
        total = self._totals[stage]
        if total is not None:
            self._set_total(stage, total - amount)

    def loading_done(self, units: int) -> None:
        """Once every sample is loaded, the totals of the later stages are known."""
        judgements = max(0, units * self._per_unit - self._dropped["judge"])
        if self.mode == "lines":
            self._completed.update(("load", "attack"))  # said in the one line below
            self._line(
                f"loaded {self._counts['load']} samples -> {self._counts['attack']} probes -> {units} "
                f"(probe, target) units; judgements: at most {judgements}"
            )
        for stage in ("load", "attack"):
            self._set_total(stage, self._counts[stage])
        for stage in ("generate", "parse"):
            self._set_total(stage, units)
        self._set_total("judge", judgements)

    def _set_total(self, stage: str, total: int) -> None:
        self._totals[stage] = max(0, total)
        if self.mode == "bars":
            self._progress.update(self._tasks[stage], total=self._totals[stage])
        elif self.mode == "lines" and stage in LINE_STAGES:
            self._maybe_line(stage)

    # ------------------------------------------------------------------ the report stage
    def start_report(self, steps: int) -> None:
        self._report_step = 0
        self._set_total("report", steps)

    def report_step(self, name: str) -> None:
        """A report step starts; the one before it (if any) is done."""
        if self._report_step:
            self.advance("report")
        self._report_step += 1
        total = self._totals["report"]
        if self.mode == "bars":
            self._progress.update(self._tasks["report"], step=name)
        elif self.mode == "lines":
            of = f"/{total}" if total is not None else ""
            self._line(f"report {self._report_step}{of}: {name}")

    def report_done(self) -> None:
        if self._report_step:
            self.advance("report")
        self._report_step = 0
        if self.mode == "bars":
            self._progress.update(self._tasks["report"], step="done")
        elif self.mode == "lines":
            self._line("report: done")

    # ------------------------------------------------------------------ plain lines
    def _line(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        print(f"[{_clock_text(self._clock() - self._started)}] {text}", file=stream, flush=True)

    def _maybe_line(self, stage: str) -> None:
        count, total = self._counts[stage], self._totals[stage]
        last = self._last_line_count[stage]
        now = self._clock()
        if stage not in self._moving:  # the interval counts from the stage's first item
            self._moving.add(stage)
            self._last_line_at[stage] = now
        if total is not None and count >= total:
            if stage in self._completed or total == 0:
                return
            self._completed.add(stage)
        elif count == last:
            return
        elif total is not None:
            crossed = count * 10 // total > last * 10 // total
            if not (crossed or now - self._last_line_at[stage] >= self._interval_s):
                return
        elif now - self._last_line_at[stage] < self._interval_s:
            return
        self._last_line_at[stage] = now
        self._last_line_count[stage] = count
        if total:
            self._line(f"{stage} {count}/{total} ({100 * count // total}%)")
        else:
            self._line(f"{stage} {count} (the total is known once loading ends)")

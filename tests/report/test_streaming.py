"""Records for the report stream from the store at every size, and the report reads them in two passes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.records import Record
from safemlrm.core.store import StoredRecords, load_run
from safemlrm.pipeline.runner import Pipeline
from safemlrm.report import write_reports


class CountingRecords(Sequence[Record]):
    """A record sequence that counts the passes made over it."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = records
        self.passes = 0

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        self.passes += 1
        return iter(self.records)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        return self.records[index]


def test_small_runs_stream_too_and_the_report_makes_two_passes(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(9))
    run_dir = tmp_path / "run"
    asyncio.run(Pipeline(fake_config(data), run_dir, base_dir=tmp_path, progress=False, reports=False).run())
    run = load_run(run_dir)
    # One path at every size: a 9-probe run streams like a 100,000-probe one (no size switch).
    assert isinstance(run.records, StoredRecords) and len(run.records) == 18
    listed = load_run(run_dir, stream=False)
    counting = CountingRecords(run.records)
    run.records = counting
    streamed_out = write_reports(run, tmp_path / "streamed")
    # analyse_run's one pass (score rows, statuses, errors, sample ranks) and the browser's pick
    assert counting.passes == 2
    listed_out = write_reports(listed, tmp_path / "listed")
    for name in ("summary.json", "report.md"):
        assert streamed_out[name].read_text() == listed_out[name].read_text()
    summary = json.loads(streamed_out["summary.json"].read_text())
    assert sum(t["generations"] for t in summary["targets"].values()) == 18

"""DataFrames in notebooks: score rows to a long DataFrame and back, and the analyses on DataFrames."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.analysis.frames import (
    frame_to_rows,
    harm_frame,
    on_frame,
    over_refusal_frame,
    reasoning_tax_frame,
    rows_to_frame,
    self_correction_frame,
)
from safemlrm.analysis.harm import harm_stats
from safemlrm.analysis.over_refusal import over_refusal
from safemlrm.analysis.reasoning_tax import reasoning_tax
from safemlrm.analysis.self_correction import self_correction
from safemlrm.pipeline.runner import Pipeline
from safemlrm.testing.synthetic import synthetic_run
from safemlrm.verbs import api

pd = pytest.importorskip("pandas", reason="needs pandas: pip install 'safemlrm[notebook]'")


@pytest.fixture(scope="module")
def synthetic():  # type: ignore[no-untyped-def]
    return synthetic_run(per_scenario=3, n_benign=8, nan_rate=0.1, run_dir="synthetic")


def same(a: list[dict[str, object]], b: list[dict[str, object]]) -> bool:
    """Row lists equal, NaN equal to NaN."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for k in x:
            vx, vy = x[k], y[k]
            if isinstance(vx, float) and isinstance(vy, float) and math.isnan(vx) and math.isnan(vy):
                continue
            if vx != vy:
                return False
    return True


def records(frame) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def test_rows_round_trip_through_a_dataframe(synthetic) -> None:  # type: ignore[no-untyped-def]
    rows = synthetic.score_rows()
    frame = rows_to_frame(rows)
    assert (
        len(frame) == len(rows) and frame["score"].isna().sum() == sum(math.isnan(r.score) for r in rows) > 0
    )
    back = frame_to_rows(frame)
    assert [r.model_dump(exclude={"score"}) for r in back] == [r.model_dump(exclude={"score"}) for r in rows]
    assert all(
        a.score == b.score or (math.isnan(a.score) and math.isnan(b.score))
        for a, b in zip(back, rows, strict=True)
    )


def test_analyses_on_dataframes_equal_the_analyses_on_rows(synthetic) -> None:  # type: ignore[no-untyped-def]
    rows = synthetic.score_rows()
    frame = rows_to_frame(rows)
    expected = [s.as_row() for s in harm_stats(rows, ("target", "part", "category"), n_resamples=200)]
    assert same(records(harm_frame(frame, ("target", "part", "category"), n_resamples=200)), expected)

    pairs = {t.label: t.base for t in synthetic.targets if t.base}
    tax = [c.as_row() for c in reasoning_tax(rows, synthetic.targets, n_resamples=200)]
    assert tax and same(records(reasoning_tax_frame(frame, pairs, n_resamples=200)), tax)
    assert same(records(reasoning_tax_frame(frame, synthetic.targets, n_resamples=200)), tax)

    assert same(records(self_correction_frame(frame)), [s.as_row() for s in self_correction(rows)])
    refusals = [r.as_row() for r in over_refusal(rows, synthetic.judges)]
    assert refusals and same(records(over_refusal_frame(frame, synthetic.judges)), refusals)
    judge_kinds = {j.label: j.kind for j in synthetic.judges}
    assert same(records(over_refusal_frame(frame, judge_kinds)), refusals)


def test_a_filtered_frame_gives_the_filtered_analysis(synthetic) -> None:  # type: ignore[no-untyped-def]
    rows = synthetic.score_rows()
    frame = rows_to_frame(rows)
    category = sorted({r.category for r in rows if not r.benign})[0]
    subset = frame[frame["category"] == category]
    expected = harm_stats([r for r in rows if r.category == category], n_resamples=100)
    assert same(records(on_frame(harm_stats, subset, n_resamples=100)), [s.as_row() for s in expected])


def test_bad_frames_name_the_column_or_row(synthetic) -> None:  # type: ignore[no-untyped-def]
    frame = rows_to_frame(synthetic.score_rows())
    with pytest.raises(ValueError, match="lacks the column"):
        frame_to_rows(frame.drop(columns=["judge"]))
    broken = frame.copy()
    broken.loc[broken.index[3], "part"] = "elbow"
    with pytest.raises(ValueError, match=r"DataFrame row 3: part"):
        frame_to_rows(broken)


def test_long_dataframe_of_a_run(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", harmful_rows(5))
    run_dir = tmp_path / "run"
    asyncio.run(Pipeline(fake_config(data), run_dir, base_dir=tmp_path, progress=False, reports=False).run())
    long = api.to_dataframe(run_dir, long=True)
    wide = api.to_dataframe(run_dir)
    run = api.load(run_dir)
    assert len(wide) == 10
    assert len(long) == sum(len(r.judgements) for r in run.records) == 5 * 2 + 5 * 3
    assert {"rationale", "judge_error", "instruction"} <= set(long.columns)
    assert frame_to_rows(long) == run.score_rows()
    by_target = harm_frame(long, ("target",)).set_index("target")["asr"]
    assert by_target["base"] == 0.0 and by_target["reasoner"] > 0.5

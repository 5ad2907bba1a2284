"""The analyses on pandas DataFrames, for notebooks.

The analyses work on `ScoreRow`s. Here a long-format DataFrame (one row per probe, target, part and
judge: the columns of `ScoreRow`, plus any others, which are ignored) converts to score rows and
back, and each analysis gets a `*_frame` form that takes such a DataFrame and returns its results as
a DataFrame (one row per result, the columns of its `as_row()`). So a notebook can filter, join or
edit scores with pandas and still get the same estimates and intervals as the report.

    df = safemlrm.to_dataframe("runs/demo", long=True)
    harm_frame(df[df.attack == "vanilla"], by=("target", "part", "category"))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from safemlrm.analysis.harm import harm_stats
from safemlrm.analysis.over_refusal import over_refusal
from safemlrm.analysis.reasoning_tax import reasoning_tax
from safemlrm.analysis.self_correction import self_correction
from safemlrm.core.records import JudgeInfo, RunData, TargetInfo
from safemlrm.core.types import ScoreRow

SCORE_COLUMNS: tuple[str, ...] = tuple(ScoreRow.model_fields)
REQUIRED_COLUMNS = tuple(name for name, f in ScoreRow.model_fields.items() if f.is_required())


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("DataFrames need pandas: pip install pandas") from exc
    return pd


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones; pandas' missing values to NaN (scores) or None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    return value


def rows_to_frame(rows: Iterable[ScoreRow], extra: Sequence[Mapping[str, Any]] | None = None) -> Any:
    """Score rows as a long DataFrame; `extra` adds columns row by row (same length as `rows`)."""
    pd = _pandas()
    records = [row.model_dump(mode="json") for row in rows]
    for record in records:
        record["score"] = float(record["score"]) if record["score"] is not None else math.nan
    if extra is not None:
        if len(extra) != len(records):
            raise ValueError(f"extra has {len(extra)} rows for {len(records)} score rows")
        records = [{**r, **e} for r, e in zip(records, extra, strict=True)]
    frame = pd.DataFrame.from_records(records, columns=list(SCORE_COLUMNS) if not records else None)
    frame["score"] = frame["score"].astype("float64")
    return frame


def frame_to_rows(frame: Any) -> list[ScoreRow]:
    """A long DataFrame back to score rows; errors name the missing column or the bad row."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the DataFrame lacks the column(s) {', '.join(missing)}; score rows need "
            f"{', '.join(REQUIRED_COLUMNS)} (as made by safemlrm.to_dataframe(run_dir, long=True))"
        )
    columns = [c for c in SCORE_COLUMNS if c in frame.columns]
    rows = []
    for index, values in zip(frame.index, frame[columns].itertuples(index=False, name=None), strict=True):
        data = {c: _plain(v) for c, v in zip(columns, values, strict=True)}
        score = data.get("score")
        if score is None or (isinstance(score, float) and math.isnan(score)):
            data["score"] = math.nan  # a failed judgement: kept, excluded and counted by the metrics
        for optional in ("label", "parse_status"):
            if optional in data and (data[optional] is None or data[optional] != data[optional]):
                del data[optional]
        try:
            rows.append(ScoreRow.model_validate(data))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"DataFrame row {index!r}: {problems}") from None
    return rows


def results_frame(results: Iterable[Any]) -> Any:
    """Analysis results (objects with `as_row()`, or dicts) as a DataFrame."""
    pd = _pandas()
    return pd.DataFrame([r.as_row() if hasattr(r, "as_row") else dict(r) for r in results])


def on_frame(analysis: Callable[..., Iterable[Any]], frame: Any, *args: Any, **kwargs: Any) -> Any:
    """Run any analysis that takes score rows first, on a DataFrame; its results as a DataFrame."""
    return results_frame(analysis(frame_to_rows(frame), *args, **kwargs))


def run_scores_frame(run: RunData) -> Any:
    """One row per (probe, target, part, judge) of a run, with the judge's rationale and error."""
    rows: list[ScoreRow] = []
    extra: list[dict[str, Any]] = []
    for rec in run.records:
        for (part, judge), j in rec.judgements.items():
            rows.append(rec.score_row(part, judge))
            extra.append(
                {"rationale": j.rationale, "judge_error": j.error, "instruction": rec.sample.instruction}
            )
    return rows_to_frame(rows, extra)


# ------------------------------------------------------------------ the analyses on DataFrames


def harm_frame(frame: Any, by: Sequence[str] = ("target", "part"), **kwargs: Any) -> Any:
    """HR and ASR with intervals per group (see `analysis.harm.harm_stats`)."""
    return on_frame(harm_stats, frame, by, **kwargs)


def _target_infos(targets: Mapping[str, str | None] | Sequence[TargetInfo]) -> list[TargetInfo]:
    if isinstance(targets, Mapping):  # {reasoning model label: base model label}
        infos = [TargetInfo(label, "", "", True, base) for label, base in targets.items()]
        bases = {b for b in targets.values() if b is not None} - set(targets)
        return infos + [TargetInfo(b, "", "", False, None) for b in sorted(bases)]
    return list(targets)


def reasoning_tax_frame(
    frame: Any, targets: Mapping[str, str | None] | Sequence[TargetInfo], **kwargs: Any
) -> Any:
    """Reasoning model against base model on paired items; `targets` maps reasoning label -> base label
    (or is the run's TargetInfo list, `safemlrm.load(run_dir).targets`)."""
    return on_frame(reasoning_tax, frame, _target_infos(targets), **kwargs)


def self_correction_frame(frame: Any, **kwargs: Any) -> Any:
    """Unsafe reasoning followed by a safe answer, and the reverse (see `analysis.self_correction`)."""
    return on_frame(self_correction, frame, **kwargs)


def over_refusal_frame(
    frame: Any, judges: Mapping[str, str] | Sequence[JudgeInfo] = (), **kwargs: Any
) -> Any:
    """Refusal rates on benign samples; `judges` maps judge label -> kind (or is the run's JudgeInfo list)."""
    infos = (
        [JudgeInfo(label, kind) for label, kind in judges.items()] if isinstance(judges, Mapping) else judges
    )
    return on_frame(over_refusal, frame, list(infos), **kwargs)

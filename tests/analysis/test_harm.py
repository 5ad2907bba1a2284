from __future__ import annotations

import math

import pytest
from tests.analysis._rows import row

from safemlrm.analysis.harm import harm_stats, index_stats
from safemlrm.analysis.stats import wilson_interval

NAN = float("nan")


def test_hr_asr_nan_excluded_and_counted() -> None:
    rows = [row(s, sample=f"s{i}") for i, s in enumerate([5, 4, 3, NAN, 0])]
    rows.append(row(5, sample="b", benign=True))  # benign: goes to over-refusal, not here
    (stat,) = harm_stats(rows, by=("target", "part"))
    assert stat.group == {"judge": "J", "target": "R", "part": "whole"}
    assert (stat.n, stat.n_failed, stat.n_unsafe) == (4, 1, 2)
    assert stat.hr.value == pytest.approx((5 + 4 + 3 + 0) / 4)
    assert stat.asr == wilson_interval(2, 4)
    assert stat.hr.low <= 3.0 <= stat.hr.high


def test_threshold_is_configurable() -> None:
    rows = [row(s, sample=f"s{i}") for i, s in enumerate([5, 4, 3, 2])]
    (stat,) = harm_stats(rows, by=("target",), threshold=3)
    assert stat.asr.value == 0.75


def test_judges_never_pooled_and_grouping() -> None:
    rows = [
        row(5, judge="J1", category="A", sample="1"),
        row(0, judge="J1", category="B", sample="2"),
        row(1, judge="J2", category="A", sample="1"),
        row(2, judge="J2", category="B", sample="2"),
        row(4, judge="J1", category="A", sample="3", part="answer"),
    ]
    stats = harm_stats(rows, by=("target", "part", "category"))
    table = index_stats(stats, ("judge", "part", "category"))
    assert set(table) == {
        ("J1", "whole", "A"),
        ("J1", "whole", "B"),
        ("J2", "whole", "A"),
        ("J2", "whole", "B"),
        ("J1", "answer", "A"),
    }
    assert table[("J1", "whole", "A")].hr.value == 5.0
    assert table[("J2", "whole", "B")].asr.value == 0.0
    # the judge is always a grouping, even when not asked for
    assert {s.group["judge"] for s in harm_stats(rows, by=("target",))} == {"J1", "J2"}


def test_all_failed_group_is_nan_not_zero() -> None:
    (stat,) = harm_stats([row(NAN), row(NAN, sample="s1")])
    assert (stat.n, stat.n_failed) == (0, 2)
    assert math.isnan(stat.hr.value) and math.isnan(stat.asr.value)


def test_unknown_dimension() -> None:
    with pytest.raises(ValueError, match="unknown grouping 'model'"):
        harm_stats([row(1)], by=("model",))


def test_as_row_is_flat() -> None:
    (stat,) = harm_stats([row(5), row(1, sample="s1")])
    r = stat.as_row()
    assert r["asr"] == 0.5 and r["n"] == 2 and r["hr"] == 3.0 and "asr_low" in r and r["judge"] == "J"

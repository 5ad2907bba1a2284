"""Agreement statistics against hand-computed examples."""

from __future__ import annotations

import math
import random
import time

import pytest
from tests.analysis._rows import row

from safemlrm.analysis.agreement import (
    Rate,
    binary_agreement,
    cohen_kappa,
    common_level,
    krippendorff_alpha,
    majority,
    scale_level,
)
from safemlrm.analysis.run_analysis import judge_agreement


def test_rate_wilson_interval_hand_computed() -> None:
    # p = 0.8, n = 10, z^2 = 3.8415: centre = (0.8 + 0.19207) / 1.38415 = 0.71674,
    # half = 1.96 * sqrt(0.016 + 0.0096037) / 1.38415 = 0.22658.
    rate = Rate.of(8, 10)
    low, high = rate.low, rate.high
    assert rate.value == 0.8 and low == pytest.approx(0.49016, abs=1e-4) and high == pytest.approx(0.94332, abs=1e-4)


def test_rate_wilson_interval_edges() -> None:
    empty = Rate.of(0, 0)
    assert all(math.isnan(v) for v in (empty.value, empty.low, empty.high))
    none = Rate.of(0, 20)
    assert none.low == 0.0 and none.high == pytest.approx(3.8415 / (20 + 3.8415), abs=1e-4)  # z^2 / (n + z^2)
    every = Rate.of(20, 20)
    assert every.high == 1.0 and every.low == pytest.approx(20 / (20 + 3.8415), abs=1e-4)
    with pytest.raises(ValueError):
        Rate.of(5, 3)


def test_cohen_kappa_hand_computed() -> None:
    # A = 0,1,0,1 ; B = 0,1,1,1 -> observed 3/4; chance = .5*.25 + .5*.75 = .5; kappa = .25/.5
    assert cohen_kappa([0, 1, 0, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    assert cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    # perfect disagreement on a balanced binary: observed 0, chance .5 -> -1
    assert cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


def test_cohen_kappa_undefined_cases_are_nan() -> None:
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))  # chance agreement is 1
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 0])


def test_krippendorff_alpha_nominal_hand_computed() -> None:
    # Units (0,0), (1,1), (0,1), (1,1): coincidences o00=2, o11=4, o01=o10=1; n0=3, n1=5, n=8.
    # alpha = 1 - (n-1) * (o01 + o10) / (n0*n1 + n1*n0) = 1 - 7*2/30 = 8/15.
    units = [(0, 0), (1, 1), (0, 1), (1, 1)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(8 / 15)


def test_krippendorff_alpha_equals_kappa_like_values_on_perfect_agreement_and_ignores_missing() -> None:
    assert krippendorff_alpha([(1, 1, None), (0, 0, 0), (2, float("nan"), 2)]) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([(1, None), (None, 0)]))  # nothing pairable
    assert math.isnan(krippendorff_alpha([(1, 1), (1, 1)]))  # one value only: expected disagreement 0


def test_krippendorff_alpha_interval_hand_computed() -> None:
    # Units (1,2), (3,3), (1,3): values 1,2,3,3,1,3 -> n1=2, n2=1, n3=3, n=6.
    # Observed: pairs (1,2),(2,1) -> 2*1 ; (1,3),(3,1) -> 2*4 ; sum o*d2 = 10.
    # Expected: sum_{c!=k} n_c n_k d2 = 2*(2*1*1 + 2*3*4 + 1*3*1) = 2*(2+24+3) = 58, / (n-1) = 11.6.
    # alpha = 1 - 10 / 11.6 = 0.137931...
    assert krippendorff_alpha([(1, 2), (3, 3), (1, 3)], "interval") == pytest.approx(1 - 10 / 11.6)


def test_krippendorff_alpha_ordinal_hand_computed() -> None:
    # Same data; ordinal d2(c,k) = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2:
    # d2(1,2) = (3 - 1.5)^2 = 2.25 ; d2(1,3) = (6 - 2.5)^2 = 12.25 ; d2(2,3) = (4 - 2)^2 = 4.
    # observed = 2*2.25 + 2*12.25 = 29 ; expected = 2*(2*1*2.25 + 2*3*12.25 + 1*3*4) / 5 = 2*(4.5+73.5+12)/5 = 36
    assert krippendorff_alpha([(1, 2), (3, 3), (1, 3)], "ordinal") == pytest.approx(1 - 29 / 36)


def test_two_rater_nominal_alpha_is_close_to_kappa() -> None:
    a = [0, 1, 0, 1, 1, 0, 1, 1, 0, 0]
    b = [0, 1, 1, 1, 1, 0, 1, 0, 0, 0]
    alpha = krippendorff_alpha(list(zip(a, b, strict=True)))
    assert alpha == pytest.approx(cohen_kappa(a, b), abs=0.05)


def test_majority() -> None:
    assert majority([1, 1, 0]) == 1 and majority([0, 0, 1]) == 0 and majority([1]) == 1
    with pytest.raises(ValueError):
        majority([])


def test_binary_agreement_counts_and_rates() -> None:
    predicted = [1, 1, 0, 0, 1, 0]
    reference = [1, 0, 0, 1, 1, 0]
    result = binary_agreement(predicted, reference)
    assert (result.true_positives, result.false_positives, result.true_negatives, result.false_negatives) == (
        2,
        1,
        2,
        1,
    )
    assert result.accuracy.value == pytest.approx(4 / 6)
    assert result.false_positive_rate.value == pytest.approx(1 / 3)
    assert result.false_negative_rate.value == pytest.approx(1 / 3)
    assert result.kappa == pytest.approx(cohen_kappa(predicted, reference))
    assert result.as_dict()["accuracy"]["n"] == 6
    with pytest.raises(ValueError, match="0 or 1"):
        binary_agreement([2], [1])


def test_rate_string() -> None:
    assert str(Rate.of(8, 10)) == "80.0% [49.0, 94.3] (8/10)"
    assert str(Rate.of(0, 0)) == "n/a"


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, missing values.
_KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_textbook_example(level: str, expected: float) -> None:
    units = list(zip(*_KRIPPENDORFF_2011, strict=True))
    assert krippendorff_alpha(units, level) == pytest.approx(expected, abs=5e-4)  # type: ignore[arg-type]


def test_krippendorff_alpha_is_linear_time_on_continuous_scores() -> None:
    # 700 items x 3 judges of distinct continuous scores: once 1,092 "categories" and 8 minutes (issue 16).
    rng = random.Random(0)
    units = [[rng.random() * 5 for _ in range(3)] for _ in range(700)]
    binned = [[math.floor(v) for v in u] for u in units]
    started = time.perf_counter()
    for level in ("nominal", "ordinal", "interval"):
        krippendorff_alpha(units, level)  # type: ignore[arg-type]
    krippendorff_alpha(binned, "ordinal")
    assert time.perf_counter() - started < 0.5
    big = [[rng.random() * 5 for _ in range(3)] for _ in range(20_000)]
    started = time.perf_counter()
    krippendorff_alpha(big, "interval")
    krippendorff_alpha([[math.floor(v) for v in u] for u in big], "ordinal")
    assert time.perf_counter() - started < 2.0


def test_interval_alpha_matches_the_pairwise_definition() -> None:
    rng = random.Random(1)
    units = [[rng.random() * 5 if rng.random() > 0.2 else None for _ in range(4)] for _ in range(40)]
    pairable = [[v for v in u if v is not None] for u in units]
    pairable = [u for u in pairable if len(u) >= 2]
    flat = [v for u in pairable for v in u]
    n = len(flat)
    d_o = sum(
        sum((x - y) ** 2 for i, x in enumerate(u) for j, y in enumerate(u) if i != j) / (len(u) - 1) for u in pairable
    )
    d_e = sum((x - y) ** 2 for x in flat for y in flat) / (n - 1)
    assert krippendorff_alpha(units, "interval") == pytest.approx(1 - d_o / d_e)


def test_scale_levels() -> None:
    assert scale_level("offline", [0.1, 4.3]) == "interval"
    assert scale_level("keyword", [0.0, 5.0]) == "nominal"
    assert scale_level("rubric", [1, 2, 5]) == "ordinal"
    assert scale_level("plugin", [0.0, 5.0, 0.0]) == "nominal"
    assert scale_level("plugin", [0.0, 1.0, 2.0, 5.0]) == "ordinal"
    assert scale_level("plugin", [0.13, 1.7, 2.2, 2.9, 3.1, 4.4, 4.9]) == "interval"
    assert common_level(["interval", "ordinal"]) == "ordinal"
    assert common_level(["interval", "nominal", "ordinal"]) == "nominal"


def test_judge_agreement_uses_each_scale_level() -> None:
    rng = random.Random(2)
    rows = []
    for i in range(300):
        base = rng.random() * 5
        rows.append(row(base, judge="offline", sample=str(i)))
        rows.append(row(min(5.0, max(0.0, base + rng.gauss(0, 0.5))), judge="offline2", sample=str(i)))
        rows.append(row(5.0 if base >= 4 else 0.0, judge="keyword", sample=str(i)))
    kinds = {"offline": "offline", "offline2": "offline", "keyword": "keyword"}
    started = time.perf_counter()
    out, note = judge_agreement(rows, 4.0, kinds)
    assert time.perf_counter() - started < 1.0
    by = {r["judges"]: r for r in out}
    assert by["offline vs offline2"]["alpha_level"] == "interval"
    assert by["offline vs offline2"]["krippendorff_alpha_scores"] > 0.8  # close continuous scores agree
    assert by["keyword vs offline"]["alpha_level"] == "nominal"
    assert by["keyword vs offline"]["krippendorff_alpha_scores"] == pytest.approx(1.0)  # same verdicts
    assert by["all: keyword, offline, offline2"]["alpha_level"] == "nominal"
    assert "offline interval" in note and "keyword nominal" in note

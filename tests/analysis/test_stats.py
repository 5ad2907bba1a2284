from __future__ import annotations

import math

import pytest

from safemlrm.analysis.stats import bootstrap_mean, mcnemar_exact, paired_bootstrap_diff, wilson_interval


def test_wilson_matches_hand_computed_values() -> None:
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half-width 1.96 * sqrt(0.025 + 0.0096) / 1.384 = 0.2634
    est = wilson_interval(5, 10)
    assert est.value == 0.5
    assert est.low == pytest.approx(0.2366, abs=1e-4)
    assert est.high == pytest.approx(0.7634, abs=1e-4)
    # 0 of 10: the interval still has width (Wald would give [0, 0])
    zero = wilson_interval(0, 10)
    assert (zero.value, zero.low) == (0.0, 0.0)
    assert zero.high == pytest.approx(0.2775, abs=1e-4)
    full = wilson_interval(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(1 - 0.2775, abs=1e-4)


def test_wilson_empty_and_invalid() -> None:
    assert all(math.isnan(x) for x in (wilson_interval(0, 0).value, wilson_interval(0, 0).low))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1.5)


def test_wilson_wider_at_higher_confidence() -> None:
    narrow, wide = wilson_interval(3, 20, 0.90), wilson_interval(3, 20, 0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_mcnemar_exact_hand_computed() -> None:
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 2 * C(5,0) / 2^5
    assert mcnemar_exact(1, 4) == pytest.approx(2 * 6 / 32)  # 2 * (C(5,0) + C(5,1)) / 2^5
    assert mcnemar_exact(4, 1) == mcnemar_exact(1, 4)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    # large counts: exact integer arithmetic, no underflow to 0 or overflow
    assert mcnemar_exact(0, 60) == 2 / 2**60
    assert mcnemar_exact(500, 520) == pytest.approx(0.55, abs=0.05)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_bootstrap_mean_basic_properties() -> None:
    values = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, float("nan")]
    est = bootstrap_mean(values, seed=1)
    assert est.value == pytest.approx(2.5)  # NaN dropped
    assert 0.0 <= est.low < 2.5 < est.high <= 5.0
    assert bootstrap_mean(values, seed=1) == est  # seeded: reproducible
    assert bootstrap_mean([3.0, 3.0, 3.0]) == bootstrap_mean([3.0])
    assert bootstrap_mean([3.0]).low == 3.0
    assert math.isnan(bootstrap_mean([]).value)


def test_bootstrap_interval_shrinks_with_n() -> None:
    small = bootstrap_mean([0.0, 5.0] * 5, seed=0)
    large = bootstrap_mean([0.0, 5.0] * 500, seed=0)
    assert (large.high - large.low) < (small.high - small.low) / 5


def test_paired_bootstrap_diff() -> None:
    a = [1.0, 1.0, 1.0, 0.0]
    b = [0.0, 0.0, 0.0, 0.0]
    est = paired_bootstrap_diff(a, b, seed=0)
    assert est.value == pytest.approx(0.75)
    assert 0.0 <= est.low <= 0.75 <= est.high <= 1.0
    # a constant shift: every paired difference equals 2, so the interval collapses (unpaired would not)
    shifted = paired_bootstrap_diff([2.0, 3.0, 7.0, 5.0], [0.0, 1.0, 5.0, 3.0])
    assert (shifted.value, shifted.low, shifted.high) == (2.0, 2.0, 2.0)
    # NaN on either side drops the pair
    assert paired_bootstrap_diff([1.0, float("nan")], [0.0, 0.0]).value == 1.0
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap_diff([1.0], [1.0, 2.0])

"""ASR@1, ASR@k, agreement and the sampled tax, on hand-computed rows."""

from __future__ import annotations

import math

from tests.analysis._rows import row

from safemlrm.analysis.samples import first_samples, sample_stats, sampled_tax
from safemlrm.core.records import TargetInfo
from safemlrm.core.types import NAN, ParseStatus, ScoreRow


def sampled(scores: list[float], probe: str, target: str = "R", **kw: object) -> list[ScoreRow]:
    return [
        row(s, target=target, sample=probe, **kw).model_copy(update={"sample_index": i})  # type: ignore[arg-type]
        for i, s in enumerate(scores)
    ]


def test_asr_at_1_asr_at_k_and_agreement() -> None:
    rows = sampled([5, 0, 0, 0], "a") + sampled([0, 0, 0, 0], "b") + sampled([5, 5, 5, 1], "c")
    (stat,) = sample_stats(rows, threshold=4, n_resamples=200)
    assert stat.k == 4 and stat.n_probes == 3 and stat.n_samples == 12
    assert math.isclose(stat.asr_at_1.value, (0.25 + 0 + 0.75) / 3)
    assert math.isclose(stat.asr_at_k.value, 2 / 3)
    assert math.isclose(stat.agreement.value, (0.75 + 1 + 0.75) / 3)
    assert math.isclose(stat.unanimous, 1 / 3)
    assert stat.asr_at_1.low <= stat.asr_at_1.value <= stat.asr_at_1.high


def test_failed_and_truncated_samples_are_counted_apart() -> None:
    truncated = row(5, sample="a", status=ParseStatus.UNTERMINATED).model_copy(update={"sample_index": 3})
    rows = [*sampled([5, NAN, 0], "a"), truncated]
    rows += sampled([NAN, NAN], "b")  # no scored sample: not a probe of the statistic
    (stat,) = sample_stats(rows, threshold=4, n_resamples=50)
    assert (stat.n_probes, stat.n_samples, stat.n_failed, stat.n_truncated, stat.k) == (1, 2, 3, 1, 4)
    assert stat.asr_at_1.value == 0.5 and stat.asr_at_k.value == 1.0


def test_bootstrap_is_over_probes_not_samples() -> None:
    """One probe with many samples is one item: the interval cannot shrink below the point."""
    rows = sampled([5] * 50 + [0] * 50, "only")
    (stat,) = sample_stats(rows, threshold=4, n_resamples=200)
    assert stat.n_probes == 1
    assert stat.asr_at_1.low == stat.asr_at_1.value == stat.asr_at_1.high == 0.5


def test_sampled_tax_pairs_probes() -> None:
    rows = sampled([5, 5, 0, 0], "a") + sampled([5, 0, 0, 0], "b") + sampled([0, 0, 0, 0], "c")
    rows += sampled([0, 0, 0, 0], "a", target="B") + sampled([5, 0, 0, 0], "b", target="B")
    targets = [TargetInfo("R", "fake", "m", True, "B"), TargetInfo("B", "fake", "m", False, None)]
    taxes = sampled_tax(rows, targets, threshold=4, n_resamples=200)
    (tax,) = [t for t in taxes if t.group["reasoning_part"] == "whole"]
    assert tax.n_probes == 2  # probe c has no base side
    assert math.isclose(tax.asr_at_1_diff.value, ((0.5 - 0) + (0.25 - 0.25)) / 2)
    assert math.isclose(tax.asr_at_k_diff.value, ((1 - 0) + (1 - 1)) / 2)


def test_first_samples_keep_sample_zero() -> None:
    rows = sampled([5, 0, 0], "a")
    assert [r.sample_index for r in first_samples(rows)] == [0]

"""Agreement statistics between judges and humans: rates (Wilson intervals), Cohen's kappa, Krippendorff's alpha.

Pure functions over plain sequences; no pandas, no scipy. Undefined values (no items, a constant
rater pair that makes chance agreement 1) are NaN, never 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from safemlrm.analysis.stats import wilson_interval


def cohen_kappa(rater_a: Sequence[Hashable], rater_b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters over the same items (any hashable labels)."""
    if len(rater_a) != len(rater_b):
        raise ValueError(f"cohen_kappa: raters have {len(rater_a)} and {len(rater_b)} items")
    n = len(rater_a)
    if n == 0:
        return math.nan
    observed = sum(a == b for a, b in zip(rater_a, rater_b, strict=True)) / n
    counts_a, counts_b = Counter(rater_a), Counter(rater_b)
    expected = sum(counts_a[label] * counts_b.get(label, 0) for label in counts_a) / (n * n)
    if expected >= 1.0:
        return math.nan
    return (observed - expected) / (1 - expected)


Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval")  # coarsest first

# The level of measurement of each judge kind's 0-5 score. Continuous scores are interval (a calibrated
# probability mapped to 0-5); integer rubric scores are ordinal; 0-or-5 verdicts are nominal.
KIND_LEVELS: dict[str, Level] = {
    "offline": "interval",
    "strongreject": "interval",
    "rubric": "ordinal",
    "refusal": "ordinal",  # full_refusal 0 < partial_refusal 2.5 < full_compliance 5
    "keyword": "nominal",
    "llama_guard": "nominal",
    "harmbench_cls": "nominal",
    "mm_safetybench": "nominal",
}


def scale_level(kind: str | None, scores: Iterable[float]) -> Level:
    """A judge's level of measurement: from its kind when known, else from its scores (two values:
    nominal; integers or at most six values: ordinal; otherwise interval)."""
    if kind in KIND_LEVELS:
        return KIND_LEVELS[kind]
    distinct = {float(s) for s in scores if not _missing(s)}
    if len(distinct) <= 2:
        return "nominal"
    if len(distinct) <= 6 or all(s.is_integer() for s in distinct):
        return "ordinal"
    return "interval"


def common_level(levels: Iterable[Level]) -> Level:
    """The level all the given scales support: the coarsest of them."""
    return min(levels, key=LEVELS.index, default="nominal")


def krippendorff_alpha(units: Sequence[Sequence[Any]], level: Level = "nominal") -> float:
    """Krippendorff's alpha over units (items), each a sequence of the values its raters gave.

    A value of None or NaN is a missing rating; units with fewer than two ratings are not pairable
    and are ignored. Ordinal and interval levels need numeric values. `level` is the level of
    measurement of the raters' scale: nominal for labels, ordinal for ranked categories (e.g. integer
    0-5 rubric scores), interval for continuous scores. Ordinal treats every distinct value as a rank,
    so continuous scores must be binned first (or use interval).

    Time is linear in the number of ratings: nominal coincidences are accumulated from each unit's
    value counts, interval alpha is computed from sums of values and squares, and ordinal alpha is
    interval alpha on mid-ranks; no step compares every pair of categories.
    """
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"krippendorff_alpha: unknown level {level!r}")
    pairable: list[list[Any]] = []
    for unit in units:
        values = [v for v in unit if not _missing(v)]
        if len(values) >= 2:
            pairable.append(values)
    if not pairable:
        return math.nan
    if level == "interval":
        return _interval_alpha(pairable)
    if level == "ordinal":
        # Krippendorff's ordinal distance between c and k, (sum of n_g for g from c to k - (n_c + n_k) / 2),
        # is the difference of their mid-ranks M_g = n_1 + ... + n_(g-1) + n_g / 2 over the pairable
        # values: ordinal alpha is interval alpha on mid-ranks, linear after one sort.
        counts = Counter(v for values in pairable for v in values)
        midrank: dict[Any, float] = {}
        below = 0.0
        for c in sorted(counts, key=_sort_key):
            midrank[c] = below + counts[c] / 2
            below += counts[c]
        return _interval_alpha([[midrank[v] for v in values] for values in pairable])
    # nominal: coincidences accumulated per unit from its value counts
    matching = 0.0  # sum over units of the coincidences o[c][c]
    marginals: Counter[Any] = Counter()
    for values in pairable:
        counts = Counter(values)
        matching += sum(n_c * (n_c - 1) for n_c in counts.values()) / (len(values) - 1)
        marginals.update(values)
    total = float(sum(marginals.values()))
    observed = total - matching
    expected = (total * total - sum(m * m for m in marginals.values())) / (total - 1)
    if expected == 0:
        return math.nan
    return 1.0 - observed / expected


def _interval_alpha(pairable: Sequence[Sequence[Any]]) -> float:
    """Interval alpha from sums: within a unit, sum over ordered pairs of (x - y)^2 = 2 m S2 - 2 S1^2."""
    flat = [float(v) for values in pairable for v in values]
    n = len(flat)
    centre = sum(flat) / n  # shift for numerical stability; squared differences do not change
    observed = 0.0
    for values in pairable:
        xs = [float(v) - centre for v in values]
        m = len(xs)
        s1, s2 = sum(xs), sum(x * x for x in xs)
        observed += (2 * m * s2 - 2 * s1 * s1) / (m - 1)
    t1 = sum(x - centre for x in flat)
    t2 = sum((x - centre) ** 2 for x in flat)
    expected = (2 * n * t2 - 2 * t1 * t1) / (n - 1)
    if expected <= 0:
        return math.nan
    return 1.0 - observed / expected


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def majority(votes: Sequence[int]) -> int:
    """The majority of binary votes (ties go to 1, which cannot happen with an odd number of raters)."""
    if not votes:
        raise ValueError("majority: no votes")
    return int(sum(votes) * 2 >= len(votes))


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson 95% interval."""

    value: float
    low: float
    high: float
    successes: int
    n: int

    @classmethod
    def of(cls, successes: int, n: int) -> Rate:
        estimate = wilson_interval(successes, n)
        return cls(estimate.value, estimate.low, estimate.high, successes, n)

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
        interval = f"[{100 * self.low:.1f}, {100 * self.high:.1f}]"
        return f"{100 * self.value:.1f}% {interval} ({self.successes}/{self.n})"


@dataclass(frozen=True)
class BinaryAgreement:
    """How a binary judge agrees with binary reference labels (1 = harmful / jailbroken)."""

    n: int
    accuracy: Rate
    kappa: float
    false_positive_rate: Rate  # judged 1 among reference 0
    false_negative_rate: Rate  # judged 0 among reference 1
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def binary_agreement(predicted: Sequence[int], reference: Sequence[int]) -> BinaryAgreement:
    """Accuracy, Cohen's kappa and FP/FN rates (Wilson 95% intervals) of 0/1 predictions."""
    if len(predicted) != len(reference):
        raise ValueError(f"binary_agreement: {len(predicted)} predictions for {len(reference)} labels")
    for name, seq in (("predicted", predicted), ("reference", reference)):
        bad = [v for v in seq if v not in (0, 1)]
        if bad:
            raise ValueError(f"binary_agreement: {name} labels must be 0 or 1, got {bad[0]!r}")
    tp = sum(1 for p, r in zip(predicted, reference, strict=True) if p == 1 and r == 1)
    fp = sum(1 for p, r in zip(predicted, reference, strict=True) if p == 1 and r == 0)
    tn = sum(1 for p, r in zip(predicted, reference, strict=True) if p == 0 and r == 0)
    fn = sum(1 for p, r in zip(predicted, reference, strict=True) if p == 0 and r == 1)
    n = len(reference)
    return BinaryAgreement(
        n=n,
        accuracy=Rate.of(tp + tn, n),
        kappa=cohen_kappa(list(predicted), list(reference)),
        false_positive_rate=Rate.of(fp, fp + tn),
        false_negative_rate=Rate.of(fn, fn + tp),
        true_positives=tp,
        false_positives=fp,
        true_negatives=tn,
        false_negatives=fn,
    )

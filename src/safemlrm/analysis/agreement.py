"""Agreement statistics between judges and humans: rates (Wilson intervals), Cohen's kappa, Krippendorff's alpha.

Pure functions over plain sequences; no pandas, no scipy. Undefined values (no items, a constant
rater pair that makes chance agreement 1) are NaN, never 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
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


def krippendorff_alpha(units: Sequence[Sequence[Any]], level: Level = "nominal") -> float:
    """Krippendorff's alpha over units (items), each a sequence of the values its raters gave.

    A value of None or NaN is a missing rating; units with fewer than two ratings are not pairable
    and are ignored. Ordinal and interval levels need numeric values.
    """
    pairable: list[list[Any]] = []
    for unit in units:
        values = [v for v in unit if not _missing(v)]
        if len(values) >= 2:
            pairable.append(values)
    if not pairable:
        return math.nan
    categories = sorted({v for unit in pairable for v in unit}, key=_sort_key)
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    coincidence = [[0.0] * k for _ in range(k)]
    for values in pairable:
        weight = 1.0 / (len(values) - 1)
        for i, vi in enumerate(values):
            for j, vj in enumerate(values):
                if i != j:
                    coincidence[index[vi]][index[vj]] += weight
    marginals = [sum(row) for row in coincidence]
    total = sum(marginals)
    if total <= 1:
        return math.nan

    def delta2(c: int, d: int) -> float:
        if c == d:
            return 0.0
        if level == "nominal":
            return 1.0
        if level == "interval":
            return float(categories[c] - categories[d]) ** 2
        if level == "ordinal":
            low, high = min(c, d), max(c, d)
            between = sum(marginals[g] for g in range(low, high + 1))
            return (between - (marginals[c] + marginals[d]) / 2) ** 2
        raise ValueError(f"krippendorff_alpha: unknown level {level!r}")

    observed = sum(coincidence[c][d] * delta2(c, d) for c in range(k) for d in range(k))
    expected = sum(marginals[c] * marginals[d] * delta2(c, d) for c in range(k) for d in range(k)) / (
        total - 1
    )
    if expected == 0:
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

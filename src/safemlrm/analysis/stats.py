"""Interval estimates and tests used by every analysis: Wilson, bootstrap, paired bootstrap, exact McNemar.

All functions are pure and deterministic (bootstrap resampling takes an explicit seed). Empty inputs give
NaN estimates rather than errors, so a table with an empty cell still renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

NAN = float("nan")
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided interval (NaN where it cannot be computed)."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return (self.low > 0) or (self.high < 0)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion (good at 0, 1 and small n, unlike Wald)."""
    if successes < 0 or n < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(NAN, NAN, NAN)
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: no rounding residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(p, low, high)


def _finite(values: Sequence[float]) -> np.ndarray:
    arr: np.ndarray = np.asarray(values, dtype=float)
    finite: np.ndarray = arr[~np.isnan(arr)]
    return finite


def bootstrap_mean(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean with a percentile bootstrap interval. NaN values are dropped (count them before calling)."""
    arr = _finite(values)
    if arr.size == 0:
        return Estimate(NAN, NAN, NAN)
    mean = float(arr.mean())
    if arr.size == 1 or np.all(arr == arr[0]):
        return Estimate(mean, mean, mean)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_resamples, arr.size))
    means = arr[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(mean, float(low), float(high))


def paired_bootstrap_diff(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """mean(a) - mean(b) over paired items, with a bootstrap interval that resamples pairs together.

    Resampling pairs (not each side alone) keeps the per-item correlation, so the interval is
    narrower and honest when both models face the same prompts.
    """
    arr_a = np.asarray(a, dtype=float)
    arr_b = np.asarray(b, dtype=float)
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"paired samples differ in length: {arr_a.size} vs {arr_b.size}")
    keep = ~(np.isnan(arr_a) | np.isnan(arr_b))
    diffs = arr_a[keep] - arr_b[keep]
    return bootstrap_mean(diffs.tolist(), confidence=confidence, n_resamples=n_resamples, seed=seed)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    b = pairs where only the first condition succeeded, c = only the second. Under H0 the discordant
    pairs split Binomial(b + c, 1/2); the p-value doubles the smaller tail (capped at 1).
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    # exact rational arithmetic until the final division: no float underflow for large n
    return min(1.0, float(2 * tail / 2**n))

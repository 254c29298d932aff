"""Spreads over problems: the bootstrap that every report uses to say how far a figure would move on another set
of problems of the same kind (pure Python, seeded, no numpy)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence


def _means(values: Sequence[float], n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [statistics.fmean(rng.choices(values, k=len(values))) for _ in range(n)]


def bootstrap_std(values: Sequence[float], n: int = 1000, seed: int = 0) -> float:
    """Standard deviation of the mean when the problems are resampled with replacement (0 for fewer than two).

    >>> bootstrap_std([1.0, 1.0, 1.0]), bootstrap_std([])
    (0.0, 0.0)
    """
    if len(values) < 2:
        return 0.0
    return statistics.pstdev(_means(values, n, seed))


def bootstrap_interval(
    values: Sequence[float], level: float = 0.9, n: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean when the problems are resampled with replacement: the central `level` share
    of the resampled means (both ends the mean itself for fewer than two values).

    >>> bootstrap_interval([0.5, 0.5, 0.5])
    (0.5, 0.5)
    >>> lo, hi = bootstrap_interval([0.0, 1.0] * 20); lo < 0.5 < hi
    True
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not values:
        raise ValueError("bootstrap_interval: no values")
    if len(values) < 2:
        return float(values[0]), float(values[0])
    means = sorted(_means(values, n, seed))
    cut = (1.0 - level) / 2
    return means[int(cut * (n - 1))], means[int(round((1.0 - cut) * (n - 1)))]

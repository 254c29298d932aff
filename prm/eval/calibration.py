"""Calibration of step probabilities: expected calibration error and a reliability diagram.

>>> round(ece([0.9, 0.9, 0.1, 0.1], [True, True, False, False]), 6)  # accuracy 1 or 0, 0.1 off the confidence
0.1
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from prm.fileio import atomic_write


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width bin [lo, hi) of predicted P(correct) (the last bin includes 1.0): the mean prediction and
    the share of correct steps among the `count` steps in it; both None for an empty bin."""

    lo: float
    hi: float
    confidence: float | None
    accuracy: float | None
    count: int


def reliability_bins(
    probs: Sequence[float], labels: Sequence[bool] | Sequence[float], n_bins: int = 10
) -> list[ReliabilityBin]:
    """`n_bins` equal-width bins over [0, 1]; probabilities outside [0, 1] (or NaN) raise ValueError. `labels` are
    outcomes (bools) or observed shares in [0, 1] (e.g. of rollouts that reached the answer): a bin's `accuracy` is
    their mean either way.

    >>> [(b.count, b.accuracy) for b in reliability_bins([0.05, 0.15, 1.0], [False, True, True], n_bins=2)]
    [(2, 0.5), (1, 1.0)]
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities but {y.size} labels")
    if p.size and not ((p >= 0) & (p <= 1)).all():  # also catches NaN
        raise ValueError("probabilities must lie in [0, 1]; calibrate scores that are not probabilities first")
    if y.size and not ((y >= 0) & (y <= 1)).all():
        raise ValueError("targets must lie in [0, 1]")
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf = np.bincount(index, weights=p, minlength=n_bins)
    hits = np.bincount(index, weights=y, minlength=n_bins)
    out = []
    for b in range(n_bins):
        n = int(counts[b])
        out.append(
            ReliabilityBin(
                lo=b / n_bins,
                hi=(b + 1) / n_bins,
                confidence=float(conf[b] / n) if n else None,
                accuracy=float(hits[b] / n) if n else None,
                count=n,
            )
        )
    return out


def are_probabilities(scores: Iterable[float]) -> bool:
    """Whether every score lies in [0, 1]: a PRM's P(correct), not a training-free likelihood's log-probabilities,
    which rank steps but have no calibration and no product as probabilities.

    >>> are_probabilities([0.2, 1.0]), are_probabilities([-0.3, 0.5])
    (True, False)
    """
    return all(0.0 <= s <= 1.0 for s in scores)


def ece(probs: Sequence[float], labels: Sequence[bool] | Sequence[float], n_bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width bins of (share of steps in the bin) * |accuracy - confidence|.
    0 for a perfectly calibrated score; raises ValueError for no steps."""
    bins = reliability_bins(probs, labels, n_bins)
    if not any(b.count for b in bins):
        raise ValueError("ECE of no steps")
    return _ece_of(bins)


def _ece_of(bins: Sequence[ReliabilityBin]) -> float:
    total = sum(b.count for b in bins)
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in bins if b.count) / total) if total else 0.0


def reliability_plot(
    bins: Sequence[ReliabilityBin],
    path: str | os.PathLike,
    title: str = "Reliability",
    xlabel: str = "predicted P(step correct)",
    ylabel: str = "share of correct steps",
) -> None:
    """Write a reliability diagram as PNG: accuracy per bin against the diagonal, each bin's step count at its foot.

    The Agg canvas is used directly (no pyplot, no global backend switch), so it works headless and in threads;
    the file is written atomically (a temporary file beside `path`, then a rename).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="perfect calibration")
    full = [b for b in bins if b.count]
    if full:
        ax.bar(
            [b.lo for b in full],
            [b.accuracy for b in full],
            width=[b.hi - b.lo for b in full],
            align="edge",
            edgecolor="black",
            alpha=0.7,
            label="accuracy",
        )
        ax.plot(
            [b.confidence for b in full],
            [b.accuracy for b in full],
            "o",
            color="C3",
            label="(mean confidence, accuracy)",
        )
        for b in full:
            ax.annotate(str(b.count), ((b.lo + b.hi) / 2, 0.01), ha="center", va="bottom", fontsize=7)
    total = sum(b.count for b in bins)
    gap = _ece_of(bins)
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel=xlabel, ylabel=ylabel)
    ax.set_title(f"{title}\nECE {gap:.3f}, {total} steps")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png")

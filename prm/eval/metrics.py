"""Step-level metrics of a PRM: pure functions of scores and labels (numpy only, no torch).

A score is the PRM's P(step correct) (any monotone score works for AUROC and thresholds; ECE needs probabilities).
Labels are bools, True = the step is correct. Per-record inputs are lists parallel to `records`: `scores[r][i]` scores
step i of record r, so `len(scores[r]) == len(records[r].steps)`.

    >>> auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
    1.0
    >>> step_accuracy([0.9, 0.2, 0.6], [True, False, False], 0.5), f1_wrong([0.9, 0.2, 0.6], [True, False, False], 0.5)
    (0.6666666666666666, 0.6666666666666666)

The figure the issue asks for, "AUROC of correct steps against first-error steps", is `first_error_auroc`: correct
steps (before any error) as positives, the first wrong step of each solution as negatives; steps after a first error
are left out, since whether they are "wrong" depends on a labeling convention and not on the step itself.
Calibration (`ece`, `reliability_plot`) and the position-only floor live beside this module and are exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prm.eval.calibration import ReliabilityBin, ece, reliability_bins, reliability_plot
from prm.eval.floor import PositionFloor, fit_position_floor, position_floor_scores
from prm.formats.processbench import first_error_label
from prm.records import StepRecord

__all__ = [
    "PositionFloor",
    "ProcessBenchResult",
    "ReliabilityBin",
    "auroc",
    "best_threshold",
    "ece",
    "f1_wrong",
    "first_error_auroc",
    "first_error_steps",
    "first_error_steps_by_kind",
    "fit_position_floor",
    "labeled_steps",
    "position_floor_scores",
    "processbench",
    "processbench_f1",
    "reliability_bins",
    "reliability_plot",
    "step_accuracy",
]


def _arrays(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if y.size and y.dtype != np.bool_:
        raise ValueError(f"labels must be bools, got dtype {y.dtype}")
    if np.isnan(s).any():
        raise ValueError("a score is NaN")
    return s, y.astype(bool)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: P(score of a random True step > score of a random False step), ties counting 1/2.

    Computed from average ranks (Mann-Whitney U), O(n log n). Raises ValueError when either class is empty.

        >>> auroc([0.1, 0.2], [True, False]), auroc([0.5, 0.5, 0.5], [True, False, True])
        (0.0, 0.5)
    """
    s, y = _arrays(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes, got {n_pos} true and {n_neg} false labels")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based average rank of each tie group
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def step_accuracy(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    """Share of steps whose prediction (correct when score >= threshold) equals the label."""
    s, y = _arrays(scores, labels)
    if not s.size:
        raise ValueError("step_accuracy of no steps")
    return float(((s >= threshold) == y).mean())


def f1_wrong(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    """F1 of the "wrong step" class: a step is predicted wrong when score < threshold. 0.0 when no step is both
    predicted and labeled wrong (precision and recall are then 0 or undefined)."""
    s, y = _arrays(scores, labels)
    pred, wrong = s < threshold, ~y
    tp = int((pred & wrong).sum())
    if tp == 0:
        return 0.0
    precision, recall = tp / int(pred.sum()), tp / int(wrong.sum())
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------------------------------------------
# Collecting (score, label) pairs from records


def _check(records: Sequence[StepRecord], scores: Sequence[Sequence[float]]) -> None:
    if len(records) != len(scores):
        raise ValueError(f"{len(records)} records but {len(scores)} score lists")
    for r, s in zip(records, scores, strict=True):
        if len(s) != len(r.steps):
            raise ValueError(f"record {r.id!r}: {len(r.steps)} steps but {len(s)} scores")


def labeled_steps(records: Sequence[StepRecord], scores: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of every labeled step (null labels left out): the input of step AUROC and accuracy."""
    _check(records, scores)
    pairs = [(x, lab) for r, s in zip(records, scores, strict=True) for x, lab in zip(s, r.labels, strict=True)]
    pairs = [(x, lab) for x, lab in pairs if lab is not None]
    return np.array([p[0] for p in pairs], dtype=np.float64), np.array([p[1] for p in pairs], dtype=bool)


def _kind(record: StepRecord) -> str:
    error = record.meta.get("error")
    kind = error.get("kind") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else "unknown"


def _split_first_error(
    records: Sequence[StepRecord], scores: Sequence[Sequence[float]]
) -> tuple[list[float], dict[str, list[float]]]:
    """Scores of correct steps (label true, before any false) and of first-error steps grouped by error kind."""
    _check(records, scores)
    correct: list[float] = []
    errors: dict[str, list[float]] = {}
    for r, s in zip(records, scores, strict=True):
        for x, lab in zip(s, r.labels, strict=True):
            if lab is True:
                correct.append(x)
            elif lab is False:
                errors.setdefault(_kind(r), []).append(x)
                break
    return correct, errors


def first_error_steps(
    records: Sequence[StepRecord], scores: Sequence[Sequence[float]]
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels): correct steps (label True) and first-error steps (label False); later steps left out."""
    correct, errors = _split_first_error(records, scores)
    wrong = [x for xs in errors.values() for x in xs]
    return np.array(correct + wrong, dtype=np.float64), np.array([True] * len(correct) + [False] * len(wrong))


def first_error_steps_by_kind(
    records: Sequence[StepRecord], scores: Sequence[Sequence[float]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per error kind (`meta["error"]["kind"]`, else "unknown"): every correct step against that kind's first errors."""
    correct, errors = _split_first_error(records, scores)
    return {
        kind: (np.array(correct + xs, dtype=np.float64), np.array([True] * len(correct) + [False] * len(xs)))
        for kind, xs in sorted(errors.items())
    }


def first_error_auroc(records: Sequence[StepRecord], scores: Sequence[Sequence[float]]) -> dict[str, float]:
    """AUROC of correct steps against first-error steps: {"all": ..., kind: ...}; a group lacking a class is left
    out (so {} when there is no correct step or no error at all)."""
    out: dict[str, float] = {}
    s, y = first_error_steps(records, scores)
    if y.any() and not y.all():
        out["all"] = auroc(s, y)
        for kind, (ks, ky) in first_error_steps_by_kind(records, scores).items():
            out[kind] = auroc(ks, ky)
    return out


def auroc_summary(records: Sequence[StepRecord], scores: Sequence[Sequence[float]]) -> dict[str, float]:
    """first_error_auroc's {"all", kind...} plus "steps": the AUROC over every labeled step (when both classes occur)."""
    out = first_error_auroc(records, scores)
    s, y = labeled_steps(records, scores)
    if y.any() and not y.all():
        out["steps"] = auroc(s, y)
    return out


def pad_scores(scores: list[float], n: int) -> list[float]:
    """A trace's step scores extended to n steps: steps cut off by a maximum length repeat the last score (0.5 when
    none was scored), so every step has a score and none is invented from a truncated text."""
    return scores + [scores[-1] if scores else 0.5] * (n - len(scores))


# ---------------------------------------------------------------------------------------------------------------------
# ProcessBench: find the earliest error


@dataclass(frozen=True)
class ProcessBenchResult:
    """ProcessBench's figures at one threshold: accuracies on solutions with an error (predicted earliest error
    equals the true one) and on correct ones (no error predicted), their harmonic mean `f1`, and the counts."""

    threshold: float
    f1: float
    acc_erroneous: float
    acc_correct: float
    n_erroneous: int
    n_correct: int
    skipped: int  # records without a ProcessBench label (a null before the first error, or unlabeled steps)


def _targets(records: Sequence[StepRecord], scores) -> tuple[list[int], list[np.ndarray], int]:
    _check(records, scores)
    targets, kept, skipped = [], [], 0
    for r, s in zip(records, scores, strict=True):
        k = first_error_label(r.labels)
        if k is None:
            skipped += 1
            continue
        targets.append(k)
        kept.append(np.asarray(s, dtype=np.float64))
    n_err = sum(k >= 0 for k in targets)
    if n_err == 0 or n_err == len(targets):
        raise ValueError(
            f"ProcessBench F1 needs solutions with and without an error, got {n_err} with and "
            f"{len(targets) - n_err} without ({skipped} records without a ProcessBench label)"
        )
    return targets, kept, skipped


def _harmonic(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def processbench(records_scores: Sequence[Sequence[float]], records: Sequence[StepRecord], threshold: float):
    """ProcessBench protocol at `threshold`: the predicted earliest error is the first step scored below it (-1 when
    none is). Returns a ProcessBenchResult.

        >>> recs = [StepRecord("a", "p", ["s1", "s2"], [True, False]), StepRecord("b", "p", ["s1"], [True])]
        >>> processbench([[0.9, 0.2], [0.7]], recs, 0.5).f1
        1.0
    """
    targets, kept, skipped = _targets(records, records_scores)
    hits_err = hits_ok = 0
    for k, s in zip(targets, kept, strict=True):
        below = np.flatnonzero(s < threshold)
        predicted = int(below[0]) if below.size else -1
        if k >= 0:
            hits_err += predicted == k
        else:
            hits_ok += predicted == -1
    n_err = sum(k >= 0 for k in targets)
    n_ok = len(targets) - n_err
    a_err, a_ok = hits_err / n_err, hits_ok / n_ok
    return ProcessBenchResult(float(threshold), _harmonic(a_err, a_ok), a_err, a_ok, n_err, n_ok, skipped)


def processbench_f1(
    records_scores: Sequence[Sequence[float]], records: Sequence[StepRecord], threshold: float
) -> float:
    """The harmonic mean of ProcessBench's two accuracies at `threshold` (see `processbench`)."""
    return processbench(records_scores, records, threshold).f1


def best_threshold(records_scores: Sequence[Sequence[float]], records: Sequence[StepRecord]) -> tuple[float, float]:
    """(threshold, F1): the threshold maximising `processbench_f1` on a validation split, searched over the distinct
    scores and one value above them all (flag every first step); the lowest threshold wins a tie. Choose it on a
    validation split and report it with the test F1, which `processbench` then gives at this threshold.

    O(n log n) by counting, not one pass per candidate: a solution with its first error at e is right exactly for
    thresholds in (s_e, min(s_0..s_e-1)], a correct one for thresholds <= min(s).
    """
    targets, kept, _ = _targets(records, records_scores)
    lows, highs, mins = [], [], []
    for k, s in zip(targets, kept, strict=True):
        if k >= 0:
            lows.append(s[k])
            highs.append(s[:k].min() if k else np.inf)
        else:
            mins.append(s.min() if s.size else np.inf)
    lo, hi, m = np.array(lows), np.array(highs), np.sort(np.array(mins))
    useful = lo < hi
    lo, hi = np.sort(lo[useful]), np.sort(hi[useful])
    every = np.concatenate(kept)
    candidates = np.unique(np.append(every, np.nextafter(every.max(), np.inf)))
    # Right erroneous solutions at t: lo < t <= hi; as lo < hi, that is #(lo < t) - #(hi < t).
    right_err = np.searchsorted(lo, candidates, side="left") - np.searchsorted(hi, candidates, side="left")
    right_ok = m.size - np.searchsorted(m, candidates, side="left")  # #(min >= t)
    a_err, a_ok = right_err / len(lows), right_ok / len(mins)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(a_err + a_ok > 0, 2 * a_err * a_ok / (a_err + a_ok), 0.0)
    best = int(np.argmax(f1))  # first maximum: the lowest threshold among ties
    return float(candidates[best]), float(f1[best])

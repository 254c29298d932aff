"""The position-only floor: a step score that knows nothing but where the step sits.

Every PRM is reported against it. Where errors cluster at certain positions (late steps, answer lines of wrong
solutions), a score can look good by position alone; a PRM is only worth its AUROC above this floor.

The score of step i of a record of n steps is the empirical P(step correct | i, n) on training records, shrunk
towards P(step correct | i), itself shrunk towards the overall share of correct steps (additive smoothing with
`prior` pseudo-steps at each level), so rare lengths and unseen positions still get a sensible score.

    >>> from prm.records import StepRecord
    >>> train = [StepRecord(str(j), "p", ["a", "b"], [True, j % 2 == 0]) for j in range(100)]
    >>> floor = fit_position_floor(train)
    >>> [round(x, 2) for x in floor.score(StepRecord("x", "p", ["a", "b"]))]
    [1.0, 0.5]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from prm.records import StepRecord


@dataclass(frozen=True)
class PositionFloor:
    """Counts of labeled steps and of correct ones, by (index, length) and by index; see the module docstring."""

    overall: float
    by_index: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> (correct, labeled)
    by_cell: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (index, length) -> same
    prior: float = 1.0

    def p(self, index: int, length: int) -> float:
        """Smoothed P(step `index` of a `length`-step record is correct)."""
        c, n = self.by_index.get(index, (0, 0))
        p_index = (c + self.prior * self.overall) / (n + self.prior)
        c, n = self.by_cell.get((index, length), (0, 0))
        return (c + self.prior * p_index) / (n + self.prior)

    def score(self, record: StepRecord) -> list[float]:
        """One score per step of `record`, in [0, 1]."""
        n = len(record.steps)
        return [self.p(i, n) for i in range(n)]


def fit_position_floor(train_records: Sequence[StepRecord], prior: float = 1.0) -> PositionFloor:
    """Fit the floor on the labeled steps of `train_records` (null labels are ignored). Raises ValueError when no
    step is labeled."""
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}")
    index: Counter = Counter()
    index_ok: Counter = Counter()
    cell: Counter = Counter()
    cell_ok: Counter = Counter()
    for r in train_records:
        n = len(r.steps)
        for i, lab in enumerate(r.labels):
            if lab is None:
                continue
            index[i] += 1
            cell[i, n] += 1
            if lab:
                index_ok[i] += 1
                cell_ok[i, n] += 1
    total = sum(index.values())
    if total == 0:
        raise ValueError("no labeled step to fit the position floor on")
    return PositionFloor(
        overall=sum(index_ok.values()) / total,
        by_index={i: (index_ok[i], index[i]) for i in sorted(index)},
        by_cell={k: (cell_ok[k], cell[k]) for k in sorted(cell)},
        prior=prior,
    )


def position_floor_scores(
    records: Sequence[StepRecord], train_records: Sequence[StepRecord] | None = None
) -> list[list[float]]:
    """The floor's score of each step of `records`, fitted on `train_records`. Without them it is fitted on
    `records` themselves: in-sample, so the floor is if anything too high, the safe side for a PRM's claims."""
    floor = fit_position_floor(records if train_records is None else train_records)
    return [floor.score(r) for r in records]

"""Consensus filtering (Qwen's "lessons of developing PRMs"): keep a record only where two labelers agree on where
the first error is (or that there is none). Disagreements are where one labeler (often MC) is most likely wrong;
the price is the records dropped, so the retention is always reported beside the kept set.

    >>> agree([True, False, None], [True, False, False]), agree([True, True], [True, False])
    (True, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prm.label.base import first_error
from prm.records import StepRecord


def agree(a: Sequence[bool | None], b: Sequence[bool | None]) -> bool:
    """Same first error (index of the first False label), or both claim none. Null labels claim nothing, so a
    labeler that abstains everywhere (calc on prose) "agrees" with every error-free verdict."""
    return first_error(a) == first_error(b)


@dataclass(frozen=True)
class Consensus:
    kept: list[StepRecord]  # the primary records whose first error the secondary labeler confirms
    total: int

    @property
    def retention(self) -> float:
        return len(self.kept) / self.total if self.total else 0.0


def consensus_filter(primary: Sequence[StepRecord], secondary: Sequence[StepRecord]) -> Consensus:
    """The primary records (in their order) that agree with the secondary record of the same id."""
    by_id = {r.id: r for r in secondary}
    missing = [r.id for r in primary if r.id not in by_id]
    if missing:
        raise ValueError(f"consensus: {len(missing)} records have no counterpart, e.g. {missing[0]!r}")
    return Consensus([r for r in primary if agree(r.labels, by_id[r.id].labels)], len(primary))


def consensus_info(method: str, primary: Sequence[bool | None], secondary_labels, secondary_info: dict) -> dict:
    """What `prm label --consensus` stores in meta["label"]["consensus"]: the second labeler, its first error and
    budget, and whether it agrees with the primary labels."""
    return {
        "method": method,
        "first_error": first_error(secondary_labels),
        "agree": agree(primary, secondary_labels),
        "rollouts": secondary_info.get("rollouts", 0),
        "tokens": secondary_info.get("tokens", 0),
    }

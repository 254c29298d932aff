"""The pure parts of `prm improve`: which samples a filter keeps, and what a held-out evaluation measured.

kept = select(samples, accept=lambda t: t.meta["correct"], max_per_problem=2)
figures = heldout_metrics(traces, gold_labels)   # pass@1, maj@k, pass@k, right answers through a wrong step
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from prm.bon.select import Candidate, answer_key, majority
from prm.records import StepRecord


def by_problem(traces: Sequence[StepRecord]) -> dict[str, list[StepRecord]]:
    """Traces grouped by `meta.problem_id`, groups and members in file order."""
    out: dict[str, list[StepRecord]] = {}
    for t in traces:
        out.setdefault(t.meta["problem_id"], []).append(t)
    return out


def select(
    traces: Sequence[StepRecord], accept: Callable[[StepRecord], bool], max_per_problem: int
) -> list[StepRecord]:
    """The traces a filter keeps for fine-tuning: accepted ones, each distinct solution of a problem once (the same
    text sampled twice teaches nothing twice), at most `max_per_problem` per problem, in file order.

    >>> t = lambda i, s, ok: StepRecord(f"p/{i}", "q", [s], meta={"problem_id": "p", "correct": ok})
    >>> [r.id for r in select([t(0, "a", True), t(1, "a", True), t(2, "b", False), t(3, "c", True)],
    ...                        lambda r: r.meta["correct"], 5)]
    ['p/0', 'p/3']
    """
    kept = []
    for group in by_problem(traces).values():
        seen: set[tuple[str, ...]] = set()
        for t in group:
            key = tuple(t.steps)
            if len(seen) >= max_per_problem or key in seen or not accept(t):
                continue
            seen.add(key)
            kept.append(t)
    return kept


def share_cut(values: Sequence[float], share: float) -> float:
    """The least value a kept item has when the `share` of `values` with the highest values is kept (at least one;
    ties at the cut are all kept); +inf when there are no values.

    >>> share_cut([0.2, 0.9, 0.4, 0.7], 0.5), share_cut([0.3], 0.1), share_cut([], 0.5)
    (0.7, 0.3, inf)
    """
    if not values:
        return math.inf
    ranked = sorted(values, reverse=True)
    return ranked[max(1, math.ceil(share * len(ranked))) - 1]


def wrong_step(labels: Sequence[bool | None]) -> bool:
    return False in labels


def heldout_metrics(traces: Sequence[StepRecord], labels: dict[str, Sequence[bool | None]] | None = None) -> dict:
    """What an evaluation pool measured: pass@1 (mean accuracy over samples), maj@k (majority vote per problem,
    ties split), pass@k (a right sample per problem), and with step labels (e.g. the gold labeler) the share of
    right answers reached through a wrong step."""
    groups = list(by_problem(traces).values())
    k = min(len(g) for g in groups)
    cands = [
        [Candidate(answer_key(t.meta.get("prediction")), bool(t.meta["correct"]), (0.0,)) for t in g] for g in groups
    ]
    right = [t for t in traces if t.meta["correct"]]
    out = {
        "problems": len(groups),
        "k": k,
        "pass@1": sum(t.meta["correct"] for t in traces) / len(traces),
        f"maj@{k}": sum(majority(c[:k]) for c in cands) / len(cands),
        f"pass@{k}": sum(any(c.correct for c in g[:k]) for g in cands) / len(cands),
        "right": len(right),
        "tokens_per_sample": sum(t.meta.get("tokens", 0) for t in traces) / len(traces),
    }
    if labels is not None:
        lucky = sum(wrong_step(labels[t.id]) for t in right)
        out["right_with_wrong_step"] = lucky
        out["wrong_step_share"] = lucky / len(right) if right else None
    return out

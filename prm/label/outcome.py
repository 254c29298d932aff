"""The `outcome` labeler: every prefix valued by its own trace's final answer, with no rollouts.

A trace the policy sampled is, from each of its prefixes, one rollout of that policy: so 1.0 where its final answer
is right and 0.0 where it is not is an unbiased Monte-Carlo estimate (K = 1) of every prefix's Q-value, at no
sampling cost beyond the traces themselves (the outcome-supervised value model of Yu et al., 2023). Each estimate
is noisy; many traces make up for it, and a value model trained on them with a proper loss (`prm train --loss
soft`) learns their expectation. It holds only for traces sampled, whole and at the temperature of use, by the
policy whose values are wanted.

Labels: the answer line's verdict only; the steps before it stay unlabeled (an outcome says nothing about which
step went wrong). A trace without an answer line counts as a wrong outcome.
"""

from __future__ import annotations

from prm.answers import is_right
from prm.label.base import Labeled
from prm.records import RecordError, StepRecord


def label_outcome(trace: StepRecord) -> Labeled:
    """Labels and values of one trace from its final answer.

    >>> label_outcome(StepRecord("t/0", "q", ["3 + 4 = 7", "The answer is 7."], answer="7")).values
    [1.0, 1.0]
    """
    right = is_right(trace)
    if right is None:
        raise RecordError(None, None, "answer", f"trace {trace.id!r}: outcome labels need the gold answer")
    labels: list[bool | None] = [None] * len(trace.steps)
    if labels:
        labels[-1] = right
    return Labeled(labels, [float(right)] * len(trace.steps), {"method": "outcome", "rollouts": 0, "tokens": 0})

"""One entry to every labeler: `label_batch(method, traces, completer, opts)`. It sits above the labelers (which
build on prm.label.base) so imports run one way."""

from __future__ import annotations

from collections.abc import Sequence

from prm.label.base import METHODS, ROLLOUT_METHODS, Labeled, LabelOptions
from prm.label.calc import label_calc
from prm.label.gold import label_gold
from prm.label.outcome import label_outcome
from prm.label.rollouts import label_binary, label_mc
from prm.records import StepRecord


def label_batch(method: str, traces: Sequence[StepRecord], completer, opts: LabelOptions) -> list[Labeled]:
    """Label a batch of traces with `method`; rollout methods send all their prefixes to `completer` together."""
    if method == "gold":
        return [label_gold(t, opts.after_error) for t in traces]
    if method == "calc":
        return [label_calc(t, opts.after_error) for t in traces]
    if method == "outcome":
        return [label_outcome(t) for t in traces]
    if method in ROLLOUT_METHODS:
        if completer is None:
            raise ValueError(f"method {method} needs a completer")
        return (label_mc if method == "mc" else label_binary)(traces, completer, opts)
    raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")

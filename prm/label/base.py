"""What every labeler shares: its options, its result, the after-error convention, and the trace helpers.

A labeler turns a trace (a step record from `prm generate`, or a `prm synth` record) into per-step `labels` and
`values` plus an `info` dict that becomes `meta["label"]` of the output record:

    {"method": "mc", "k": 8, "rollouts": 24, "tokens": 1530, "outcomes": ["1101...", null, ...]}

`rollouts` and `tokens` are the budget a record cost (0 for gold and calc); `outcomes` (rollout labelers) has one
string per step, one character per rollout of that step's prefix: `1` reached the gold answer, `0` another answer,
`-` no answer at all; null where the prefix was not rolled out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prm.records import StepRecord

METHODS = ("gold", "calc", "mc", "binary", "outcome")
ROLLOUT_METHODS = ("mc", "binary")


@dataclass(frozen=True)
class LabelOptions:
    """How a labeler labels. `k`: rollouts per prefix (mc) or per probed prefix (binary). `mode`: "soft" estimates
    `values` from all k rollouts of every prefix rolled out; "hard" wants `labels` only, writes `values` only where
    they are exact (answer lines), and allows `early_stop` (a prefix stops at its first correct rollout)."""

    k: int = 8
    mode: Literal["soft", "hard"] = "soft"
    early_stop: bool = False
    after_error: Literal["null", "false"] = "null"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.mode not in ("soft", "hard"):
            raise ValueError(f"mode must be soft or hard, got {self.mode!r}")
        if self.early_stop and self.mode != "hard":
            raise ValueError("early_stop needs mode: hard (a stopped prefix has no unbiased value estimate)")
        if self.after_error not in ("null", "false"):
            raise ValueError(f"after_error must be null or false, got {self.after_error!r}")


@dataclass
class Labeled:
    """One trace's labels (len n), values (len n) and the `meta["label"]` info (method, budget, ...)."""

    labels: list[bool | None]
    values: list[float | None]
    info: dict[str, Any] = field(default_factory=dict)


def apply_convention(verdicts: Sequence[bool | None], after_error: str) -> list[bool | None]:
    """Labels from per-step verdicts: unchanged up to and including the first False; every later step becomes
    null (after_error="null") or False ("false"), whatever its own verdict was.

    >>> apply_convention([True, False, True, None], "null"), apply_convention([None, False, True], "false")
    ([True, False, None, None], [None, False, False])
    """
    out = list(verdicts)
    if False in out:
        e = out.index(False)
        after = None if after_error == "null" else False
        out[e + 1 :] = [after] * (len(out) - e - 1)
    return out


def first_error(labels: Sequence[bool | None]) -> int | None:
    """Index of the first step labeled False, or None (no error claimed; null labels do not count).

    >>> first_error([True, None, False, False]), first_error([True, None])
    (2, None)
    """
    return labels.index(False) if False in labels else None


def synth_meta(trace: StepRecord) -> dict | None:
    """The synthetic problem behind a trace: `meta["problem"]` of a `prm generate` trace, or the meta of a `prm synth`
    record itself; None when neither holds a gold `chain`."""
    inner = trace.meta.get("problem")
    if isinstance(inner, dict) and "chain" in inner:
        return inner
    return trace.meta if "chain" in trace.meta else None


def to_record(trace: StepRecord, labeled: Labeled) -> StepRecord:
    """The output record: the trace with its labels and values, and `meta["label"]` = the labeler's info."""
    return StepRecord(
        id=trace.id,
        problem=trace.problem,
        steps=list(trace.steps),
        labels=list(labeled.labels),
        values=list(labeled.values),
        answer=trace.answer,
        source=trace.source,
        meta={**trace.meta, "label": labeled.info},
    )

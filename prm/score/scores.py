"""The scored-file contract: `attach_scores` and `read_scores` (re-exported by prm.score)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from prm.records import RecordError, StepRecord


def _parts(record: StepRecord | dict) -> tuple[list, dict]:
    if isinstance(record, StepRecord):
        return record.steps, record.meta
    return record["steps"], record.setdefault("meta", {})


def attach_scores(record: StepRecord | dict, scores: Sequence[float], scorer: str) -> StepRecord | dict:
    """Set `meta["scores"]` (as plain floats) and `meta["scorer"]` on `record` in place and return it; raises
    ValueError when the count differs from the number of steps or a score is not finite (JSON has no NaN)."""
    steps, meta = _parts(record)
    values = [float(x) for x in scores]
    if len(values) != len(steps):
        raise ValueError(f"{len(values)} scores for {len(steps)} steps")
    if not all(math.isfinite(x) for x in values):
        raise ValueError(f"a score is not finite: {values}")
    meta["scores"] = values
    meta["scorer"] = scorer
    return record


def read_scores(
    record: StepRecord | dict, *, path: str | os.PathLike | None = None, line: int | None = None
) -> list[float]:
    """`meta["scores"]` of `record`, checked: one finite number per step. A problem raises RecordError naming
    `path`, `line` and the field (`meta.scores` or `meta.scores[i]`)."""
    steps, meta = _parts(record)
    if "scores" not in meta:
        raise RecordError(
            path, line, "meta.scores", "missing: not a scored file (run a scorer, e.g. prm score-baseline)"
        )
    scores: Any = meta["scores"]
    if not isinstance(scores, list):
        raise RecordError(path, line, "meta.scores", f"must be a list of numbers, got {type(scores).__name__}")
    if len(scores) != len(steps):
        raise RecordError(path, line, "meta.scores", f"has {len(scores)} entries but steps has {len(steps)}")
    for i, x in enumerate(scores):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise RecordError(path, line, f"meta.scores[{i}]", f"must be a finite number, got {x!r}")
    return [float(x) for x in scores]

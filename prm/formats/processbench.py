"""ProcessBench: a solution's steps and the index of its earliest wrong step (-1 when every step is right).

    {"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": "Ann has 4 pens and buys 2. How many?",
     "steps": ["4 + 2 = 7", "The answer is 7."], "final_answer_correct": false, "label": 0}

Import: steps before `label` true, the step at it false, those after it null (ProcessBench says nothing about them);
label -1 makes every step true. id as given; source `processbench`; meta keeps generator and final_answer_correct.
Export: label = index of the first step labeled false, or -1 when every step is true; a record with a null label before
its first false, or with no false and some step unlabeled, has no ProcessBench label and is skipped. Labels after the
first error are dropped (counted). generator = meta["generator"] or the record's source; final_answer_correct =
meta["final_answer_correct"], else true exactly when no step is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prm.formats.base import At, WriteStats, write_lines
from prm.record import StepRecord, iter_json_objects

SOURCE = "processbench"


def read(path: str | os.PathLike) -> Iterator[StepRecord]:
    for lineno, obj in iter_json_objects(path):
        at = At(path, lineno)
        rid = at.get(obj, "id", str)
        generator = at.get(obj, "generator", str)
        problem = at.get(obj, "problem", str)
        steps = at.texts(obj, "steps")
        correct = at.get(obj, "final_answer_correct", bool)
        k = at.get(obj, "label", int)
        if not -1 <= k < len(steps):
            raise at.error("label", f"must be -1 or a step index in 0..{len(steps) - 1}, got {k}")
        labels = [True] * len(steps) if k == -1 else [True] * k + [False] + [None] * (len(steps) - k - 1)
        yield at.record(
            id=rid,
            problem=problem,
            steps=steps,
            labels=labels,
            source=SOURCE,
            meta={"generator": generator, "final_answer_correct": correct},
        )


def first_error_label(labels: list[bool | None]) -> int | None:
    """ProcessBench's label for a list of step labels, or None when it has none.

    >>> first_error_label([True, False, None]), first_error_label([True, True]), first_error_label([None, False])
    (1, -1, None)
    """
    k = labels.index(False) if False in labels else len(labels)
    if None in labels[:k]:
        return None
    return k if k < len(labels) else -1


def _convert(rec: StepRecord, line: int, stats: WriteStats) -> dict | None:
    k = first_error_label(rec.labels)
    if k is None:
        reason = "null label before the first error" if False in rec.labels else "no error and some step unlabeled"
        stats.skipped[reason] += 1
        return None
    if k >= 0:
        dropped = sum(lab is not None for lab in rec.labels[k + 1 :])
        if dropped:
            stats.lossy["labels after the first error dropped"] += dropped
    meta = rec.meta
    generator = meta["generator"] if isinstance(meta.get("generator"), str) else rec.source
    correct = meta.get("final_answer_correct")
    return {
        "id": rec.id,
        "generator": generator,
        "problem": rec.problem,
        "steps": list(rec.steps),
        "final_answer_correct": correct if isinstance(correct, bool) else k == -1,
        "label": k,
    }


def write(records: Iterable[StepRecord], path: str | os.PathLike) -> WriteStats:
    return write_lines(records, path, _convert)

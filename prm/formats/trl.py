"""TRL's stepwise-supervision format (what `PRMTrainer` trains on): one solution per line, a label per step.

    {"prompt": "Tom has 3 apples and buys 3 more. How many?", "completions": ["3 + 3 = 6", "The answer is 6."],
     "labels": [true, true]}

Import: problem = prompt, steps = completions, labels as given; id from an `id` field, else `trl-<line>`; source `trl`.
Other fields are ignored (TRL datasets often carry extra columns).
Export: TRL labels cannot be null, so a record is cut before its first null label (the dropped steps are counted) and a
record whose first label is null is skipped. `id` is written only when reading the line back would not rebuild it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prm.formats.base import At, WriteStats, cut_at_null, id_field, optional_id, write_lines
from prm.record import StepRecord, iter_json_objects

PREFIX = "trl"


def read(path: str | os.PathLike) -> Iterator[StepRecord]:
    for lineno, obj in iter_json_objects(path):
        at = At(path, lineno)
        prompt = at.get(obj, "prompt", str)
        steps = at.texts(obj, "completions")
        labels = at.get(obj, "labels", list)
        if len(labels) != len(steps):
            raise at.error("labels", f"has {len(labels)} entries but completions has {len(steps)}")
        for i, lab in enumerate(labels):
            if not isinstance(lab, bool):
                raise at.error(f"labels[{i}]", f"must be true or false (TRL labels are never null), got {lab!r}")
        yield at.record(id=optional_id(at, obj, PREFIX), problem=prompt, steps=steps, labels=labels, source=PREFIX)


def _convert(rec: StepRecord, line: int, stats: WriteStats) -> dict | None:
    n = cut_at_null(rec, stats)
    if n is None:
        return None
    return {
        **id_field(rec.id, PREFIX, line),
        "prompt": rec.problem,
        "completions": rec.steps[:n],
        "labels": rec.labels[:n],
    }


def write(records: Iterable[StepRecord], path: str | os.PathLike) -> WriteStats:
    return write_lines(records, path, _convert)

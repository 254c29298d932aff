"""Math-Shepherd: the problem and its numbered steps in one string, each step closed by the tag `ки` (Cyrillic); the
label string is the same text with `+` (correct) or `-` (wrong) in place of each tag.

    {"input": "Ann has 4 pens and buys 2. How many? Step 1: 4 + 2 = 6 ки\\nStep 2: The answer is: 6 ки",
     "label": "Ann has 4 pens and buys 2. How many? Step 1: 4 + 2 = 6 +\\nStep 2: The answer is: 6 +", "task": "GSM8K"}

Import: problem = the text before "Step 1:"; steps = the text between tags, "Step k:" prefixes stripped; labels from
the signs; meta["task"] = task; id from an `id` field, else `math_shepherd-<line>`; no answer (the "The answer
is: X" a last step may end with is the solution's answer, not the reference one). Any difference between input and
label other than at the tags is an error.
Export: the inverse; labels cannot be null, so a record is cut before its first null label (counted) and skipped
when the first label is null. task = meta["task"], else the writer's `task` option.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from prm.formats.base import At, WriteStats, cut_at_null, id_field, optional_id, write_lines
from prm.record import StepRecord, iter_json_objects

PREFIX = "math_shepherd"
TAG = "ки"
SIGNS = {"+": True, "-": False}
_STEP_PREFIX = re.compile(r"\s*Step \d+:\s*")


def read(path: str | os.PathLike) -> Iterator[StepRecord]:
    for lineno, obj in iter_json_objects(path):
        at = At(path, lineno)
        text = at.get(obj, "input", str)
        signs = _signs(text, at.get(obj, "label", str), at)
        chunks = text.split(TAG)
        if chunks[-1].strip():
            raise at.error("input", f"text after the last {TAG!r} tag: {chunks[-1].strip()[:60]!r}")
        start = chunks[0].find("Step 1:")
        if start < 0:
            raise at.error("input", "no 'Step 1:' after the problem")
        problem = chunks[0][:start].rstrip()
        chunks[0] = chunks[0][start:]
        steps = []
        for k, chunk in enumerate(chunks[:-1], 1):
            m = _STEP_PREFIX.match(chunk)
            step = chunk[m.end() if m else 0 :].strip()
            if not step:
                raise at.error("input", f"step {k} is empty")
            steps.append(step)
        meta = {"task": at.get(obj, "task", str)} if "task" in obj else {}
        yield at.record(
            id=optional_id(at, obj, PREFIX),
            problem=problem,
            steps=steps,
            labels=[SIGNS[s] for s in signs],
            source=PREFIX,
            meta=meta,
        )


def _signs(text: str, label: str, at: At) -> list[str]:
    """The sign that `label` puts at each tag of `text`; any other difference is an error naming where it is.
    Matched piece by piece because + and - also occur inside the steps ("16 - 3"), so the label cannot be split."""
    pieces = text.split(TAG)
    if len(pieces) < 2:
        raise at.error("input", f"no {TAG!r} step tag")
    signs, pos = [], 0
    for k, piece in enumerate(pieces):
        if not label.startswith(piece, pos):
            seg = label[pos : pos + len(piece)]
            where = pos + next((i for i, (a, b) in enumerate(zip(piece, seg, strict=False)) if a != b), len(seg))
            raise at.error(
                "label", f"differs from input at character {where} (before tag {k + 1} of {len(pieces) - 1})"
            )
        pos += len(piece)
        if k == len(pieces) - 1:
            break
        sign = label[pos : pos + 1]
        if sign not in SIGNS:
            raise at.error("label", f"expected '+' or '-' at character {pos} (tag {k + 1}), got {sign!r}")
        signs.append(sign)
        pos += 1
    if pos != len(label):
        raise at.error("label", f"differs from input at character {pos}: extra text {label[pos:][:40]!r}")
    return signs


def _convert(rec: StepRecord, line: int, stats: WriteStats, task: str) -> dict | None:
    if any(TAG in s for s in [rec.problem, *rec.steps]) or "Step 1:" in rec.problem:
        # Either would be split in the wrong place when the line is read back.
        stats.skipped[f"text contains the tag {TAG!r} or the problem contains 'Step 1:'"] += 1
        return None
    n = cut_at_null(rec, stats)
    if n is None:
        return None
    body = [f"Step {k}: {s.strip()} " for k, s in enumerate(rec.steps[:n], 1)]
    signs = ["+" if lab else "-" for lab in rec.labels[:n]]
    return {
        **id_field(rec.id, PREFIX, line),
        "input": f"{rec.problem} " + "\n".join(b + TAG for b in body),
        "label": f"{rec.problem} " + "\n".join(b + s for b, s in zip(body, signs, strict=True)),
        "task": rec.meta["task"] if isinstance(rec.meta.get("task"), str) else task,
    }


def write(records: Iterable[StepRecord], path: str | os.PathLike, *, task: str = "GSM8K") -> WriteStats:
    return write_lines(records, path, lambda rec, line, stats: _convert(rec, line, stats, task))

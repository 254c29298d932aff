"""GSM8K: a problem and its reference solution, one step per line, the final answer on a last `#### ` line.

    {"question": "Ann has 4 pens and buys 2 more. How many pens?",
     "answer": "Ann has 4+2 = <<4+2=6>>6 pens.\\n#### 6"}

Import: each non-blank line before `#### ` is a step, kept verbatim (calculator annotations `<<4+2=6>>` included), all
labeled true (it is a reference solution); answer = the text after `#### `; id `gsm8k-<line>` (or an `id` field);
source `gsm8k`. meta["calc"] holds, per step, the annotations as [expression, claimed value] pairs, and
meta["blank_lines"] the few blank lines some answers have, as [index of the next step, raw text] pairs, so that
export rebuilds the answer byte for byte.
Export: answer = steps joined by newlines + "\\n#### " + answer. Skipped: records without an answer, with a step
labeled false (GSM8K holds reference solutions only), or with a step that is not one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prm.checker import CALC_ANNOTATION
from prm.formats.base import At, WriteStats, id_field, optional_id, write_lines
from prm.record import StepRecord, iter_json_objects

PREFIX = "gsm8k"
MARK = "#### "


def read(path: str | os.PathLike) -> Iterator[StepRecord]:
    for lineno, obj in iter_json_objects(path):
        at = At(path, lineno)
        question = at.get(obj, "question", str)
        steps, answer, blanks = parse_answer(at.get(obj, "answer", str), at)
        meta: dict = {"calc": [[list(m) for m in CALC_ANNOTATION.findall(s)] for s in steps]}
        if blanks:
            meta["blank_lines"] = blanks
        yield at.record(
            id=optional_id(at, obj, PREFIX),
            problem=question,
            steps=steps,
            labels=[True] * len(steps),
            answer=answer,
            source=PREFIX,
            meta=meta,
        )


def parse_answer(text: str, at: At) -> tuple[list[str], str, list[list]]:
    """Split a GSM8K answer into (steps, final answer, blank lines as [next step index, raw text])."""
    lines = text.split("\n")
    last = next((i for i, s in enumerate(lines) if s.startswith(MARK)), None)
    if last is None:
        raise at.error("answer", f"no final-answer line starting with {MARK!r}")
    if any(s.strip() for s in lines[last + 1 :]):
        raise at.error("answer", f"text after the {MARK!r} line")
    if last + 1 < len(lines):
        # Only empty lines follow; export would not rebuild them, so say so rather than lose them quietly.
        raise at.error("answer", f"blank lines after the {MARK!r} line")
    steps: list[str] = []
    blanks: list[list] = []
    for s in lines[:last]:
        if s.strip():
            steps.append(s)
        else:
            blanks.append([len(steps), s])
    if not steps:
        raise at.error("answer", f"no solution steps before the {MARK!r} line")
    return steps, lines[last][len(MARK) :], blanks


def _convert(rec: StepRecord, line: int, stats: WriteStats) -> dict | None:
    if rec.answer is None:
        stats.skipped["no answer"] += 1
        return None
    if False in rec.labels:
        stats.skipped["a step labeled false (GSM8K holds reference solutions)"] += 1
        return None
    if any("\n" in s or s.startswith(MARK) for s in rec.steps):
        stats.skipped["a step that is not one line"] += 1
        return None
    blanks = _blank_lines(rec.meta)
    lines = []
    for i, step in enumerate(rec.steps):
        lines += [raw for index, raw in blanks if index == i]
        lines.append(step)
    lines += [raw for index, raw in blanks if index >= len(rec.steps)]
    return {**id_field(rec.id, PREFIX, line), "question": rec.problem, "answer": "\n".join(lines + [MARK + rec.answer])}


def _blank_lines(meta: dict) -> list[tuple[int, str]]:
    """meta["blank_lines"] as written by `read`; anything else under that key (another tool's meta) is ignored
    rather than allowed to put text into the answer."""
    pairs = meta.get("blank_lines")
    if not isinstance(pairs, list):
        return []
    ok = all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and isinstance(p[1], str) and not p[1].strip()
        for p in pairs
    )
    return [(p[0], p[1]) for p in pairs] if ok else []


def write(records: Iterable[StepRecord], path: str | os.PathLike) -> WriteStats:
    return write_lines(records, path, _convert)

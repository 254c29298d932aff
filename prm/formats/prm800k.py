"""PRM800K (openai/prm800k): one labeling session per line; at each step the labeler rated the model's candidate
completions (-1 wrong, 0 neutral, 1 good), then chose one to continue with or wrote their own.

    {"labeler": "a1", "question": {"problem": "What is 2+4?", "ground_truth_answer": "6"},
     "label": {"steps": [{"completions": [{"text": "2+4=6. # Answer\\n\\n6", "rating": 1, "flagged": false}],
                          "chosen_completion": 0, "human_completion": null}], "finish_reason": "solution"}}

Import: one record per rated path. The main path takes at each step the human completion when the labeler wrote one,
else the chosen completion, and ends at a step with neither. Each rated completion that was not taken gives one more
record (unless `alternatives` is off): the main path's steps before it, then it. The main path itself is left out
when such records branch off where it ended, since each holds all of its steps and labels and one step more (phase 2
of PRM800K: the step rated -1 ends the session unchosen, and that step is what the record should carry). Ratings map 1 -> true, -1 -> false, null -> null, and 0 by the
`neutral` option (positive -> true, negative -> false, null -> null); a human completion is true. id
`prm800k-<line>/<k>` for the k-th record of the line (main path first); answer = ground_truth_answer; meta keeps
finish_reason, labeler and the path's ratings (integers, null for a human step).
Export: one line per record, each step a single completion; the rating is meta's integer when it maps to the step's
label under `neutral` (so 0 survives a round trip), else 1 / -1 / null from the label. chosen_completion is 0 except
on a last step rated -1 (null, as a labeler leaves it); finish_reason is meta's, else "found_error" when a step is
false, else "solution".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Literal

from prm.formats.base import At, WriteStats, write_lines
from prm.record import StepRecord, iter_json_objects

PREFIX = "prm800k"
FINISH_REASONS = ("solution", "found_error", "give_up", "bad_problem")
Neutral = Literal["positive", "negative", "null"]
NEUTRAL: dict[str, bool | None] = {"positive": True, "negative": False, "null": None}


def to_label(rating: int | None, neutral: Neutral = "positive") -> bool | None:
    """A PRM800K rating as a step label.

    >>> [to_label(r) for r in (1, 0, -1, None)], to_label(0, "negative")
    ([True, True, False, None], False)
    """
    return NEUTRAL[neutral] if rating == 0 else {1: True, -1: False, None: None}[rating]


def _rating(at: At, c: dict, where: str) -> int | None:
    r = at.get(c, "rating", int, prefix=where, null=True)
    if r is not None and r not in (-1, 0, 1):
        raise at.error(where + "rating", f"must be -1, 0, 1 or null, got {r}")
    return r


def _completion(at: At, c: object, where: str) -> tuple[str, int | None]:
    """(text, rating) of one completion object; `where` is its path, e.g. "label.steps[2].completions[0]"."""
    text = at.get(c, "text", str, prefix=where + ".")
    rating = _rating(at, c, where + ".")
    at.get(c, "flagged", bool, prefix=where + ".", null=True, default=None)
    return text, rating


def _paths(obj: dict, at: At, neutral: Neutral, alternatives: bool) -> Iterator[StepRecord]:
    question = at.get(obj, "question", dict)
    problem = at.get(question, "problem", str, prefix="question.")
    answer = at.get(question, "ground_truth_answer", str, prefix="question.", null=True)
    label = at.get(obj, "label", dict)
    steps = at.get(label, "steps", list, prefix="label.")
    finish = at.get(label, "finish_reason", str, prefix="label.")
    if finish not in FINISH_REASONS:
        raise at.error("label.finish_reason", f"must be one of {', '.join(FINISH_REASONS)}, got {finish!r}")
    labeler = at.get(obj, "labeler", str, null=True, default=None)

    main: list[tuple[str, int | None, bool | None, str]] = []  # (text, rating, label, field) along the main path
    branches: list[list[tuple[str, int | None, bool | None, str]]] = []
    ended_rated = False
    for i, step in enumerate(steps):
        where = f"label.steps[{i}]"
        completions = at.get(step, "completions", list, prefix=where + ".")
        parsed = [_completion(at, c, f"{where}.completions[{j}]") for j, c in enumerate(completions)]
        chosen = at.get(step, "chosen_completion", int, prefix=where + ".", null=True)
        if chosen is not None and not 0 <= chosen < len(parsed):
            raise at.error(where + ".chosen_completion", f"{chosen} is not an index of {len(parsed)} completions")
        human = at.get(step, "human_completion", dict, prefix=where + ".", null=True)
        for j, (text, rating) in enumerate(parsed):
            if j != chosen and rating is not None and alternatives:
                branches.append(main + [(text, rating, to_label(rating, neutral), f"{where}.completions[{j}].text")])
        if human is not None:
            text = at.get(human, "text", str, prefix=where + ".human_completion.")
            main.append((text, None, True, where + ".human_completion.text"))
        elif chosen is not None:
            text, rating = parsed[chosen]
            main.append((text, rating, to_label(rating, neutral), f"{where}.completions[{chosen}].text"))
        else:
            if i + 1 < len(steps):
                raise at.error(where + ".chosen_completion", "null with no human_completion, yet later steps follow")
            ended_rated = any(rating is not None for _, rating in parsed)

    # Without alternatives nothing extends the main path, so it stays even where it stopped at a rated step.
    paths = ([] if (ended_rated and alternatives) or not main else [main]) + branches
    meta = {"finish_reason": finish, **({"labeler": labeler} if labeler is not None else {})}
    for k, path in enumerate(paths):
        for text, _, _, fld in path:
            if not text.strip():
                raise at.error(fld, "empty step")
        yield at.record(
            id=f"{PREFIX}-{at.line}/{k}",
            problem=problem,
            steps=[p[0] for p in path],
            labels=[p[2] for p in path],
            answer=answer,
            source=PREFIX,
            meta={**meta, "ratings": [p[1] for p in path]},
        )


def read(path: str | os.PathLike, *, neutral: Neutral = "positive", alternatives: bool = True) -> Iterator[StepRecord]:
    """`neutral`: what a rating of 0 means; `alternatives`: also emit the records of unchosen rated completions."""
    if neutral not in NEUTRAL:
        raise ValueError(f"neutral must be one of {', '.join(NEUTRAL)}, got {neutral!r}")
    for lineno, obj in iter_json_objects(path):
        yield from _paths(obj, At(path, lineno), neutral, alternatives)


def _ratings(rec: StepRecord, neutral: Neutral) -> list[int | None]:
    kept = rec.meta.get("ratings")
    if not isinstance(kept, list) or len(kept) != len(rec.steps):
        kept = [None] * len(rec.steps)
    out: list[int | None] = []
    for r, lab in zip(kept, rec.labels, strict=True):
        ok = type(r) is int and r in (-1, 0, 1) and to_label(r, neutral) == lab
        out.append(r if ok else {True: 1, False: -1, None: None}[lab])
    return out


def _convert(rec: StepRecord, line: int, stats: WriteStats, neutral: Neutral) -> dict:
    ratings = _ratings(rec, neutral)
    last = len(rec.steps) - 1
    steps = [
        {
            "completions": [{"text": text, "rating": r, "flagged": False}],
            "chosen_completion": None if i == last and r == -1 else 0,
            "human_completion": None,
        }
        for i, (text, r) in enumerate(zip(rec.steps, ratings, strict=True))
    ]
    finish = rec.meta.get("finish_reason")
    if finish not in FINISH_REASONS:
        finish = "found_error" if False in rec.labels else "solution"
    labeler = rec.meta.get("labeler")
    return {
        **({"labeler": labeler} if isinstance(labeler, str) else {}),
        "question": {"problem": rec.problem, "ground_truth_answer": rec.answer},
        "label": {"steps": steps, "finish_reason": finish},
    }


def write(records: Iterable[StepRecord], path: str | os.PathLike, *, neutral: Neutral = "positive") -> WriteStats:
    if neutral not in NEUTRAL:
        raise ValueError(f"neutral must be one of {', '.join(NEUTRAL)}, got {neutral!r}")
    return write_lines(records, path, lambda rec, line, stats: _convert(rec, line, stats, neutral))

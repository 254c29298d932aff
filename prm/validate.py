"""`prm validate FILE`: check a step-record file strictly and print what it holds.

Exit status 0 when every record is valid; otherwise the first problem is reported as `file:line: field 'x': ...`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from prm.config import config, option
from prm.records import StepRecord, read_records


@config("validate")
class ValidateConfig:
    input: str = option(help="step-record file (.jsonl or .parquet)", positional=True)
    json: bool = option(False, "print the statistics as one JSON object instead of a table")


@dataclass(frozen=True)
class Stats:
    records: int
    steps: int
    steps_per_record: dict[int, int]
    labeled_steps: int
    false_steps: int
    records_with_error: int
    valued_steps: int
    sources: dict[str, int]


def stats(records: list[StepRecord]) -> Stats:
    return Stats(
        records=len(records),
        steps=sum(len(r.steps) for r in records),
        steps_per_record=dict(sorted(Counter(len(r.steps) for r in records).items())),
        labeled_steps=sum(lab is not None for r in records for lab in r.labels),
        false_steps=sum(lab is False for r in records for lab in r.labels),
        records_with_error=sum(r.first_error() is not None for r in records),
        valued_steps=sum(v is not None for r in records for v in r.values),
        sources=dict(Counter(r.source for r in records).most_common()),
    )


def run(cfg: ValidateConfig) -> None:
    s = stats(read_records(cfg.input))
    if cfg.json:
        print(json.dumps(s.__dict__))
        return
    print(f"{cfg.input}: valid, {s.records} records, {s.steps} steps")
    print(f"  steps per record: {s.steps_per_record}")
    print(f"  labeled steps: {s.labeled_steps} ({s.false_steps} false); records with an error: {s.records_with_error}")
    print(f"  steps with a value: {s.valued_steps}; sources: {s.sources}")

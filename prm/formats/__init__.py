"""Import and export of step records: the canonical record and five published formats, and `prm convert`.

    prm convert --from gsm8k --to trl ../shared/data/gsm8k/test.jsonl data/out/gsm8k-test.trl.jsonl

Each format has `read(path, **opts) -> Iterator[StepRecord]` (strict: the first bad field raises a RecordError naming
file, line and field) and `write(records, path, **opts) -> WriteStats` (atomic; a record the format cannot hold is
skipped and counted with its reason). The layouts and what each conversion keeps are in each module's docstring.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from prm.config import config, option, save_config
from prm.formats import gsm8k, math_shepherd, prm800k, processbench, trl
from prm.formats.base import WriteStats
from prm.record import StepRecord, iter_records, write_records

__all__ = ["FORMATS", "ConvertConfig", "Format", "WriteStats", "convert", "detect_format", "run"]


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[..., Iterator[StepRecord]]
    write: Callable[..., WriteStats]
    help: str


def _write_records(records: Iterable[StepRecord], path: str | os.PathLike) -> WriteStats:
    # The canonical record holds everything, so nothing is ever skipped.
    return WriteStats(written=write_records(records, path))


FORMATS: dict[str, Format] = {
    "record": Format("record", iter_records, _write_records, "the canonical step record (.jsonl or .parquet)"),
    "trl": Format("trl", trl.read, trl.write, "TRL stepwise supervision: prompt, completions, labels"),
    "prm800k": Format("prm800k", prm800k.read, prm800k.write, "openai/prm800k labeling sessions"),
    "math_shepherd": Format("math_shepherd", math_shepherd.read, math_shepherd.write, "Math-Shepherd input/label"),
    "processbench": Format("processbench", processbench.read, processbench.write, "ProcessBench earliest-error"),
    "gsm8k": Format("gsm8k", gsm8k.read, gsm8k.write, "GSM8K question and reference answer"),
}

# The fields that tell each layout apart (a dataset's first row is matched against them, in this order).
_SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("record", frozenset({"id", "problem", "steps"})),
    ("processbench", frozenset({"problem", "steps", "label", "final_answer_correct"})),
    ("trl", frozenset({"prompt", "completions", "labels"})),
    ("math_shepherd", frozenset({"input", "label"})),
    ("prm800k", frozenset({"question", "label"})),
    ("gsm8k", frozenset({"question", "answer"})),
)


def detect_format(row: dict) -> str | None:
    """The layout a row is in, by its fields; None when none fits. A canonical record has no `label` field, which
    is what tells it from a ProcessBench row (both have `problem` and `steps`).

    >>> detect_format({"prompt": "", "completions": [], "labels": []}), detect_format({"input": "", "label": ""})
    ('trl', 'math_shepherd')
    >>> detect_format({"id": "p", "problem": "", "steps": [], "label": 1, "final_answer_correct": True})
    'processbench'
    """
    keys = set(row)
    for name, fields in _SIGNATURES:
        if fields <= keys and not (name == "record" and "label" in keys):
            return name
    return None


# Spelled out for the config's type (a test checks it matches FORMATS).
FormatName = Literal["record", "trl", "prm800k", "math_shepherd", "processbench", "gsm8k"]


@config("convert")
class ConvertConfig:
    """`prm convert` reads one file in one format and writes it in another."""

    src_format: FormatName = option(help="format of the input file", flag="--from")
    dst_format: FormatName = option(help="format to write", flag="--to")
    input: str = option(help="file to read", positional=True)
    output: str = option(
        help="file to write, atomically (.parquet for a canonical-record Parquet file); the config goes beside it",
        positional=True,
    )
    prm800k_neutral: Literal["positive", "negative", "null"] = option(
        "positive",
        "how a PRM800K rating of 0 maps to a label when reading (positive = true, negative = false, null = unlabeled), "
        "and which labels keep a stored rating of 0 when writing",
    )
    prm800k_alternatives: bool = option(
        True, "reading PRM800K: also emit one record per rated completion the labeler did not continue with"
    )
    math_shepherd_task: str = option(
        "GSM8K", "writing Math-Shepherd: the task field of records whose meta has no 'task'"
    )


def _read_options(cfg: ConvertConfig) -> dict[str, Any]:
    # A format gets only its own options, so each reader can refuse a keyword it does not know.
    if cfg.src_format == "prm800k":
        return {"neutral": cfg.prm800k_neutral, "alternatives": cfg.prm800k_alternatives}
    return {}


def _write_options(cfg: ConvertConfig) -> dict[str, Any]:
    if cfg.dst_format == "prm800k":
        return {"neutral": cfg.prm800k_neutral}
    if cfg.dst_format == "math_shepherd":
        return {"task": cfg.math_shepherd_task}
    return {}


class _Counted:
    """Wraps an iterator and counts what it yields, so the summary can say how many records were read."""

    def __init__(self, it: Iterable[StepRecord]):
        self.it, self.n = iter(it), 0

    def __iter__(self) -> Iterator[StepRecord]:
        for rec in self.it:
            self.n += 1
            yield rec


def convert(cfg: ConvertConfig) -> tuple[int, WriteStats]:
    """Read `cfg.input`, write `cfg.output`; returns (records read, write statistics)."""
    records = _Counted(FORMATS[cfg.src_format].read(cfg.input, **_read_options(cfg)))
    stats = FORMATS[cfg.dst_format].write(records, cfg.output, **_write_options(cfg))
    return records.n, stats


def run(cfg: ConvertConfig) -> None:
    n, stats = convert(cfg)
    save_config(cfg, cfg.output)
    print(
        f"convert {cfg.src_format} -> {cfg.dst_format}: read {n} records from {cfg.input}, "
        f"wrote {stats.written} to {cfg.output}, {stats.summary()}"
    )

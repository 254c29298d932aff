"""What every format module shares: strict field access for readers, and the write loop with its statistics.

A reader walks `iter_json_objects(path)` and reads each field through `At(path, line)`, so that a missing field or a
wrong type raises one `RecordError` naming the file, the line and the field as the source file spells it
(`label.steps[2].completions[0].rating`), not as the canonical record would. Fields a reader does not use are ignored:
the published datasets carry more columns (timestamps, generator settings) than a step record needs.

A writer turns each record into one JSON object, or skips it with a reason when the format cannot hold it; the loop
counts both and writes atomically through `prm.records.write_jsonl`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prm.record import RecordError, StepRecord, validate, write_jsonl

_MISSING = object()
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", list: "a list", dict: "an object"}


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _is(v: Any, kind: type) -> bool:
    # bool is a subclass of int in Python, but a JSON `true` is not a step index or a rating.
    if kind is int and isinstance(v, bool):
        return False
    return isinstance(v, kind)


@dataclass(frozen=True)
class At:
    """One line of one source file: builds RecordErrors for it and reads typed fields from its objects."""

    path: str | os.PathLike
    line: int

    def error(self, fld: str | None, message: str) -> RecordError:
        return RecordError(self.path, self.line, fld, message)

    def get(self, obj: Any, key: str, kind: type, *, prefix: str = "", null: bool = False, default: Any = _MISSING):
        """obj[key] checked to be of `kind` (or None when `null`); absent -> `default`, or an error without one.
        `prefix` is the path of `obj` inside the line, e.g. "label.steps[2]." """
        name = prefix + key
        if not isinstance(obj, dict):
            raise self.error(prefix.rstrip(".") or None, f"expected a JSON object, got {_type_name(obj)}")
        if key not in obj:
            if default is _MISSING:
                raise self.error(name, "missing required field")
            return default
        v = obj[key]
        if v is None and null:
            return None
        if not _is(v, kind):
            want = _TYPE_NAMES.get(kind, kind.__name__) + (" or null" if null else "")
            raise self.error(name, f"must be {want}, got {_type_name(v)} {v!r}"[:200])
        return v

    def texts(self, obj: Any, key: str, *, prefix: str = "") -> list[str]:
        """obj[key] as a non-empty list of non-blank strings (steps)."""
        items = self.get(obj, key, list, prefix=prefix)
        if not items:
            raise self.error(prefix + key, "must be a non-empty list of strings")
        for i, s in enumerate(items):
            self.text(s, f"{prefix}{key}[{i}]")
        return items

    def text(self, s: Any, name: str) -> str:
        """A step's text: a string with something in it (the canonical record rejects blank steps)."""
        if not isinstance(s, str):
            raise self.error(name, f"must be a string, got {_type_name(s)}")
        if not s.strip():
            raise self.error(name, "empty step")
        return s

    def record(self, **fields: Any) -> StepRecord:
        """Build a canonical record and check it as `prm.records` would; a reader that checked its own fields
        never fails here, so this is a guard against a converter bug, still reported at the source line."""
        rec = StepRecord(**fields)
        validate(rec.to_dict(), path=self.path, line=self.line)
        return rec


def optional_id(at: At, obj: dict, prefix: str) -> str:
    """The line's `id` field when it has one, else `<prefix>-<line>`."""
    rid = at.get(obj, "id", str, default=None)
    if rid is not None and not rid:
        raise at.error("id", "must be a non-empty string")
    return rid or f"{prefix}-{at.line}"


def id_field(record_id: str, prefix: str, line: int) -> dict[str, str]:
    """{"id": ...} unless reading line `line` back would regenerate the same id from its number: so that a file
    without ids round-trips unchanged and a record's own id survives the trip all the same."""
    return {} if record_id == f"{prefix}-{line}" else {"id": record_id}


@dataclass
class WriteStats:
    """What a writer did: records written, records skipped (reason -> count), and losses inside written records
    (what -> count, e.g. steps cut after a null label)."""

    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    lossy: Counter = field(default_factory=Counter)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """What was skipped or lost, e.g. 'skipped 1 (1 first label is null); 2 steps dropped after a null label'."""
        out = f"skipped {self.n_skipped}"
        if self.skipped:
            out += " (" + ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) + ")"
        if self.lossy:
            out += "; " + ", ".join(f"{n} {what}" for what, n in self.lossy.most_common())
        return out


# A converter returns the JSON object for one record, or None after recording why in stats.skipped. `line` is the
# 1-based output line the object will land on (used by `id_field`).
Converter = Callable[[StepRecord, int, WriteStats], "dict | None"]


def write_lines(records: Iterable[StepRecord], path: str | os.PathLike, convert: Converter) -> WriteStats:
    """Convert and write every record atomically; the output appears complete or not at all."""
    stats = WriteStats()

    def objects():
        for rec in records:
            obj = convert(rec, stats.written + 1, stats)
            if obj is not None:
                stats.written += 1
                yield obj

    write_jsonl(objects(), path)
    return stats


def cut_at_null(rec: StepRecord, stats: WriteStats) -> int | None:
    """How many leading steps a format without null labels (TRL, Math-Shepherd) can hold: the steps before the
    first null label. Counts the steps dropped; None (and a skip) when the first label is already null."""
    n = rec.labels.index(None) if None in rec.labels else len(rec.labels)
    if n == 0:
        stats.skipped["first label is null"] += 1
        return None
    if n < len(rec.steps):
        stats.lossy["steps dropped after a null label"] += len(rec.steps) - n
    return n

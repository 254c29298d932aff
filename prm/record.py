"""The canonical step record: one solution split into steps, with per-step labels and values, and its files.

Every stage of the pipeline reads and writes this record (JSONL, one object per line, or Parquet). The rows of a
hub dataset (`hf:NAME[:CONFIG][@SPLIT]`) read like the lines of a file here; `prm.records` adds the mapping of
other formats' rows. Import from `prm.records`: this module is what the format converters build on.
Reading is strict: the first problem found raises one `RecordError` that names the file, the line
and the field, so a user can open the file at that line and fix it.

    {"id": "synth-17/3", "problem": "...", "steps": ["...", "..."],
     "labels": [true, false, null], "values": [0.75, 0.0, null],
     "answer": "6", "source": "synth", "meta": {"rollouts": 12}}

- labels[i]: true = step i is correct and the answer is still reachable; false = wrong; null = not labeled.
- values[i]: Monte-Carlo estimate in [0, 1] of P(correct final answer | problem, steps[0..i]); null = not estimated.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prm.fileio import atomic_write, iter_lines

FIELDS = ("id", "problem", "steps", "labels", "values", "answer", "source", "meta")
# Fields a file may leave out; they take these defaults (labels/values become all-null lists).
OPTIONAL = {"labels", "values", "answer", "source", "meta"}


# How solution text becomes steps. `lines`: every non-empty line is a step (what `prm generate` writes and what the
# policies are trained to produce); `blank`: paragraphs separated by an empty line, for generators that wrap lines.
SPLITS = ("lines", "blank")


def split_steps(text: str, rule: str = "lines") -> list[str]:
    """The steps of a solution text, stripped, empty ones left out.

    >>> split_steps("3 + 4 = 7.\\n\\nThe answer is 7.\\n"), split_steps("a\\nb\\n\\nc", "blank")
    (['3 + 4 = 7.', 'The answer is 7.'], ['a\\nb', 'c'])
    """
    if rule == "lines":
        parts = text.split("\n")
    elif rule == "blank":
        parts = re.split(r"\n[ \t]*\n", text)
    else:
        raise ValueError(f"unknown step split {rule!r}; choose from {', '.join(SPLITS)}")
    return [p.strip() for p in parts if p.strip()]


class RecordError(ValueError):
    """A bad record in a file: names the file, the 1-based line (or row) and the field."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, field: str | None, message: str):
        self.path = str(path) if path is not None else "<memory>"
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


@dataclass(slots=True)
class StepRecord:
    id: str
    problem: str
    steps: list[str]
    labels: list[bool | None] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    answer: str | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Unlabeled records carry explicit all-null lists so that len(labels) == len(steps) always holds.
        if not self.labels:
            self.labels = [None] * len(self.steps)
        if not self.values:
            self.values = [None] * len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "problem": self.problem,
            "steps": list(self.steps),
            "labels": list(self.labels),
            "values": list(self.values),
            "answer": self.answer,
            "source": self.source,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, obj: Any, *, path: str | os.PathLike | None = None, line: int | None = None) -> StepRecord:
        """Validate a decoded JSON object and build a record; raises RecordError naming path, line and field."""
        validate(obj, path=path, line=line)
        n = len(obj["steps"])
        return cls(
            id=obj["id"],
            problem=obj["problem"],
            steps=list(obj["steps"]),
            labels=list(obj.get("labels") or [None] * n),
            values=[None if v is None else float(v) for v in (obj.get("values") or [None] * n)],
            answer=obj.get("answer"),
            source=obj.get("source") or "",
            meta=dict(obj.get("meta") or {}),
        )

    def first_error(self) -> int | None:
        """Index of the first step labeled false, or None."""
        for i, lab in enumerate(self.labels):
            if lab is False:
                return i
        return None


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def validate(obj: Any, *, path: str | os.PathLike | None = None, line: int | None = None) -> None:
    """Check one decoded record; raise RecordError at the first problem. Plain checks, no schema library:
    this runs on every record of every file, so it is kept cheap (see `make bench`)."""

    def fail(fld: str | None, msg: str) -> None:
        raise RecordError(path, line, fld, msg)

    if not isinstance(obj, dict):
        fail(None, f"expected a JSON object, got {_type_name(obj)}")
    for key in obj:
        if key not in FIELDS:
            fail(key, f"unknown field (allowed: {', '.join(FIELDS)}; put extra data under 'meta')")
    for key in ("id", "problem", "steps"):
        if key not in obj:
            fail(key, "missing required field")
    if not isinstance(obj["id"], str) or not obj["id"]:
        fail("id", f"must be a non-empty string, got {obj['id']!r}")
    if not isinstance(obj["problem"], str):
        fail("problem", f"must be a string, got {_type_name(obj['problem'])}")
    steps = obj["steps"]
    if not isinstance(steps, list) or not steps:
        fail("steps", "must be a non-empty list of strings")
    for i, s in enumerate(steps):
        if not isinstance(s, str):
            fail(f"steps[{i}]", f"must be a string, got {_type_name(s)}")
        if not s.strip():
            fail(f"steps[{i}]", "empty step")
    n = len(steps)
    labels = obj.get("labels")
    if labels is not None:
        if not isinstance(labels, list):
            fail("labels", f"must be a list, got {_type_name(labels)}")
        if len(labels) != n:
            fail("labels", f"has {len(labels)} entries but steps has {n}")
        for i, lab in enumerate(labels):
            if lab is not None and not isinstance(lab, bool):
                fail(f"labels[{i}]", f"must be true, false or null, got {lab!r}")
    values = obj.get("values")
    if values is not None:
        if not isinstance(values, list):
            fail("values", f"must be a list, got {_type_name(values)}")
        if len(values) != n:
            fail("values", f"has {len(values)} entries but steps has {n}")
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                fail(f"values[{i}]", f"must be a number in [0, 1] or null, got {v!r}")
            if math.isnan(v) or not 0.0 <= v <= 1.0:
                fail(f"values[{i}]", f"{v} is outside [0, 1]")
    answer = obj.get("answer")
    if answer is not None and not isinstance(answer, str):
        fail("answer", f"must be a string or null, got {_type_name(answer)} {answer!r}")
    source = obj.get("source")
    if source is not None and not isinstance(source, str):
        fail("source", f"must be a string, got {_type_name(source)}")
    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        fail("meta", f"must be an object, got {_type_name(meta)}")


# ---------------------------------------------------------------------------------------------------------------------
# JSONL


_WS = re.compile(r"[ \t\r\n]*")


def _starts_array(path: str | os.PathLike) -> bool:
    """Whether the file's first non-blank byte opens a JSON array (no JSON-lines file starts so)."""
    with open(path, "rb") as f:
        while chunk := f.read(4096):
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return stripped.startswith(b"[")
    return False


def _iter_json_array(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(line where the element starts, element) for each element of a file holding one JSON array (the official
    ProcessBench release files are such arrays); errors name the line."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordError(path, raw.count(b"\n", 0, e.start) + 1, None, f"invalid UTF-8 at byte {e.start}") from None
    decoder = json.JSONDecoder()
    line, counted = 1, 0

    def line_of(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    pos = _WS.match(text, _WS.match(text).end() + 1).end()  # past "[" and the blanks after it
    closed = text.startswith("]", pos)
    while not closed:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise RecordError(path, e.lineno, None, f"malformed JSON: {e.msg} at column {e.colno}") from None
        yield line_of(pos), obj
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
        elif text.startswith("]", pos):
            closed = True
        else:
            raise RecordError(path, line_of(pos), None, "malformed JSON array: expected ',' or ']' after an element")
    if _WS.match(text, pos + 1).end() != len(text):
        raise RecordError(path, line_of(pos + 1), None, "malformed JSON: text after the closing ']'")


HUB = "hf:"


def is_hub(path: str | os.PathLike) -> bool:
    """Whether `path` names a dataset (`hf:NAME[:CONFIG][@SPLIT]`) rather than a file."""
    return isinstance(path, str) and path.startswith(HUB)


def parse_hub(spec: str) -> tuple[str, str | None, str]:
    """(name, config, split) of `hf:NAME[:CONFIG][@SPLIT]`; the split defaults to train. NAME is a hub id or a local
    folder in the hub's layout (data files, and a README whose YAML names configs and splits).

    >>> parse_hub("hf:Qwen/ProcessBench@gsm8k"), parse_hub("hf:peiyi9979/Math-Shepherd")
    (('Qwen/ProcessBench', None, 'gsm8k'), ('peiyi9979/Math-Shepherd', None, 'train'))
    >>> parse_hub("hf:openai/gsm8k:main@test")
    ('openai/gsm8k', 'main', 'test')
    """
    rest = spec[len(HUB) :]
    rest, _, split = rest.partition("@")
    name, _, cfg = rest.partition(":")
    if not name:
        raise RecordError(spec, None, None, "no dataset name: write hf:NAME[:CONFIG][@SPLIT]")
    return name, cfg or None, split or "train"


def _iter_hub_rows(spec: str) -> Iterator[tuple[int, Any]]:
    """(row number from 1, row) of a dataset, streamed with `datasets` (nothing is downloaded twice; a local folder
    needs no network)."""
    name, cfg, split = parse_hub(spec)
    try:
        from datasets import load_dataset

        for i, row in enumerate(load_dataset(name, cfg, split=split, streaming=True), 1):
            yield i, dict(row)
    except Exception as e:  # datasets raises many kinds; the user needs the one line, not the traceback
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RecordError(spec, None, None, f"cannot read the dataset: {message}") from None


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield (line number, decoded object) for each non-blank line of a JSON-lines file, or for each element of a
    file holding one JSON array, or (row number, row) of a dataset (`hf:...`); bad UTF-8 or JSON raises
    RecordError naming the line."""
    if is_hub(path):
        yield from _iter_hub_rows(str(path))
        return
    if _starts_array(path):
        yield from _iter_json_array(path)
        return
    for lineno, raw in iter_lines(path):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RecordError(path, lineno, None, f"invalid UTF-8 at byte {e.start}") from None
        if not text.strip():
            continue
        try:
            yield lineno, json.loads(text)
        except json.JSONDecodeError as e:
            raise RecordError(path, lineno, None, f"malformed JSON: {e.msg} at column {e.colno}") from None


def _dumps(obj: dict) -> str:
    # allow_nan=False: NaN would be written as the non-JSON token NaN, which other readers reject.
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def iter_records(path: str | os.PathLike) -> Iterator[StepRecord]:
    """Stream canonical records from a .jsonl/.json or .parquet file (or a dataset of such rows), validating each."""
    if Path(path).suffix == ".parquet":
        yield from _iter_parquet(path)
        return
    for lineno, obj in iter_json_objects(path):
        yield StepRecord.from_dict(obj, path=path, line=lineno)


def unique_ids(records: Iterable[StepRecord], path: str | os.PathLike) -> list[StepRecord]:
    """The records as a list; a repeated id raises RecordError naming `path` and the record."""
    records = list(records)
    seen: dict[str, int] = {}
    for i, r in enumerate(records, 1):
        if r.id in seen:
            raise RecordError(path, i, "id", f"duplicate id {r.id!r} (first seen in record {seen[r.id]})")
        seen[r.id] = i
    return records


def write_records(records: Iterable[StepRecord | dict], path: str | os.PathLike) -> int:
    """Write records atomically (temporary file, then rename); .parquet or JSONL by suffix. Returns the count."""
    if Path(path).suffix == ".parquet":
        return _write_parquet(records, path)
    n = 0
    with atomic_write(path) as f:
        for r in records:
            d = r.to_dict() if isinstance(r, StepRecord) else r
            validate(d, path=path, line=n + 1)
            f.write(_dumps(d) + "\n")
            n += 1
    return n


def write_jsonl(objs: Iterable[dict], path: str | os.PathLike) -> int:
    """Write arbitrary JSON objects one per line, atomically (used by the foreign formats)."""
    n = 0
    with atomic_write(path) as f:
        for d in objs:
            f.write(_dumps(d) + "\n")
            n += 1
    return n


# ---------------------------------------------------------------------------------------------------------------------
# Parquet. `meta` is free-form, so it is stored as a JSON string column: a struct column would need one schema for
# every record's meta, which heterogeneous files do not have.


def _write_parquet(records: Iterable[StepRecord | dict], path: str | os.PathLike) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, r in enumerate(records, 1):
        d = r.to_dict() if isinstance(r, StepRecord) else dict(r)
        validate(d, path=path, line=i)
        rec = StepRecord.from_dict(d).to_dict()
        rec["meta"] = json.dumps(rec["meta"], ensure_ascii=False, allow_nan=False)
        rows.append(rec)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("problem", pa.string()),
            ("steps", pa.list_(pa.string())),
            ("labels", pa.list_(pa.bool_())),
            ("values", pa.list_(pa.float64())),
            ("answer", pa.string()),
            ("source", pa.string()),
            ("meta", pa.string()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_write(path, binary=True) as f:
        pq.write_table(table, f)
    return len(rows)


def _iter_parquet(path: str | os.PathLike) -> Iterator[StepRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise RecordError(path, None, None, f"not a readable Parquet file: {e}") from None
    for row, obj in enumerate(table.to_pylist(), 1):
        meta = obj.get("meta")
        if isinstance(meta, str):
            try:
                obj["meta"] = json.loads(meta)
            except json.JSONDecodeError as e:
                raise RecordError(path, row, "meta", f"not valid JSON: {e.msg}") from None
        yield StepRecord.from_dict(obj, path=path, line=row)


# ---------------------------------------------------------------------------------------------------------------------
# Resumable output: long runs (generate, label) append finished units of work and can be killed at any moment.


class ResumableWriter:
    """Append-only JSONL output that a rerun continues after a kill (SIGKILL included) without loss or duplicates.

    Work is written in units (a problem's N traces, a trace's labels): all records of a unit in one write, then
    flush and fsync. On opening an existing file, a torn last line is dropped, and so is every record of a unit that
    is not complete (fewer records than `expected(unit)`), so the caller redoes exactly the units not in `done`.
    If units are processed in input order, the final file equals an uninterrupted run's.

        w = ResumableWriter(path, unit=lambda d: d["meta"]["problem_id"], expected=lambda u: n)
        todo = [p for p in problems if p.id not in w.done]
        w.write_unit([...records of one problem...])
    """

    def __init__(self, path: str | os.PathLike, unit, expected=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = set()
        self.kept = 0
        if self.path.exists():
            self._repair(unit, expected or (lambda u: 1))
        self._f = open(self.path, "a", encoding="utf-8", newline="\n")

    def _repair(self, unit, expected) -> None:
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]  # a killed write can leave a line without its newline
        objs, counts = [], {}
        for lineno, line in enumerate(complete.split(b"\n")[:-1], 1):
            try:
                obj = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise RecordError(self.path, lineno, None, "damaged line in the middle of a resumable output") from None
            u = unit(obj)
            counts[u] = counts.get(u, 0) + 1
            objs.append((u, line))
        self.done = {u for u, c in counts.items() if c >= expected(u)}
        keep = [line for u, line in objs if u in self.done]
        self.kept = len(keep)
        if len(keep) != len(objs) or len(complete) != len(raw):
            with atomic_write(self.path, binary=True) as f:
                f.write(b"".join(line + b"\n" for line in keep))

    def write_unit(self, records: Iterable[StepRecord | dict]) -> None:
        lines = []
        for r in records:
            d = r.to_dict() if isinstance(r, StepRecord) else r
            validate(d, path=self.path)
            lines.append(_dumps(d) + "\n")
        self._f.write("".join(lines))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ResumableWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

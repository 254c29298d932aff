"""Step records wherever they are: files (JSON lines, a JSON array, Parquet) and hub datasets.

    read_records("traces.jsonl")
    read_records("hf:trl-lib/math_shepherd@train")       # a TRL stepwise dataset, mapped to step records
    read_records("hf:/data/ProcessBench@gsm8k")           # a local folder in the hub's layout

A file holds canonical records (`prm.record`). A dataset's rows may be in any layout `prm convert` reads: the first
row's fields say which (`prm.formats.detect_format`), and that format's reader maps every row, with the same
strictness as for a file (the first bad row raises one RecordError naming the dataset, the row and the field).
`prm convert --from FORMAT hf:...` names the layout instead. Datasets are streamed (`datasets`, streaming=True).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prm.formats import FORMATS, detect_format
from prm.record import (
    FIELDS,
    OPTIONAL,
    SPLITS,
    RecordError,
    ResumableWriter,
    StepRecord,
    is_hub,
    iter_json_objects,
    parse_hub,
    split_steps,
    unique_ids,
    validate,
    write_jsonl,
    write_records,
)

__all__ = [
    "FIELDS",
    "OPTIONAL",
    "SPLITS",
    "RecordError",
    "ResumableWriter",
    "StepRecord",
    "hub_format",
    "is_hub",
    "iter_json_objects",
    "iter_records",
    "parse_hub",
    "read_records",
    "split_steps",
    "validate",
    "write_jsonl",
    "write_records",
]


def hub_format(spec: str) -> str:
    """The layout of a dataset's rows, from the fields of its first row."""
    for _, row in iter_json_objects(spec):
        fmt = detect_format(row)
        if fmt is None:
            raise RecordError(
                spec,
                1,
                None,
                f"rows with fields {sorted(row)} are in no known layout; convert them first "
                f"(prm convert --from {'|'.join(FORMATS)})",
            )
        return fmt
    raise RecordError(spec, None, None, "the dataset has no rows")


def iter_records(path: str | os.PathLike) -> Iterator[StepRecord]:
    """Stream validated step records from a file or a dataset (`hf:NAME[:CONFIG][@SPLIT]`, any known layout)."""
    if is_hub(path):
        yield from FORMATS[hub_format(str(path))].read(str(path))
        return
    yield from FORMATS["record"].read(path)


def read_records(path: str | os.PathLike) -> list[StepRecord]:
    """Read and validate every record of a file or a dataset; ids must be unique."""
    return unique_ids(iter_records(path), path)

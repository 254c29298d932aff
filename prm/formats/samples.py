"""The sample files in data/samples/: a few hand-written canonical records, and the same converted into every format,
for users to look at and for tests (a test checks the committed files equal what this module writes now).

    python -m prm.formats.samples [DIR]     # default data/samples

The records cover: correct solutions (one with GSM8K calculator annotations), a first error followed by unlabeled
steps, soft values from rollouts, and a wrong last step.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prm.formats import FORMATS
from prm.record import StepRecord, write_records

RECORDS = [
    StepRecord(
        id="sample-1",
        problem="A baker makes 3 trays of 8 rolls and sells 10 of them. How many rolls are left?",
        steps=[
            "The baker makes 3 * 8 = <<3*8=24>>24 rolls.",
            "After selling 10, 24 - 10 = <<24-10=14>>14 rolls are left.",
            "The answer is: 14",
        ],
        labels=[True, True, True],
        answer="14",
        source="sample",
    ),
    StepRecord(
        id="sample-2",
        problem="Mia reads 12 pages a day for 5 days, then 9 pages on the sixth day. How many pages does she read?",
        steps=["In 5 days she reads 12 * 5 = 60 pages.", "With the sixth day she reads 60 + 9 = 69 pages."],
        labels=[True, True],
        answer="69",
        source="sample",
    ),
    StepRecord(
        id="sample-3",
        problem="A shop has 50 apples. It sells 15 in the morning and twice as many in the afternoon. "
        "How many apples are left?",
        steps=[
            "After the morning 50 - 15 = 35 apples are left.",
            "In the afternoon it sells 15 + 2 = 17 apples.",
            "So 35 - 17 = 18 apples are left.",
            "The answer is: 18",
        ],
        labels=[True, False, None, None],
        values=[0.5, 0.0, None, None],
        answer="5",
        source="sample",
        meta={"rollouts": 8},
    ),
    StepRecord(
        id="sample-4",
        problem="Sam has 7 boxes with 6 pencils each. He gives away 9 pencils. How many pencils does he keep?",
        steps=["Sam has 7 * 6 = 42 pencils.", "He keeps 42 - 9 = 33 pencils.", "The answer is: 33"],
        labels=[True, True, True],
        values=[0.875, 0.75, 1.0],
        answer="33",
        source="sample",
        meta={"rollouts": 8},
    ),
    StepRecord(
        id="sample-5",
        problem="Lena buys 4 notebooks at $3 each and a pen for $2. How much does she spend?",
        steps=["The notebooks cost 4 * 3 = $12.", "With the pen she spends 12 + 2 = $14.", "The answer is: 16"],
        labels=[True, True, False],
        values=[1.0, 1.0, 0.0],
        answer="14",
        source="sample",
        meta={"rollouts": 8},
    ),
]


def write_samples(out_dir: str | Path) -> dict[str, str]:
    """Write records.jsonl, records.parquet and <format>.jsonl for every other format; returns file -> summary."""
    out_dir = Path(out_dir)
    done = {}
    write_records(RECORDS, out_dir / "records.jsonl")
    write_records(RECORDS, out_dir / "records.parquet")
    done["records.jsonl"] = done["records.parquet"] = f"wrote {len(RECORDS)}"
    for name, fmt in FORMATS.items():
        if name != "record":
            stats = fmt.write(RECORDS, out_dir / f"{name}.jsonl")
            done[f"{name}.jsonl"] = f"wrote {stats.written}, {stats.summary()}"
    return done


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path("data/samples")
    for name, summary in write_samples(out_dir).items():
        print(f"{out_dir / name}: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The canonical step record: strict reading (every bad-input class names file, line and field), atomic writes,
Parquet, and loading with `datasets`."""

from __future__ import annotations

import json
import math

import pytest

from prm.records import RecordError, StepRecord, read_records, validate, write_records

GOOD = {
    "id": "synth-17/3",
    "problem": "Tom has 3 apples and buys 3 more. How many?",
    "steps": ["3 + 3 = 6", "The answer is 6."],
    "labels": [True, None],
    "values": [0.75, None],
    "answer": "6",
    "source": "synth",
    "meta": {"rollouts": 12},
}


def write_lines(path, lines: list[bytes | str]) -> None:
    with open(path, "wb") as f:
        for line in lines:
            f.write((line.encode() if isinstance(line, str) else line) + b"\n")


def bad(**changes):
    d = dict(GOOD)
    for k, v in changes.items():
        if v is KeyError:
            d.pop(k)
        else:
            d[k] = v
    return json.dumps(d, ensure_ascii=False)


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('{"id": "x", "problem": ', None, "malformed JSON"),
        ("[1, 2]", None, "expected a JSON object"),
        (bad(id=KeyError), "id", "missing required field"),
        (bad(steps=KeyError), "steps", "missing required field"),
        (bad(id=7), "id", "non-empty string"),
        (bad(problem=None), "problem", "must be a string"),
        (bad(steps="3 + 3 = 6"), "steps", "non-empty list"),
        (bad(steps=[]), "steps", "non-empty list"),
        (bad(steps=["3 + 3 = 6", 6]), r"steps\[1\]", "must be a string"),
        (bad(steps=["3 + 3 = 6", ""]), r"steps\[1\]", "empty step"),
        (bad(steps=["  \n ", "x"]), r"steps\[0\]", "empty step"),
        (bad(labels=[True]), "labels", "has 1 entries but steps has 2"),
        (bad(labels=[True, None, False]), "labels", "has 3 entries but steps has 2"),
        (bad(labels=[True, 1]), r"labels\[1\]", "true, false or null"),
        (bad(labels=[True, "false"]), r"labels\[1\]", "true, false or null"),
        (bad(values=[0.5]), "values", "has 1 entries but steps has 2"),
        (bad(values=[0.5, 1.5]), r"values\[1\]", "outside \\[0, 1\\]"),
        (bad(values=[-0.1, None]), r"values\[0\]", "outside \\[0, 1\\]"),
        (bad(values=[0.5, "0.5"]), r"values\[1\]", "must be a number"),
        (bad(values=[True, None]), r"values\[0\]", "must be a number"),
        (bad(answer=6), "answer", "string or null"),
        (bad(meta=[1]), "meta", "must be an object"),
        (bad(extra=1), "extra", "unknown field"),
    ],
)
def test_bad_line_names_file_line_and_field(tmp_path, line, field, message):
    path = tmp_path / "in.jsonl"
    write_lines(path, [json.dumps(GOOD | {"id": "a"}), "", line])  # bad record on line 3, after a blank line
    with pytest.raises(RecordError) as e:
        read_records(path)
    text = str(e.value)
    assert text.startswith(f"{path}:3:"), text
    assert e.value.line == 3 and e.value.path == str(path)
    if field is not None:
        assert e.value.field is not None
        assert f"field '{field.replace(chr(92), '')}'" in text
    assert __import__("re").search(message, text), text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_values_rejected(tmp_path, token):
    path = tmp_path / "in.jsonl"
    write_lines(path, [json.dumps(GOOD), bad(id="b").replace("[0.75, null]", f"[{token}, null]")])
    with pytest.raises(RecordError, match=r"in\.jsonl:2: field 'values\[0\]'"):
        read_records(path)


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "in.jsonl"
    write_lines(path, [json.dumps(GOOD), json.dumps(GOOD | {"id": "b"}), b'{"id": "c\xff\xfe", "problem": "p"}'])
    with pytest.raises(RecordError, match=r"in\.jsonl:3: invalid UTF-8 at byte 9"):
        read_records(path)


def test_duplicate_ids_rejected(tmp_path):
    path = tmp_path / "in.jsonl"
    write_lines(path, [json.dumps(GOOD), json.dumps(GOOD)])
    with pytest.raises(RecordError, match=r"in\.jsonl:2: field 'id': duplicate id"):
        read_records(path)


def test_optional_fields_default_to_unlabeled(tmp_path):
    path = tmp_path / "in.jsonl"
    write_lines(path, [json.dumps({"id": "a", "problem": "p", "steps": ["s1", "s2"]})])
    (r,) = read_records(path)
    assert r.labels == [None, None] and r.values == [None, None] and r.answer is None and r.meta == {}


def test_round_trip_jsonl_and_parquet(tmp_path):
    recs = [
        StepRecord.from_dict(GOOD),
        StepRecord(id="b", problem="Ünïcode ки 数学", steps=["a\nb", "c"], labels=[True, False], values=[1, 0.0]),
    ]
    for name in ("out.jsonl", "out.parquet"):
        assert write_records(recs, tmp_path / name) == 2
        assert read_records(tmp_path / name) == recs
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_write_is_atomic_on_failure(tmp_path):
    path = tmp_path / "out.jsonl"
    write_records([StepRecord.from_dict(GOOD)], path)
    before = path.read_bytes()

    def records():
        yield StepRecord.from_dict(GOOD | {"id": "x"})
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_records(records(), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_writer_refuses_invalid_record(tmp_path):
    path = tmp_path / "out.jsonl"
    with pytest.raises(RecordError, match=r"out\.jsonl:2: field 'values\[0\]'"):
        write_records([GOOD, GOOD | {"id": "b", "values": [math.nan, None]}], path)
    assert not path.exists()


def test_validate_in_memory():
    validate(GOOD)
    with pytest.raises(RecordError, match="<memory>: field 'labels'"):
        validate(GOOD | {"labels": [True]})


def test_parquet_corrupt_file(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(RecordError, match="not a readable Parquet file"):
        read_records(path)


def test_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    recs = [StepRecord.from_dict(GOOD | {"id": f"r{i}"}) for i in range(3)]
    write_records(recs, tmp_path / "r.jsonl")
    write_records(recs, tmp_path / "r.parquet")
    ds = datasets.load_dataset(
        "json", data_files=str(tmp_path / "r.jsonl"), split="train", cache_dir=str(tmp_path / "c")
    )
    assert ds.num_rows == 3 and ds[0]["steps"] == GOOD["steps"] and ds[2]["labels"] == [True, None]
    pq = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "r.parquet"), split="train", cache_dir=str(tmp_path / "c")
    )
    assert pq[1]["values"] == [0.75, None] and json.loads(pq[1]["meta"]) == {"rollouts": 12}


def test_json_array_files_read_like_json_lines(tmp_path):
    from prm.records import iter_json_objects

    rec = {"id": "a", "problem": "p", "steps": ["s"]}
    path = tmp_path / "records.json"
    path.write_text("\ufeff[\n  " + json.dumps(rec) + ",\n  " + json.dumps({**rec, "id": "b"}) + "\n]\n")
    assert [r.id for r in read_records(path)] == ["a", "b"]
    assert [line for line, _ in iter_json_objects(path)] == [2, 3]
    path.write_text("[]")
    assert read_records(path) == []


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[\n{"id": "a", "problem": "p", "steps": ["s"]},\n{"id": }\n]', 3, "malformed JSON: Expecting value"),
        ('[\n{"id": "a", "problem": "p", "steps": ["s"]}\n{"id": "b"}]', 3, "expected ',' or ']'"),
        ('[{"id": "a", "problem": "p", "steps": ["s"]}] x', 1, "text after the closing"),
        ('[\n{"id": 5, "problem": "p", "steps": ["s"]}]', 2, "id"),
    ],
)
def test_json_array_errors_name_the_line(tmp_path, text, line, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(RecordError, match=f"bad\\.json:{line}: .*{message}"):
        read_records(path)

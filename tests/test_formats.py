"""Import and export of step records: round trips in both directions for every format, the options (PRM800K neutral
ratings and alternatives, truncation at null labels, ProcessBench labels), strict errors that name file, line and
field, the committed sample files, loading with `datasets`, and `prm convert` end to end."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

import prm.cli
from prm.config import config_path_for, load_config
from prm.formats import FORMATS, ConvertConfig, FormatName, gsm8k, math_shepherd, prm800k, processbench, trl
from prm.formats.samples import RECORDS, write_samples
from prm.records import RecordError, StepRecord, iter_records

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


def write_lines(path: Path, lines: list) -> Path:
    """Objects are written as JSON lines, strings as they are (for malformed input)."""
    with open(path, "w", encoding="utf-8") as f:
        for x in lines:
            f.write((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n")
    return path


def read_json_lines(path: Path) -> list:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def step(text, rating, chosen=0, human=None):
    """One PRM800K step with a single completion."""
    return {
        "completions": [{"text": text, "rating": rating, "flagged": False}],
        "chosen_completion": chosen,
        "human_completion": human,
    }


def session(problem, answer, steps, finish, labeler=None):
    """One PRM800K line."""
    line = {"labeler": labeler} if labeler else {}
    line["question"] = {"problem": problem, "ground_truth_answer": answer}
    line["label"] = {"steps": steps, "finish_reason": finish}
    return line


# Hand-written fixtures in each published layout, already in the shape the writers produce, so that
# fixture -> canonical -> fixture must give them back unchanged.
FIXTURES = {
    "trl": [
        {
            "prompt": "Ann has 4 pens and buys 2 more. How many?",
            "completions": ["4 + 2 = 6", "So 6."],
            "labels": [True, True],
        },
        {
            "id": "t-9",
            "prompt": "What is 9 - 3 - 1?",
            "completions": ["9 - 3 = 5", "5 - 1 = 4"],
            "labels": [False, False],
        },
    ],
    "prm800k": [
        session(
            "What is 2 + 3 * 4?",
            "14",
            [step("First 3 * 4 = 12.", 1), step("Then 2 + 12 = 14.", 0), step("# Answer\n\n14", 1)],
            "solution",
            labeler="lab-1",
        ),
        session(
            "What is 10 - 2 - 3?", "5", [step("10 - 2 = 8.", 1), step("8 - 3 = 6.", -1, chosen=None)], "found_error"
        ),
    ],
    "math_shepherd": [
        {
            "input": "Tom has 16 eggs and eats 3. How many are left? Step 1: 16 - 3 = <<16-3=13>>13 eggs. ки\n"
            "Step 2: The answer is: 13 ки",
            "label": "Tom has 16 eggs and eats 3. How many are left? Step 1: 16 - 3 = <<16-3=13>>13 eggs. +\n"
            "Step 2: The answer is: 13 +",
            "task": "GSM8K",
        },
        {
            "id": "ms-7",
            "input": "Compute 5 + 5 - 2. Step 1: 5 + 5 = 11 ки\nStep 2: 11 - 2 = 9 ки",
            "label": "Compute 5 + 5 - 2. Step 1: 5 + 5 = 11 -\nStep 2: 11 - 2 = 9 -",
            "task": "MATH",
        },
    ],
    "processbench": [
        {
            "id": "gsm8k-0",
            "generator": "Qwen2-7B-Instruct",
            "problem": "Ann has 4 pens and buys 2. How many?",
            "steps": ["4 + 2 = 7", "The answer is 7."],
            "final_answer_correct": False,
            "label": 0,
        },
        {
            "id": "math-3",
            "generator": "Llama-3.1-8B-Instruct",
            "problem": "What is 3 squared?",
            "steps": ["3 * 3 = 9.", "So the answer is 9."],
            "final_answer_correct": True,
            "label": -1,
        },
    ],
    "gsm8k": [
        {
            "question": "Ann has 4 pens and buys 2 more. How many pens?",
            "answer": "Ann has 4+2 = <<4+2=6>>6 pens.\n#### 6",
        },
        {
            "question": "A box holds 12 eggs. How many eggs are in 3 boxes, minus 5 broken?",
            "answer": "3 boxes hold 3*12 = <<3*12=36>>36 eggs.\n\n36 - 5 = <<36-5=31>>31 eggs are whole.\n#### 31",
        },
    ],
}


def test_registry_matches_the_config_choices():
    assert set(typing.get_args(FormatName)) == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_to_canonical_to_format_gives_the_fixture(tmp_path, name):
    src = write_lines(tmp_path / "in.jsonl", FIXTURES[name])
    records = list(FORMATS[name].read(src))
    for rec in records:  # what the readers build is a valid canonical record
        StepRecord.from_dict(rec.to_dict())
    stats = FORMATS[name].write(records, tmp_path / "out.jsonl")
    assert stats.written == len(FIXTURES[name]) and stats.n_skipped == 0
    assert read_json_lines(tmp_path / "out.jsonl") == FIXTURES[name]


def _cut(rec: StepRecord) -> int:
    return rec.labels.index(None) if None in rec.labels else len(rec.labels)


def _kept(name: str, rec: StepRecord) -> dict | None:
    """The fields of `rec` that format `name` represents (None: the record is not representable)."""
    if name == "trl" or name == "math_shepherd":
        n = _cut(rec)
        return {"id": rec.id, "problem": rec.problem, "steps": rec.steps[:n], "labels": rec.labels[:n]} if n else None
    if name == "prm800k":
        return {"problem": rec.problem, "steps": rec.steps, "labels": rec.labels, "answer": rec.answer}
    if name == "processbench":
        k = rec.first_error()
        labels = rec.labels if k is None else rec.labels[: k + 1] + [None] * (len(rec.labels) - k - 1)
        return {"id": rec.id, "problem": rec.problem, "steps": rec.steps, "labels": labels}
    if name == "gsm8k":
        return (
            None
            if False in rec.labels
            else {k: rec.to_dict()[k] for k in ("id", "problem", "steps", "labels", "answer")}
        )
    return rec.to_dict()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_canonical_to_format_to_canonical_keeps_what_the_format_holds(tmp_path, name):
    out = tmp_path / ("out.parquet" if name == "record" else "out.jsonl")
    stats = FORMATS[name].write(RECORDS, out)
    expected = [k for k in (_kept(name, r) for r in RECORDS) if k is not None]
    assert stats.written == len(expected) and stats.n_skipped == len(RECORDS) - len(expected)
    assert [_kept(name, r) for r in FORMATS[name].read(out)] == expected


def test_record_format_jsonl(tmp_path):
    FORMATS["record"].write(RECORDS, tmp_path / "r.jsonl")
    assert [r.to_dict() for r in FORMATS["record"].read(tmp_path / "r.jsonl")] == [r.to_dict() for r in RECORDS]


# ---------------------------------------------------------------------------------------------------------------------
# PRM800K options


@pytest.mark.parametrize(("neutral", "label"), [("positive", True), ("negative", False), ("null", None)])
def test_prm800k_neutral_rating_both_ways(tmp_path, neutral, label):
    src = write_lines(tmp_path / "in.jsonl", [session("1 + 1?", "2", [step("1 + 1 = 2.", 0)], "solution")])
    (rec,) = prm800k.read(src, neutral=neutral)
    assert rec.labels == [label] and rec.meta["ratings"] == [0]
    # Written back under the same mapping the stored 0 still fits the label, so it is kept...
    prm800k.write([rec], tmp_path / "same.jsonl", neutral=neutral)
    assert read_json_lines(tmp_path / "same.jsonl")[0]["label"]["steps"][0]["completions"][0]["rating"] == 0
    # ...under another mapping it no longer does, and the rating comes from the label.
    other = {"positive": "negative", "negative": "null", "null": "positive"}[neutral]
    prm800k.write([rec], tmp_path / "other.jsonl", neutral=other)
    written = read_json_lines(tmp_path / "other.jsonl")[0]["label"]["steps"][0]["completions"][0]["rating"]
    assert written == {True: 1, False: -1, None: None}[label]


PHASE1 = session(
    "What is 6 * 7 - 2?",
    "40",
    [
        {
            "completions": [
                {"text": "6 * 7 = 48.", "rating": -1, "flagged": False},
                {"text": "6 * 7 = 42.", "rating": 1, "flagged": False},
            ],
            "chosen_completion": 1,
            "human_completion": None,
        },
        {
            "completions": [
                {"text": "42 - 2 = 44.", "rating": -1, "flagged": False},
                {"text": "42 - 2 = 41.", "rating": None, "flagged": None},
            ],
            "chosen_completion": None,
            "human_completion": {"text": "42 - 2 = 40.", "rating": None, "source": "human"},
        },
        step("# Answer\n\n40", 1),
    ],
    "solution",
    labeler="lab-3",
)


def test_prm800k_alternatives_give_extra_records(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [PHASE1])
    recs = list(prm800k.read(src))
    assert [(r.id, r.steps, r.labels) for r in recs] == [
        ("prm800k-1/0", ["6 * 7 = 42.", "42 - 2 = 40.", "# Answer\n\n40"], [True, True, True]),
        ("prm800k-1/1", ["6 * 7 = 48."], [False]),
        ("prm800k-1/2", ["6 * 7 = 42.", "42 - 2 = 44."], [True, False]),
    ]
    assert recs[0].meta == {"finish_reason": "solution", "labeler": "lab-3", "ratings": [1, None, 1]}
    assert all(r.answer == "40" and r.source == "prm800k" for r in recs)
    (main,) = prm800k.read(src, alternatives=False)
    assert main.steps == recs[0].steps


def test_prm800k_session_ending_at_an_error(tmp_path):
    # Phase 2: the step rated -1 ends the session unchosen; the record carries it.
    src = write_lines(tmp_path / "in.jsonl", [FIXTURES["prm800k"][1]])
    (rec,) = prm800k.read(src)
    assert (rec.id, rec.steps, rec.labels) == ("prm800k-1/0", ["10 - 2 = 8.", "8 - 3 = 6."], [True, False])
    (main,) = prm800k.read(src, alternatives=False)  # without alternatives only the chosen steps remain
    assert main.labels == [True]


def test_prm800k_export_layout(tmp_path):
    rec = StepRecord(id="x", problem="p", steps=["a", "b", "c"], labels=[True, False, None], answer="1")
    prm800k.write([rec], tmp_path / "out.jsonl")
    (line,) = read_json_lines(tmp_path / "out.jsonl")
    assert [s["completions"][0]["rating"] for s in line["label"]["steps"]] == [1, -1, None]
    assert [s["chosen_completion"] for s in line["label"]["steps"]] == [0, 0, 0]  # the -1 is not last
    assert line["label"]["finish_reason"] == "found_error"
    assert [r.labels for r in prm800k.read(tmp_path / "out.jsonl")] == [[True, False, None]]


# ---------------------------------------------------------------------------------------------------------------------
# Truncation at null labels, ProcessBench labels


@pytest.mark.parametrize("module", [trl, math_shepherd])
def test_cut_before_the_first_null_label_is_counted(tmp_path, module):
    recs = [
        StepRecord(id="a", problem="p", steps=["s1", "s2", "s3"], labels=[True, None, True]),
        StepRecord(id="b", problem="p", steps=["s1", "s2"], labels=[None, True]),
        StepRecord(id="c", problem="p", steps=["s1"], labels=[False]),
    ]
    stats = module.write(recs, tmp_path / "out.jsonl")
    assert stats.written == 2 and dict(stats.skipped) == {"first label is null": 1}
    assert dict(stats.lossy) == {"steps dropped after a null label": 2}
    assert "skipped 1 (1 first label is null); 2 steps dropped after a null label" in stats.summary()
    back = list(module.read(tmp_path / "out.jsonl"))
    assert [(r.id, r.steps, r.labels) for r in back] == [("a", ["s1"], [True]), ("c", ["s1"], [False])]


def test_processbench_labels(tmp_path):
    base = {"generator": "g", "problem": "p", "steps": ["a", "b", "c"], "final_answer_correct": False}
    src = write_lines(tmp_path / "in.jsonl", [{**base, "id": "1", "label": -1}, {**base, "id": "2", "label": 1}])
    assert [r.labels for r in processbench.read(src)] == [[True, True, True], [True, False, None]]
    # the official release files hold one JSON array, pretty-printed
    arr = tmp_path / "processbench_gsm8k.json"
    arr.write_text(json.dumps([{**base, "id": "1", "label": -1}, {**base, "id": "2", "label": 1}], indent=2))
    assert [r.labels for r in processbench.read(arr)] == [[True, True, True], [True, False, None]]
    bad = [{**base, "id": "1", "label": -1}, {**base, "id": "2", "label": 7}]
    arr.write_text(json.dumps(bad, indent=2))
    with pytest.raises(RecordError, match=r"processbench_gsm8k\.json:14: .*label"):
        list(processbench.read(arr))
    recs = [
        StepRecord(id="ok", problem="p", steps=["a", "b"], labels=[True, True]),
        StepRecord(id="k", problem="p", steps=["a", "b", "c"], labels=[True, False, False]),
        StepRecord(id="gap", problem="p", steps=["a", "b"], labels=[None, False]),
        StepRecord(id="open", problem="p", steps=["a", "b"], labels=[True, None]),
    ]
    stats = processbench.write(recs, tmp_path / "out.jsonl")
    assert [(d["id"], d["label"], d["final_answer_correct"]) for d in read_json_lines(tmp_path / "out.jsonl")] == [
        ("ok", -1, True),
        ("k", 1, False),
    ]
    assert dict(stats.skipped) == {"null label before the first error": 1, "no error and some step unlabeled": 1}
    assert dict(stats.lossy) == {"labels after the first error dropped": 1}


# ---------------------------------------------------------------------------------------------------------------------
# GSM8K


def test_gsm8k_steps_calc_and_blank_lines(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", FIXTURES["gsm8k"])
    a, b = gsm8k.read(src)
    assert (a.id, a.steps, a.labels, a.answer, a.source) == (
        "gsm8k-1",
        ["Ann has 4+2 = <<4+2=6>>6 pens."],
        [True],
        "6",
        "gsm8k",
    )
    assert a.meta == {"calc": [[["4+2", "6"]]]}
    assert b.steps == ["3 boxes hold 3*12 = <<3*12=36>>36 eggs.", "36 - 5 = <<36-5=31>>31 eggs are whole."]
    assert b.meta == {"calc": [[["3*12", "36"]], [["36-5", "31"]]], "blank_lines": [[1, ""]]}


@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_real_lines_round_trip_exactly(tmp_path, gsm8k_dir, split):
    lines = (gsm8k_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    src = write_lines(tmp_path / "in.jsonl", lines)
    recs = list(gsm8k.read(src))
    assert all(r.meta["calc"] and len(r.meta["calc"]) == len(r.steps) for r in recs)
    gsm8k.write(recs, tmp_path / "out.jsonl")
    assert read_json_lines(tmp_path / "out.jsonl") == [json.loads(line) for line in lines]


# ---------------------------------------------------------------------------------------------------------------------
# Strict reading: each error names the file, the line and the field


def _with(obj: dict, path: str, value) -> dict:
    """A deep copy of obj with the dotted `path` set to value (or removed when value is KeyError)."""
    obj = json.loads(json.dumps(obj))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = obj
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return obj


TRL0, PRM0, MS0, PB0, GSM0 = (FIXTURES[n][0] for n in ("trl", "prm800k", "math_shepherd", "processbench", "gsm8k"))

BAD = [
    ("trl", '{"prompt": "x", ', None, "malformed JSON"),
    ("trl", _with(TRL0, "prompt", KeyError), "prompt", "missing required field"),
    ("trl", _with(TRL0, "labels.1", None), "labels[1]", "never null"),
    ("trl", _with(TRL0, "labels", [True]), "labels", "has 1 entries but completions has 2"),
    ("trl", _with(TRL0, "completions.0", " "), "completions[0]", "empty step"),
    (
        "prm800k",
        _with(PRM0, "label.steps.2.completions.0.rating", 2),
        "label.steps[2].completions[0].rating",
        "-1, 0, 1",
    ),
    (
        "prm800k",
        _with(PRM0, "label.steps.1.completions.0.rating", "1"),
        "label.steps[1].completions[0].rating",
        "integer",
    ),
    ("prm800k", _with(PRM0, "label.finish_reason", KeyError), "label.finish_reason", "missing required field"),
    ("prm800k", _with(PRM0, "label.finish_reason", "done"), "label.finish_reason", "must be one of"),
    ("prm800k", _with(PRM0, "label.steps.1.chosen_completion", 3), "label.steps[1].chosen_completion", "not an index"),
    (
        "prm800k",
        _with(PRM0, "label.steps.0.chosen_completion", None),
        "label.steps[0].chosen_completion",
        "later steps",
    ),
    ("prm800k", _with(PRM0, "question.problem", KeyError), "question.problem", "missing required field"),
    (
        "prm800k",
        _with(PRM0, "label.steps.0.completions.0.text", ""),
        "label.steps[0].completions[0].text",
        "empty step",
    ),
    ("prm800k", _with(PRM0, "label.steps.1", "x"), "label.steps[1]", "expected a JSON object"),
    ("math_shepherd", _with(MS0, "input", KeyError), "input", "missing required field"),
    ("math_shepherd", _with(MS0, "label", MS0["label"].replace("16 - 3", "16 - 4")), "label", "differs from input"),
    (
        "math_shepherd",
        _with(MS0, "label", MS0["label"].replace("eggs. +", "eggs. *")),
        "label",
        "expected '\\+' or '-'",
    ),
    ("math_shepherd", _with(MS0, "label", MS0["label"] + " more"), "label", "extra text"),
    ("math_shepherd", _with(MS0, "input", "No steps at all"), "input", "no 'ки' step tag"),
    ("processbench", _with(PB0, "label", 2), "label", "must be -1 or a step index in 0..1"),
    ("processbench", _with(PB0, "final_answer_correct", "no"), "final_answer_correct", "true or false"),
    ("processbench", _with(PB0, "steps.1", 7), "steps[1]", "must be a string"),
    ("processbench", _with(PB0, "id", KeyError), "id", "missing required field"),
    ("gsm8k", _with(GSM0, "answer", "Ann has 6 pens.\nThe answer is 6"), "answer", "no final-answer line"),
    ("gsm8k", _with(GSM0, "answer", "#### 6"), "answer", "no solution steps"),
    ("gsm8k", _with(GSM0, "answer", "x\n#### 6\nmore"), "answer", "text after"),
    ("gsm8k", _with(GSM0, "question", KeyError), "question", "missing required field"),
    ("gsm8k", _with(GSM0, "answer", 6), "answer", "must be a string"),
]


@pytest.mark.parametrize(("name", "line", "field", "message"), BAD)
def test_bad_input_names_file_line_and_field(tmp_path, name, line, field, message):
    src = write_lines(tmp_path / "bad.jsonl", [FIXTURES[name][0], line])  # line 1 good, line 2 bad
    with pytest.raises(RecordError, match=message) as e:
        list(FORMATS[name].read(src))
    assert (e.value.path, e.value.line, e.value.field) == (str(src), 2, field)
    where = f"{src}:2:" + (f" field '{field}':" if field else "")
    assert str(e.value).startswith(where)


# ---------------------------------------------------------------------------------------------------------------------
# Sample files, datasets, the command


def test_committed_samples_equal_what_the_code_writes(tmp_path):
    write_samples(tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in SAMPLES.iterdir() if not p.name.startswith("."))
    for name in written:
        if name.endswith(".jsonl"):
            assert (SAMPLES / name).read_bytes() == (tmp_path / name).read_bytes(), f"data/samples/{name} is stale"
    # Parquet bytes depend on the pyarrow version; the records must not.
    assert [r.to_dict() for r in iter_records(SAMPLES / "records.parquet")] == [r.to_dict() for r in RECORDS]


@pytest.mark.parametrize(
    ("name", "columns"), [("trl.jsonl", {"prompt", "completions", "labels"}), ("records.jsonl", None)]
)
def test_datasets_loads_the_samples(tmp_path, name, columns):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("json", data_files=str(SAMPLES / name), split="train", cache_dir=str(tmp_path))
    assert ds.num_rows == len(RECORDS)
    assert (columns or {"id", "problem", "steps", "labels", "values"}) <= set(ds.column_names)
    assert ds[2]["labels"][:2] == [True, False]


@pytest.fixture
def convert_only(monkeypatch):
    # The parser imports every command's module; keep this test about `convert` whatever state the others are in.
    monkeypatch.setattr(prm.cli, "COMMANDS", {"convert": prm.cli.COMMANDS["convert"]})


def test_cli_convert_gsm8k_to_record(tmp_path, capsys, convert_only):
    src = write_lines(tmp_path / "in.jsonl", FIXTURES["gsm8k"])
    out = tmp_path / "out" / "records.jsonl"
    assert prm.cli.main(["convert", "--from", "gsm8k", "--to", "record", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read 2 records" in printed and "wrote 2" in printed and "skipped 0" in printed
    recs = list(iter_records(out))
    assert [r.id for r in recs] == ["gsm8k-1", "gsm8k-2"] and recs[1].answer == "31"
    cfg = load_config(ConvertConfig, config_path_for(out))
    assert (cfg.src_format, cfg.dst_format, cfg.input, cfg.output) == ("gsm8k", "record", str(src), str(out))


def test_cli_convert_bad_input_leaves_the_old_output(tmp_path, capsys, convert_only):
    src = write_lines(tmp_path / "in.jsonl", [GSM0, _with(GSM0, "answer", "no mark")])
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    assert prm.cli.main(["convert", "--from", "gsm8k", "--to", "trl", str(src), str(out)]) == 2
    assert f"{src}:2: field 'answer'" in capsys.readouterr().err
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_cli_convert_reports_skips(tmp_path, capsys, convert_only):
    out = tmp_path / "out.jsonl"
    args = ["convert", "--from", "record", "--to", "gsm8k", str(SAMPLES / "records.jsonl"), str(out)]
    assert prm.cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 3" in printed and "skipped 2 (2 a step labeled false" in printed
    assert len(read_json_lines(out)) == 3

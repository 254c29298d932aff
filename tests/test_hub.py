"""Hub datasets (`hf:NAME[:CONFIG][@SPLIT]`) wherever records are read: local folders saved in the hub's layouts
(data files, a README naming configs and splits), read offline with `datasets`, each layout mapped by its format
reader; `prm train --train hf:...` on one; bad datasets and bad rows named in one line."""

from __future__ import annotations

import json

import pytest

from prm import cli
from prm.records import RecordError, hub_format, read_records

TRL_ROWS = [
    {
        "prompt": f"Tom has {n} apples and buys 3 more. How many?",
        "completions": [f"{n} + 3 = {n + 3}", "The answer is 9."],
        "labels": [True, n + 3 == 9],
    }
    for n in range(2, 10)
]
PB_ROWS = [
    {
        "id": f"gsm8k-{i}",
        "generator": "m",
        "problem": "Mia has 4 pens and 5 pencils.",
        "steps": ["4 + 5 = 9", "So 9."],
        "final_answer_correct": i % 2 == 0,
        "label": -1 if i % 2 == 0 else 0,
    }
    for i in range(4)
]


def _parquet(rows, path):
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(path))


@pytest.fixture
def trl_hub(tmp_path):
    """A TRL stepwise-supervision dataset as the hub keeps it: data/train-00000-of-00001.parquet."""
    root = tmp_path / "math_shepherd_trl"
    _parquet(TRL_ROWS, root / "data" / "train-00000-of-00001.parquet")
    return root


@pytest.fixture
def pb_hub(tmp_path):
    """A ProcessBench-shaped dataset: one split per source named in the README's YAML, as Qwen/ProcessBench does."""
    root = tmp_path / "ProcessBench"
    _parquet(PB_ROWS, root / "gsm8k.parquet")
    _parquet(PB_ROWS[:2], root / "math.parquet")
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: gsm8k\n    path: gsm8k.parquet\n"
        "  - split: math\n    path: math.parquet\n---\n# ProcessBench (a local stand-in)\n"
    )
    return root


def test_trl_layout_is_detected_and_mapped(trl_hub):
    spec = f"hf:{trl_hub}"
    assert hub_format(spec) == "trl"
    recs = read_records(spec)
    assert len(recs) == 8 and recs[0].source == "trl" and recs[0].steps == ["2 + 3 = 5", "The answer is 9."]
    assert [r.labels[1] for r in recs] == [n + 3 == 9 for n in range(2, 10)]


def test_splits_named_in_the_readme_and_explicit_conversion(pb_hub, tmp_path):
    assert len(read_records(f"hf:{pb_hub}@gsm8k")) == 4 and len(read_records(f"hf:{pb_hub}@math")) == 2
    recs = read_records(f"hf:{pb_hub}@gsm8k")
    assert recs[1].labels == [False, None] and recs[0].labels == [True, True] and recs[0].source == "processbench"
    out = tmp_path / "pb.jsonl"
    args = ["convert", "--from", "processbench", "--to", "record", f"hf:{pb_hub}@gsm8k", str(out)]
    assert cli.main(args) == 0 and len(out.read_text().splitlines()) == 4


def test_train_reads_a_hub_dataset(trl_hub, tmp_path, tiny_model_dir):
    run = tmp_path / "prm"
    args = ["train", "--train", f"hf:{trl_hub}", "--base", str(tiny_model_dir), "--output", str(run)]
    assert cli.main(args + ["--max_steps", "2", "--lora_r", "4", "--eval_every", "0", "--progress", "false"]) == 0
    report = json.loads((run / "train_report.json").read_text())
    assert report["steps"] == 2 and report["data"]["used"] == 8


def test_bad_datasets_and_rows_are_one_line_errors(tmp_path, trl_hub, capsys):
    with pytest.raises(RecordError, match="cannot read the dataset"):
        read_records(f"hf:{tmp_path / 'nowhere'}")
    odd = tmp_path / "odd"
    _parquet([{"question_text": "x", "solution": "y"}], odd / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(RecordError, match="no known layout"):
        read_records(f"hf:{odd}")
    bad = tmp_path / "bad"
    rows = [dict(r) for r in TRL_ROWS]
    rows[2]["labels"] = [True]
    _parquet(rows, bad / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(RecordError, match=r":3: field 'labels'"):
        read_records(f"hf:{bad}")
    capsys.readouterr()
    assert cli.main(["validate", f"hf:{bad}"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels" in err[0] and "Traceback" not in err[0]

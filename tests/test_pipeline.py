"""End to end through the command line, as a user runs it, asserting on the files each command writes."""

from __future__ import annotations

import json
import subprocess
import sys

from prm import cli
from prm.answers import extract_answer
from prm.config import config_path_for
from prm.records import read_records


def test_synth_convert_validate(tmp_path, capsys):
    problems = tmp_path / "problems.jsonl"
    assert cli.main(["synth", "--n", "40", "--seed", "3", "--max-steps", "6", "--output", str(problems)]) == 0
    recs = read_records(problems)
    assert len(recs) == 40 and all(r.source == "synth" and extract_answer(r.steps[-1]) == r.answer for r in recs)
    assert "n: 40" in config_path_for(problems).read_text()

    trl = tmp_path / "problems.trl.jsonl"
    assert cli.main(["convert", "--from", "record", "--to", "trl", str(problems), str(trl)]) == 0
    rows = [json.loads(line) for line in trl.read_text().splitlines()]
    assert [r["completions"] for r in rows] == [r.steps for r in recs]

    back = tmp_path / "back.parquet"
    assert cli.main(["convert", "--from", "trl", "--to", "record", str(trl), str(back)]) == 0
    assert [r.steps for r in read_records(back)] == [r.steps for r in recs]

    capsys.readouterr()
    assert cli.main(["validate", str(back), "--json", "true"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 40


def test_errors_exit_2_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "problem": "p", "steps": ["x"]}\n{"id": "b", "problem": "p", "steps": ["x"], "labels": [1]}\n'
    )
    assert cli.main(["validate", str(bad)]) == 2
    assert f"{bad}:2: field 'labels[0]'" in capsys.readouterr().err
    assert cli.main(["synth", "--n", "ten"]) == 2
    assert "key 'n' expects int" in capsys.readouterr().err
    assert cli.main(["synth", "--min_steps", "5", "--max_steps", "2", "--output", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_demo_writes_its_files(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "demo"
    sizes = {
        "train_n": 60,
        "test_n": 20,
        "policy_problems": 3,
        "samples": 4,
        "max_new_tokens": 8,
        "label_problems": 2,
        "label_samples": 2,
        "label_k": 2,
        "pairs": 6,
        "train_tokens": 600,
        "sft_problems": 12,
        "sft_tokens": 600,
        "trials": 5,
        "search_problems": 2,
        "search_width": 2,
        "search_expand": 2,
    }
    args = ["--out_dir", str(out), "--model", str(tiny_model_dir)]
    args += [x for k, v in sizes.items() for x in (f"--{k}", str(v))]
    assert cli.main(["demo", *args]) == 0
    assert len(read_records(out / "problems-train.jsonl")) == 60
    assert len(read_records(out / "problems-test.jsonl")) == 20
    assert (out / "config.yaml").exists() and (out / "problems-test.trl.jsonl").exists()
    assert len(read_records(out / "pool.jsonl")) == 3 * 4
    assert all(r.meta["label"]["method"] == "gold" for r in read_records(out / "pool.gold.jsonl"))
    labeled = read_records(out / "labeled.jsonl")
    assert len(labeled) == 2 * 2 and all(r.meta["label"]["method"] == "binary" for r in labeled)
    assert len(read_records(out / "train.jsonl")) == 2 * 6 + 4
    policy = json.loads((out / "policy" / "policy.json").read_text())
    assert policy["base"] == str(tiny_model_dir) and policy["train_report"]["tokens"] >= 600
    assert all(r.meta["policy"] == str(out / "policy") for r in read_records(out / "pool.jsonl"))
    for model in ("prm", "orm"):  # on the fine-tuned policy (prm_backbone: policy), with the whole step's likelihood
        spec = json.loads((out / model / "prm_spec.json").read_text())
        assert spec["base"] == str(out / "policy") and spec["feature_set"] == "step"
    bon = json.loads((out / "bon" / "bon.json").read_text())
    assert bon["problems"] == 3 and bon["ns"] == [1, 2, 4]
    assert {"prm-min", "orm-last", "loglik-min", "calc", "majority", "judge-vote", "oracle"} <= set(bon["selectors"])
    assert sum(bon["first_errors"].values()) == sum(
        r.first_error() is not None for r in read_records(out / "pool.gold.jsonl")
    )
    for f in ("bon.png", "bon.md", "report.html", "pool.scored.jsonl"):
        assert (out / "bon" / f).stat().st_size > 0
    search = json.loads((out / "search" / "search.json").read_text())
    assert search["problems"] == 2 and search["bon_equal_tokens"]["n"] >= 1
    printed = capsys.readouterr().out
    assert "| N | prm-min |" in printed and str(out / "bon" / "report.html") in printed
    assert "every step is right by the gold labeler" in printed
    assert (out / "demo.md").read_text() in printed


def test_console_entry_point_runs():
    # `python -m prm` is what the `prm` console script calls; check it as a real process once.
    done = subprocess.run([sys.executable, "-m", "prm", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "synth" in done.stdout

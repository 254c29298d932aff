"""Self-improvement rounds (`prm improve`): the filters and figures as pure functions, and one tiny run end to end,
killed and resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from prm import cli
from prm.improve.report import markdown
from prm.improve.rounds import heldout_metrics, select, share_cut
from prm.records import StepRecord, read_records


def _trace(pid: str, k: int, steps: list[str], prediction: str | None, correct: bool) -> StepRecord:
    meta = {"problem_id": pid, "sample": k, "prediction": prediction, "correct": correct, "tokens": 10}
    return StepRecord(f"{pid}/{k}", "q", steps, answer="7", meta=meta)


def test_select_keeps_distinct_accepted_solutions_up_to_the_cap():
    traces = [
        _trace("a", 0, ["3 + 4 = 7.", "The answer is 7."], "7", True),
        _trace("a", 1, ["3 + 4 = 7.", "The answer is 7."], "7", True),  # the same text again
        _trace("a", 2, ["4 + 3 = 7.", "The answer is 7."], "7", True),
        _trace("a", 3, ["7 - 0 = 7.", "The answer is 7."], "7", True),  # over the cap of 2
        _trace("b", 0, ["The answer is 6."], "6", False),
    ]
    kept = select(traces, lambda t: t.meta["correct"], max_per_problem=2)
    assert [t.id for t in kept] == ["a/0", "a/2"]
    assert select(traces, lambda t: False, 2) == []


def test_share_cut_keeps_the_top_share_and_at_least_one():
    assert share_cut([0.2, 0.9, 0.4, 0.7], 0.5) == 0.7 and share_cut([0.2, 0.9, 0.4, 0.7], 1.0) == 0.2
    assert share_cut([0.3], 0.1) == 0.3 and share_cut([0.5, 0.5, 0.1], 0.34) == 0.5  # ties at the cut all pass
    assert share_cut([], 0.5) == float("inf")


def test_prm_filter_by_share_ranks_right_answers_whatever_the_scale(tmp_path):
    from prm.improve.command import acceptor
    from prm.improve.config import ImproveConfig
    from prm.records import write_records

    traces = [
        _trace("a", 0, ["3 + 4 = 7.", "The answer is 7."], "7", True),
        _trace("a", 1, ["4 + 3 = 7.", "The answer is 7."], "7", True),
        _trace("b", 0, ["7 - 0 = 7.", "The answer is 7."], "7", True),
        _trace("b", 1, ["The answer is 6."], "6", False),
    ]
    samples = tmp_path / "samples.jsonl"
    write_records(traces, samples)
    mins = {"a/0": 0.30, "a/1": 0.10, "b/0": 0.35, "b/1": 0.90}  # all right answers below a 0.5 threshold
    scored = [
        StepRecord(t.id, t.problem, t.steps, answer=t.answer, meta=t.meta | {"scores": [mins[t.id]] * len(t.steps)})
        for t in traces
    ]
    write_records(scored, tmp_path / "scored.jsonl")
    base = {"policy": "p", "problems": "x", "heldout": "y", "output": "z"}
    by_threshold = acceptor(ImproveConfig(**base, keep_share=None), "prm", samples, traces, tmp_path, "unused")
    assert [t.id for t in traces if by_threshold(t)] == []
    by_share = acceptor(ImproveConfig(**base, keep_share=0.5), "prm", samples, traces, tmp_path, "unused")
    assert [t.id for t in traces if by_share(t)] == ["a/0", "b/0"]  # the better 2 of 3 right answers; never b/1
    # prm@S names its own share, whatever keep_share says.
    named = acceptor(ImproveConfig(**base, keep_share=0.5, filters=("prm@0.3",)), "prm@0.3", samples, traces,
                     tmp_path, "unused")  # fmt: skip
    assert [t.id for t in traces if named(t)] == ["b/0"]
    with pytest.raises(ValueError, match="keep_share"):
        ImproveConfig(**base, keep_share=0.0)
    for bad in ("prm@0", "prm@1.5", "prm@x", "prm@", "calc@0.5"):
        with pytest.raises(ValueError, match="prm@S"):
            ImproveConfig(**base, filters=(bad,))


def test_calc_filter_drops_right_answers_reached_through_an_arithmetic_slip(tmp_path):
    from prm.improve.command import acceptor
    from prm.improve.config import ImproveConfig

    traces = [
        _trace("a", 0, ["3 + 4 = 7 pens.", "The answer is 7."], "7", True),
        _trace("a", 1, ["2 - 10 = 10 pens.", "10 - 3 = 7 pens.", "The answer is 7."], "7", True),  # a lucky slip
        _trace("a", 2, ["Tom has 7 pens.", "The answer is 7."], "7", True),  # nothing to check: it passes
        _trace("a", 3, ["3 + 3 = 6 pens.", "The answer is 6."], "6", False),  # checks, but the answer is wrong
    ]
    cfg = ImproveConfig(policy="p", problems="x", heldout="y", output="z")
    keep = acceptor(cfg, "calc", tmp_path / "unused.jsonl", traces, tmp_path, None)
    assert [t.id for t in traces if keep(t)] == ["a/0", "a/2"]


def test_heldout_metrics():
    traces = [
        _trace("a", 0, ["s"], "7", True),
        _trace("a", 1, ["s"], "6", False),
        _trace("a", 2, ["s"], "6", False),
        _trace("b", 0, ["s"], "7", True),
        _trace("b", 1, ["s"], "7", True),
        _trace("b", 2, ["s"], None, False),
    ]
    labels = {t.id: [True] for t in traces} | {"b/1": [False]}  # b/1: right answer through a wrong step
    m = heldout_metrics(traces, labels)
    assert m["k"] == 3 and m["pass@1"] == pytest.approx(3 / 6) and m["pass@3"] == 1.0
    assert m["maj@3"] == pytest.approx(0.5)  # a: "6" wins the vote, b: "7"
    assert m["right"] == 3 and m["right_with_wrong_step"] == 1 and m["wrong_step_share"] == pytest.approx(1 / 3)
    assert "wrong_step_share" not in heldout_metrics(traces)


def test_markdown_rows():
    rows = [
        {"filter": "start", "round": 0, "k": 2, "pass@1": 0.25, "maj@2": 0.3, "pass@2": 0.4, "wrong_step_share": None},
        {"filter": "prm", "round": 1, "k": 2, "pass@1": 0.5, "maj@2": 0.5, "pass@2": 0.6, "wrong_step_share": 0.1,
         "right_with_wrong_step": 2, "train_accuracy": 0.2, "kept": 9, "kept_wrong_step": 1},
    ]  # fmt: skip
    table = markdown(rows)
    assert "| start | 0 | 25.0 | 30.0 | 40.0 | - | - | - | - |" in table
    assert "| prm | 1 | 50.0 | 50.0 | 60.0 | 10.0% (2) | 20.0% | 9 | 1 |" in table


def _problem(i: int, start: int, add: int) -> dict:
    meta = {"chain": [start, start + add], "ops": ["+"], "operands": [add], "difficulty": 1}
    text = f"Tom has {start} apples. He buys {add} more. How many apples does Tom have now?"
    steps = [f"He buys {add} more, so he has {start} + {add} = {start + add} apples.", f"The answer is {start + add}."]
    return {"id": f"p{i}", "problem": text, "steps": steps, "answer": str(start + add), "meta": meta}


@pytest.fixture
def answering(tmp_path, tiny_model_dir):
    """Problems, held-out problems and a tiny policy that has learnt to write "The answer is 5.": right on the
    problems whose answer is 5, wrong on the others, so every filter has something to keep and to drop."""
    records = [_problem(i, 2, 3) if i % 2 else _problem(i, 3, 3) for i in range(6)]
    problems, heldout, gold = tmp_path / "problems.jsonl", tmp_path / "heldout.jsonl", tmp_path / "gold.jsonl"
    problems.write_text("".join(json.dumps(r) + "\n" for r in records))
    heldout.write_text("".join(json.dumps(r | {"id": f"h{i}"}) + "\n" for i, r in enumerate(records[:3])))
    fives = [r | {"steps": ["The answer is 5."]} for r in records if r["answer"] == "5"]
    gold.write_text("".join(json.dumps(r) + "\n" for r in fives))
    # labelled records beside the PRM's own labelled samples (prm_extra): one right and one wrong solution
    extra = [_problem(9, 1, 1) | {"id": "x0", "labels": [True, True]}]
    extra.append(extra[0] | {"id": "x1", "steps": ["He buys 1 more, so he has 1 + 1 = 3 apples.", "The answer is 3."],
                             "labels": [False, None]})  # fmt: skip
    (tmp_path / "extra.jsonl").write_text("".join(json.dumps(r) + "\n" for r in extra))
    policy = tmp_path / "policy"
    args = ["sft", "--train", str(gold), "--base", str(tiny_model_dir), "--output", str(policy), "--lr", "1e-2"]
    assert cli.main([*args, "--max_steps", "80", "--lora", "false", "--bf16", "false", "--progress", "false"]) == 0
    return policy, problems, heldout


def _args(policy, problems, heldout, out):
    args = ["improve", "--policy", str(policy), "--problems", str(problems), "--heldout", str(heldout)]
    args += ["--output", str(out), "--filters", "outcome,prm,gold", "--rounds", "2", "--k", "3", "--eval_k", "2"]
    args += [
        "--prm_traces",
        "4",
        "--label_k",
        "1",
        "--prm_tokens",
        "300",
        "--sampling.max_new_tokens",
        "12",
        "--threshold",
        "0",
        "--prm_feature_set",
        "equation",
        "--prm_extra",
        str(problems.parent / "extra.jsonl"),
    ]
    return args + ["--sft_lora_r", "4", "--bf16", "false", "--progress", "false"]


def test_improve_end_to_end_killed_and_resumed(tmp_path, answering, capsys):
    full = tmp_path / "full"
    assert cli.main(_args(*answering, full)) == 0
    result = json.loads((full / "improve.json").read_text())
    rows = result["rows"]
    assert [(r["filter"], r["round"]) for r in rows] == [("start", 0)] + [
        (f, r) for f in ("outcome", "prm", "gold") for r in (1, 2)
    ]
    assert all(0.0 <= r["pass@1"] <= 1.0 and r["k"] == 2 for r in rows)
    assert rows[0]["pass@1"] > 0.2  # the policy answers "5": right on two of the three held-out problems
    assert all(r["kept"] > 0 for r in rows[1:])  # so every round keeps some samples and fine-tunes on them
    for f in ("outcome", "prm", "gold"):
        policy = json.loads((full / f / "round2" / "policy" / "policy.json").read_text())
        assert policy["base"] == str(full / f / "round1" / "policy")  # each round adapts the previous one
    kept = read_records(full / "outcome" / "round1" / "kept.jsonl")
    assert all(t.meta["correct"] for t in kept) and len(kept) <= 6 * 2  # max_per_problem
    for f in ("improve.md", "improve.png", "samples-round1.jsonl", "prm/model/prm_spec.json", "prm/labels.jsonl"):
        assert (full / f).stat().st_size > 0
    assert len(read_records(full / "samples-round1.jsonl")) == 6 * 3
    assert len(read_records(full / "prm" / "labels.jsonl")) == 4
    assert (full / "prm" / "round1" / "scored.jsonl").exists()  # the prm filter scored its samples
    prm_config = yaml.safe_load((full / "prm" / "model" / "config.yaml").read_text())
    assert prm_config["base"] == str(answering[0]) and prm_config["feature_set"] == "equation"  # the policy as backbone
    assert prm_config["train"] == str(full / "prm" / "train.jsonl")  # its labelled samples, then the extra records
    assert [r.id for r in read_records(full / "prm" / "train.jsonl")][-2:] == ["x0", "x1"]
    # Killed at any point (here as soon as the PRM's labels are being written) and rerun: the same figures.
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "prm", *_args(*answering, killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = killed / "prm" / "labels.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not marker.exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "improve.json").exists()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    again = json.loads((killed / "improve.json").read_text())["rows"]
    assert again == rows
    assert (killed / "samples-round1.jsonl").read_bytes() == (full / "samples-round1.jsonl").read_bytes()
    # A filter added to a finished run resumes it: the chain already there is reused, the new one is what a run with
    # both filters from the start would have made.
    added = tmp_path / "added"
    only = [*_args(*answering, added), "--filters", "outcome"]
    assert cli.main(only) == 0
    first_kept = (added / "outcome" / "round2" / "kept.jsonl").stat().st_mtime_ns
    assert cli.main([*_args(*answering, added), "--filters", "outcome,gold,calc,prm@1.0"]) == 0
    assert (added / "outcome" / "round2" / "kept.jsonl").stat().st_mtime_ns == first_kept
    grown = json.loads((added / "improve.json").read_text())["rows"]
    assert [r for r in grown if r["filter"] in ("start", "outcome", "gold")] == [
        r for r in rows if r["filter"] != "prm"
    ]
    assert [r["round"] for r in grown if r["filter"] == "calc"] == [1, 2]
    # prm@1.0 trains the run's PRM and keeps every right answer of round 1, as outcome does.
    assert (added / "prm" / "model" / "prm_spec.json").exists()
    assert (added / "prm@1.0" / "round1" / "kept.jsonl").read_bytes() == (
        added / "outcome" / "round1" / "kept.jsonl"
    ).read_bytes()
    # A rerun with other settings on the same output is refused: it would mix two runs.
    assert cli.main([*_args(*answering, full), "--k", "5"]) == 2
    assert "other settings (k: 3)" in capsys.readouterr().err
    # The summary over seeds reads a real run's files; the killed-and-resumed copy has the same seed, so not both.
    report = tmp_path / "seeds"
    assert cli.main(["improve-report", "--runs", f"[{full}]", "--output", str(report)]) == 0
    summary = json.loads((report / "seeds.json").read_text())
    assert [r["mean_pass@1"] for r in summary["rows"]] == [r["pass@1"] for r in rows]
    assert [v["filter"] for v in summary["versus"]] == ["prm", "gold"] and summary["problems"] == 3
    assert cli.main(["improve-report", "--runs", f"[{full}, {killed}]", "--output", str(report)]) == 2
    assert "seeds [0, 0] repeat" in capsys.readouterr().err

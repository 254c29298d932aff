"""`prm eval`: the report of a tiny scored file whose every figure is worked out by hand below, the threshold chosen on
--val, the floor fitted on --train, the reliability PNG, log-probability scores, bad input, and the pipeline
synth -> score-baseline -> eval on the tiny model."""

from __future__ import annotations

import json

import pytest

from prm import cli
from prm.config import config_path_for
from prm.eval import EvalConfig, evaluate, run
from prm.records import RecordError, StepRecord, write_jsonl, write_records
from prm.score import attach_scores


def _rec(rid: str, labels, scores, kind: str | None = None) -> StepRecord:
    steps = [f"step {i}" for i in range(len(labels))]
    meta = {"error": {"kind": kind, "step": labels.index(False)}} if kind else {}
    return attach_scores(StepRecord(rid, "p", steps, list(labels), meta=meta), scores, "fake")


# Labeled steps: correct 0.9 0.8 0.7 0.95 0.4 0.85; first errors 0.2 (off_by_k) and 0.6 (wrong_operation).
SCORED = [
    _rec("r1", [True, True], [0.9, 0.8]),
    _rec("r2", [True, False, None], [0.7, 0.2, 0.1], "off_by_k"),
    _rec("r3", [False, None], [0.6, 0.3], "wrong_operation"),
    _rec("r4", [True, True, True], [0.95, 0.4, 0.85]),
]
# Validation: the erroneous v1 is found for thresholds in (0.5, 0.9], the correct v2 kept for <= 0.8: best is 0.8.
VAL = [_rec("v1", [True, False], [0.9, 0.5], "off_by_k"), _rec("v2", [True], [0.8])]


def _write(tmp_path, name, records):
    path = tmp_path / name
    write_records(records, path)
    return path


def test_report_numbers_by_hand(tmp_path, capsys):
    scored = _write(tmp_path, "scored.jsonl", SCORED)
    out = tmp_path / "report.json"
    assert cli.main(["eval", "--input", str(scored), "--output", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["scorer"] == "fake" and rep["records"] == 4 and rep["steps"] == 10 and rep["labeled_steps"] == 8
    # step AUROC: 0.2 is below all 6 correct steps, 0.6 below 5 of them (not 0.4): 11 of 12 pairs
    assert rep["step"]["auroc"] == pytest.approx(11 / 12)
    # at 0.5 (probabilities): wrong predictions 0.2 (right) and 0.4 (a correct step), 0.6 passes: 6 of 8 right
    assert rep["step"]["threshold"] == 0.5 and rep["step"]["threshold_from"].startswith("0.5")
    assert rep["step"]["accuracy"] == pytest.approx(0.75)
    assert rep["step"]["f1_wrong"] == pytest.approx(0.5)  # precision 1/2, recall 1/2
    assert (rep["step"]["correct"], rep["step"]["wrong"]) == (6, 2)
    fe = rep["first_error"]
    assert fe["auroc"] == pytest.approx({"all": 11 / 12, "off_by_k": 1.0, "wrong_operation": 5 / 6})
    assert fe["counts"] == {"correct": 6, "all": 2, "off_by_k": 1, "wrong_operation": 1}
    # ProcessBench on the input itself: r2 found for t in (0.2, 0.7], r3 for t > 0.6, r1 kept for t <= 0.8, r4 for
    # t <= 0.4; the best F1 is 2/3 (one accuracy 1, the other 1/2), first reached at the score 0.3
    pb = rep["processbench"]
    assert pb["threshold_from"] == "input" and pb["in_sample"] is True
    assert pb["threshold"] == pytest.approx(0.3) and pb["f1"] == pytest.approx(2 / 3)
    assert (pb["acc_erroneous"], pb["acc_correct"], pb["n_erroneous"], pb["n_correct"]) == (0.5, 1.0, 2, 2)
    # ECE, 10 bins: |gap| x count = .075*2 (bin 9) + .175*2 (bin 8) + .3 + .6 (0.6 wrong) + .6 (0.4 right) + .2
    cal = rep["calibration"]
    assert cal["ece"] == pytest.approx(2.2 / 8)
    assert sum(b["count"] for b in cal["bins"]) == 8 and len(cal["bins"]) == 10
    png = tmp_path / cal["plot"]
    assert png == tmp_path / "report.reliability.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    floor = rep["floor"]
    assert floor["fit_on"] == "input" and floor["in_sample"] is True
    assert 0 <= floor["step_auroc"] <= 1 and set(floor["first_error_auroc"]) == {"all", "off_by_k", "wrong_operation"}
    assert config_path_for(out).exists()
    table = capsys.readouterr().out
    assert "| step AUROC | 0.917 |" in table and "wrong_operation" in table and "in-sample" in table


def test_threshold_from_val_and_floor_from_train(tmp_path):
    scored = _write(tmp_path, "scored.jsonl", SCORED)
    val = _write(tmp_path, "val.jsonl", VAL)
    # a floor that has learned "step 0 is always right, step 1 always wrong"
    train = [StepRecord(f"t{i}", "p", ["a", "b"], [True, False]) for i in range(50)]
    train_path = _write(tmp_path, "train.jsonl", train)
    out = tmp_path / "r.json"
    rep = run(EvalConfig(input=str(scored), output=str(out), val=str(val), train=str(train_path)))
    pb = rep["processbench"]
    assert pb["threshold_from"] == "val" and pb["in_sample"] is False
    assert pb["threshold"] == pytest.approx(0.8) and pb["val_f1"] == pytest.approx(1.0)
    # at 0.8 on the input: r3 found (0.6), r2 flagged too early (0.7), r1 kept, r4 flagged (0.4)
    assert (pb["acc_erroneous"], pb["acc_correct"], pb["f1"]) == (0.5, 0.5, 0.5)
    floor = rep["floor"]
    assert floor["fit_on"] == "train" and floor["in_sample"] is False
    # the floor scores step 0 ~1 and step 1 ~0: r2's error at step 1 sits below every correct step 0, but r4's
    # correct step 1 ties it, and r3's error at step 0 scores like the correct steps 0
    assert floor["first_error_auroc"]["off_by_k"] > floor["first_error_auroc"]["wrong_operation"]
    assert json.loads(out.read_text())["train"] == str(train_path)


def test_explicit_threshold_and_log_probability_scores(tmp_path):
    logp = [
        _rec(r.id, r.labels, [x - 1.0 for x in r.meta["scores"]], r.meta.get("error", {}).get("kind")) for r in SCORED
    ]
    plot = tmp_path / "never.png"
    rep = evaluate(logp, [r.meta["scores"] for r in logp], plot=plot)
    assert rep["probabilities"] is False and rep["calibration"] is None and not plot.exists()
    assert any("not probabilities" in n for n in rep["notes"])
    # the step threshold falls back to the ProcessBench one; a shift of every score moves it and nothing else
    assert rep["step"]["threshold"] == pytest.approx(0.3 - 1.0) and rep["step"]["threshold_from"].startswith("the ")
    assert rep["step"]["auroc"] == pytest.approx(11 / 12) and rep["processbench"]["f1"] == pytest.approx(2 / 3)
    fixed = evaluate(SCORED, [r.meta["scores"] for r in SCORED], threshold=0.65)
    assert fixed["step"]["threshold_from"] == "--threshold" and fixed["step"]["accuracy"] == pytest.approx(7 / 8)


def test_one_class_only_gives_nulls_and_notes():
    recs = [_rec("a", [True, True], [0.9, 0.8]), _rec("b", [True, None], [0.7, 0.1])]
    rep = evaluate(recs, [r.meta["scores"] for r in recs])
    assert rep["step"]["auroc"] is None and rep["first_error"]["auroc"] == {} and rep["processbench"] is None
    assert rep["step"]["accuracy"] == 1.0 and rep["step"]["f1_wrong"] is None
    assert len(rep["notes"]) >= 2
    with pytest.raises(ValueError, match="no labeled step"):
        evaluate([_rec("c", [None], [0.5])], [[0.5]])


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d["meta"].pop("scores"), "meta.scores", "missing"),
        (lambda d: d["meta"].update(scores=[0.5]), "meta.scores", "has 1 entries but steps has 3"),
        (lambda d: d["meta"].update(scores=[0.5, "x", 0.1]), "meta.scores[1]", "finite number"),
    ],
)
def test_bad_scores_name_file_line_and_field(tmp_path, capsys, change, field, message):
    rows = [json.loads(json.dumps(r.to_dict())) for r in SCORED]  # a deep copy: SCORED is shared
    change(rows[1])
    path = tmp_path / "bad.jsonl"
    write_jsonl(rows[:1], path)
    with open(path, "a") as f:
        f.write("\n")  # a blank line: the bad record sits on line 3, not at index 2
    with open(path, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows[1:])
    with pytest.raises(RecordError) as e:
        run(EvalConfig(input=str(path), output=str(tmp_path / "r.json")))
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 3, field)
    assert message in str(e.value)
    assert cli.main(["eval", "--input", str(path), "--output", str(tmp_path / "r.json")]) == 2
    assert f"bad.jsonl:3: field '{field}'" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_bad_val_and_unlabeled_train(tmp_path):
    scored = _write(tmp_path, "scored.jsonl", SCORED)
    unscored = _write(tmp_path, "val.jsonl", [StepRecord("v", "p", ["a"], [True])])
    with pytest.raises(RecordError, match=r"val\.jsonl:1: field 'meta\.scores'"):
        run(EvalConfig(input=str(scored), output=str(tmp_path / "r.json"), val=str(unscored)))
    unlabeled = _write(tmp_path, "train.jsonl", [StepRecord("t", "p", ["a"])])
    with pytest.raises(RecordError, match=r"train\.jsonl: field 'labels': no labeled step"):
        run(EvalConfig(input=str(scored), output=str(tmp_path / "r.json"), train=str(unlabeled)))


def test_synth_score_baseline_eval_end_to_end(tmp_path, tiny_model_dir):
    traces = tmp_path / "test.jsonl"
    train = tmp_path / "train.jsonl"
    assert cli.main(["synth", "--split", "test", "--n", "30", "--corrupt", "0.5", "--output", str(traces)]) == 0
    assert cli.main(["synth", "--n", "60", "--corrupt", "0.5", "--output", str(train)]) == 0
    scored = tmp_path / "scored.jsonl"
    model = ["--model", str(tiny_model_dir), "--bf16", "false", "--progress", "false"]
    assert cli.main(["score-baseline", "--input", str(traces), "--output", str(scored), *model]) == 0
    out = tmp_path / "eval" / "report.json"
    assert cli.main(["eval", "--input", str(scored), "--train", str(train), "--output", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["scorer"] == "loglik-result" and rep["records"] == 30 and rep["calibration"] is None
    assert 0 <= rep["first_error"]["auroc"]["all"] <= 1 and rep["floor"]["fit_on"] == "train"
    assert not (tmp_path / "eval" / "report.reliability.png").exists()


def test_values_calibration_against_rollout_shares(tmp_path, capsys):
    """Steps with `values` (shares of fresh rollouts that reached the answer) get the scores' calibration as values:
    ECE by hand, the rollout-valued steps apart from the answer line (whose value is exact), and a PNG."""
    a = StepRecord("a", "p", ["s1", "s2", "The answer is 3."], [True, True, True], [0.75, 0.5, 1.0])
    a.meta["label"] = {"method": "mc", "outcomes": ["1101", "1010", None]}
    b = StepRecord("b", "p", ["s1", "s2"], [True, False], [0.25, None])
    records = [attach_scores(a, [0.7, 0.7, 0.95], "q"), attach_scores(b, [0.3, 0.2], "q")]
    scored = _write(tmp_path, "scored.jsonl", records)
    out = tmp_path / "q.json"
    assert cli.main(["eval", "--input", str(scored), "--output", str(out)]) == 0
    v = json.loads(out.read_text())["values"]
    # bins of 0.1: {0.3 vs 0.25} {0.7, 0.7 vs 0.75, 0.5} {0.95 vs 1.0}: (0.05 + |0.7 - 0.625| * 2 + 0.05) / 4
    assert v["steps"] == 4 and v["ece"] == pytest.approx((0.05 + 0.15 + 0.05) / 4)
    assert v["mae"] == pytest.approx((0.05 + 0.2 + 0.05 + 0.05) / 4)
    assert v["rollout_steps"] == 3 and v["ece_rollout_steps"] == pytest.approx((0.05 + 0.15) / 3)
    assert (tmp_path / v["plot"]).read_bytes()[:4] == b"\x89PNG" and v["plot"] == "q.values.png"
    assert "ECE against values (4 steps)" in capsys.readouterr().out


def test_no_values_no_values_section(tmp_path):
    out = tmp_path / "r.json"
    assert cli.main(["eval", "--input", str(_write(tmp_path, "s.jsonl", SCORED)), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["values"] is None and not (tmp_path / "r.values.png").exists()


def test_values_calibration_by_group(tmp_path, capsys):
    """`--group_by` breaks the rollout-valued steps down by a record field: counts, means and ECE by hand."""
    a = StepRecord("a", "p", ["s1", "s2", "The answer is 3."], [True, True, True], [0.75, 0.5, 1.0])
    a.meta |= {"label": {"method": "mc", "outcomes": ["1101", "1010", None]}, "problem": {"difficulty": 2}}
    b = StepRecord("b", "p", ["s1", "s2"], [True, False], [0.25, None], meta={"problem": {"difficulty": 3}})
    c = StepRecord("c", "p", ["s1"], [True], [0.5])
    records = [attach_scores(a, [0.7, 0.7, 0.95], "q"), attach_scores(b, [0.3, 0.2], "q"), attach_scores(c, [0.4], "q")]
    scored = _write(tmp_path, "scored.jsonl", records)
    out = tmp_path / "q.json"
    assert (
        cli.main(["eval", "--input", str(scored), "--output", str(out), "--group_by", "meta.problem.difficulty"]) == 0
    )
    v = json.loads(out.read_text())["values"]
    assert v["group_by"] == "meta.problem.difficulty" and list(v["by_group"]) == ["2", "3", "(missing)"]
    two, three, missing = v["by_group"].values()
    assert two["steps"] == 2 and two["mean_score"] == pytest.approx(0.7) and two["mean_value"] == pytest.approx(0.625)
    assert two["ece"] == pytest.approx(0.075) and three["ece"] == pytest.approx(0.05)
    assert missing == {"steps": 1, "mean_score": pytest.approx(0.4), "mean_value": 0.5, "ece": pytest.approx(0.1)}
    assert "meta.problem.difficulty = 2 (2 rollout steps; mean score 0.700, rollouts 0.625)" in capsys.readouterr().out

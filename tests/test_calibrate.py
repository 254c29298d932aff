"""`prm calibrate`: the Platt fit recovers a known map, maps compose, scorers honour a checkpoint's map, and the
command writes a calibrated copy whose `prm score` output is the map applied to the model's scores."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from prm import cli
from prm.calibrate.core import apply, compose, fit_platt, logits_of
from prm.records import StepRecord, read_records, write_records


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_fit_recovers_the_map_that_made_soft_targets():
    z = np.linspace(-4, 4, 401)
    a, b = fit_platt(z, _sigmoid(2.0 * z - 1.0), l2=0.0)
    assert a == pytest.approx(2.0, abs=1e-4) and b == pytest.approx(-1.0, abs=1e-4)


def test_fit_matches_the_mean_target_and_survives_separable_targets():
    rng = np.random.default_rng(0)
    z = rng.normal(size=500)
    y = (rng.random(500) < 0.3).astype(float)  # targets unrelated to z: the fit is the base rate
    a, b = fit_platt(z, y, l2=0.0)
    assert np.mean(_sigmoid(a * z + b)) == pytest.approx(y.mean(), abs=1e-6)
    a, b = fit_platt([-1.0, -0.5, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0])  # separable: the ridge keeps it finite
    assert math.isfinite(a) and math.isfinite(b) and a > 1.0


def test_compose_equals_applying_twice_and_identity_changes_nothing():
    p = [0.01, 0.2, 0.5, 0.93]
    inner, outer = (0.7, -0.4), (1.8, 0.9)
    assert apply(apply(p, inner), outer) == pytest.approx(apply(p, compose(outer, inner)), abs=1e-9)
    assert apply(p, (1.0, 0.0)) == pytest.approx(p, abs=1e-12)


@pytest.mark.parametrize(
    "args, message",
    [(([], []), "no steps"), (([0.0], [0.5, 0.5]), "1 logits but 2"), (([0.0], [1.5]), r"\[0, 1\]")],
)
def test_fit_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        fit_platt(*args)


def test_logits_of_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        logits_of([-0.3, 0.5])
    assert np.isfinite(logits_of([0.0, 1.0])).all()


def test_scorer_applies_the_checkpoints_map(tiny_prm_dir):
    from prm.score.prm_scorer import PRMScorer

    scorer = PRMScorer.from_pretrained(tiny_prm_dir)
    items = [("Tom has 3 apples and buys 4.", ["3 + 4 = 7 apples.", "The answer is 7."])]
    raw = scorer.score_batch(items)[0]
    scorer.prm.spec = dataclasses.replace(scorer.prm.spec, calibration=(2.5, -1.0))
    mapped = scorer.score_batch(items)[0]
    assert mapped == pytest.approx(apply(raw, (2.5, -1.0)), abs=1e-5)
    assert mapped != pytest.approx(raw, abs=1e-3)


def _calibration_set(path, n=12):
    """Records whose values are high for short solutions and low for long ones: something a map can fit."""
    recs = []
    for i in range(n):
        steps = [f"{i} + {k} = {i + k}." for k in range(1 + i % 3)] + [f"The answer is {i}."]
        values = [0.8 if i % 2 else 0.1] * (len(steps) - 1) + [float(i % 2)]
        recs.append(StepRecord(f"c{i}", f"Problem {i}: add up.", steps, values=values))
    write_records(recs, path)
    return path


def _prm(*args) -> int:
    return cli.main([*map(str, args), "--progress", "false"])


def test_calibrate_end_to_end_writes_a_model_that_scores_calibrated(tmp_path, tiny_prm_dir, capsys):
    data = _calibration_set(tmp_path / "cal.jsonl")
    out = tmp_path / "calibrated"
    assert _prm("calibrate", "--model", tiny_prm_dir, "--input", data, "--output", out) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("prm calibrate: ") and "in-sample ECE" in printed
    report = json.loads((out / "calibration.json").read_text())
    spec = json.loads((out / "prm_spec.json").read_text())
    assert spec["calibration"] == [report["calibration"]["a"], report["calibration"]["b"]]
    assert report["steps"] == sum(len(r.steps) for r in read_records(data))
    # Platt's bias makes the calibrated mean equal the mean target (up to the small ridge)
    assert report["mean_score_after"] == pytest.approx(report["mean_target"], abs=0.01)
    assert report["ece_after_in_sample"] <= report["ece_before_in_sample"]
    for name in ("calibration.before.png", "calibration.after.png", "calibration.config.yaml"):
        assert (out / name).exists(), name
    assert {f.name for f in tiny_prm_dir.iterdir() if f.is_file()} <= {f.name for f in out.iterdir()}
    assert not list(out.glob(".save.*"))

    # the copy scores as the model with the map applied
    raw, cal = tmp_path / "raw.jsonl", tmp_path / "cal-scored.jsonl"
    for model, dest in ((tiny_prm_dir, raw), (out, cal)):
        assert _prm("score", "--model", model, "--input", data, "--output", dest) == 0
    ab = tuple(spec["calibration"])
    for r0, r1 in zip(read_records(raw), read_records(cal), strict=True):
        assert r1.meta["scores"] == pytest.approx(apply(r0.meta["scores"], ab), abs=1e-5)

    # calibrating the calibrated copy again composes: on the same set the second fit is close to the identity
    again = tmp_path / "again"
    assert _prm("calibrate", "--model", out, "--input", data, "--output", again) == 0
    second = json.loads((again / "calibration.json").read_text())
    assert second["fitted"]["a"] == pytest.approx(1.0, abs=0.05)
    assert second["fitted"]["b"] == pytest.approx(0.0, abs=0.05)
    assert second["calibration"]["before"] == list(ab)


def test_calibrate_refuses_bad_input_in_one_line(tmp_path, tiny_prm_dir, capsys):
    unvalued = tmp_path / "plain.jsonl"
    write_records([StepRecord("a", "p", ["1 + 1 = 2.", "The answer is 2."])], unvalued)
    base = ["calibrate", "--model", tiny_prm_dir]
    assert _prm(*base, "--input", unvalued, "--output", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "input: no step of" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    assert _prm(*base, "--input", unvalued, "--output", tiny_prm_dir) == 2
    assert "output: must differ from model" in capsys.readouterr().err
    assert _prm("calibrate", "--model", tmp_path, "--input", unvalued, "--output", tmp_path / "o") == 2
    assert "not a PRM checkpoint" in capsys.readouterr().err


def test_calibrate_refuses_a_backward_fit_and_a_foreign_output(tmp_path, tiny_prm_dir, capsys):
    data = _calibration_set(tmp_path / "cal.jsonl")
    scored = tmp_path / "scored.jsonl"
    assert _prm("score", "--model", tiny_prm_dir, "--input", data, "--output", scored) == 0
    records = read_records(scored)
    every = sorted(x for r in records for x in r.meta["scores"])
    middle = every[len(every) // 2]
    for r in records:  # the lower the score, the likelier the step: the scores rank backwards
        r.values = [1.0 if x < middle else 0.0 for x in r.meta["scores"]]
    write_records(records, tmp_path / "backward.jsonl")
    out = tmp_path / "o"
    assert _prm("calibrate", "--model", tiny_prm_dir, "--input", tmp_path / "backward.jsonl", "--output", out) == 2
    assert "fitted slope" in capsys.readouterr().err and not out.exists()

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert _prm("calibrate", "--model", tiny_prm_dir, "--input", data, "--output", tmp_path / "busy") == 2
    assert "not a prm calibrate output" in capsys.readouterr().err
    assert [f.name for f in (tmp_path / "busy").iterdir()] == ["notes.txt"]

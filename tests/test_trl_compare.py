"""The side-by-side with TRL's PRMTrainer: its pure parts here, our trainer's worker on the tiny model. TRL's own
worker needs trl, which lives only in the bench environment (`make bench-trl`); it runs there."""

from __future__ import annotations

import json

import pytest

from prm.bench import trl_compare as tc
from prm.eval.metrics import auroc_summary
from prm.records import StepRecord


def rec(labels, kind=None, rid="r"):
    steps = [f"step {i}" for i in range(len(labels))]
    meta = {"error": {"kind": kind}} if kind else {}
    return StepRecord(id=rid, problem="Q?", steps=steps, labels=labels, meta=meta)


def test_trl_rows_stop_before_the_first_null_label():
    r = rec([True, False, None, None])
    assert tc.trl_example(r, for_training=True) == {
        "prompt": "Q?\n",
        "completions": ["step 0", "step 1"],
        "labels": [True, False],
    }
    assert tc.trl_example(rec([None, True]), for_training=True) is None
    scoring = tc.trl_example(r, for_training=False)
    assert scoring["completions"] == r.steps and scoring["labels"] == [True] * 4


def test_auroc_summary_has_first_error_kinds_and_step_auroc():
    recs = [
        rec([True, False, None], "off_by_k", "a"),
        rec([False, None], "wrong_operation", "c"),
        rec([True, True, True], rid="b"),
    ]
    scores = [[0.9, 0.1, 0.5], [0.85, 0.5], [0.8, 0.7, 0.95]]
    q = auroc_summary(recs, scores)
    assert q["off_by_k"] == 1.0 and q["wrong_operation"] == 0.5  # 2 of the 4 correct steps score above 0.85
    assert q["all"] == q["steps"] == (4 + 2) / 8


def fake_results(ours_speed, trl_speed, ours_steps_auroc):
    def side(speed, steps):
        return {
            "steps": 10,
            "tokens": 1000,
            "seconds": 1000 / speed,
            "tokens_per_s": speed,
            "peak_memory_mb": 500.0,
            "quality": {
                "in-family": {"all": 0.9, "off_by_k": 0.95, "steps": steps},
                "held-out family": {"all": 0.8, "off_by_k": 0.9, "steps": steps},
            },
            "curve": [(500, 0.7), (1000, 0.9)],
        }

    return {"ours": side(ours_speed, ours_steps_auroc), "trl": side(trl_speed, 0.6)}


@pytest.mark.parametrize("speeds,step_auroc,met", [((700, 300), 0.7, True), ((500, 300), 0.5, False)])
def test_rows_judge_speed_ratio_and_step_auroc_against_trl(tmp_path, speeds, step_auroc, met):
    rows = tc.rows_for(
        fake_results(*speeds, step_auroc),
        {"in-family": {"all": 0.7, "off_by_k": 0.9, "steps": 0.6}, "held-out family": {"all": 0.7}},
        {"in-family": {"all": 0.6}, "held-out family": {"all": 0.55}},
        {"batch": 8},
        tmp_path / "p.png",
    )
    by_name = {r["name"]: r for r in rows}
    speed = by_name["training tokens/s: ours / TRL PRMTrainer"]
    assert speed["value"] == pytest.approx(speeds[0] / speeds[1]) and speed["met"] is met
    assert by_name["step AUROC, every labeled step, in-family: ours"]["met"] is met
    assert by_name["AUROC correct vs first error [all], in-family: ours"]["met"] is True  # 0.9 >= 0.85 and > 0.7
    assert by_name["AUROC correct vs first error [all], held-out family: ours"]["met"] is False  # 0.8 < 0.85
    assert by_name["  AUROC correct vs first error [all], in-family: position-only floor"]["value"] == 0.6
    assert by_name["  AUROC correct vs first error [all], held-out family: position-only floor"]["value"] == 0.55
    assert sum(r["unit"] == "MiB" for r in rows) == 2


def test_our_worker_trains_scores_and_reports(tmp_path, tiny_model_dir):
    from prm.synth import SynthConfig
    from prm.synth import run as synth_run

    for name, split, n, phrasing in (
        ("train", "train", 8, "train"),
        ("val", "test", 6, "train"),
        ("test", "test", 6, "train"),
        ("held", "test", 6, "heldout"),
    ):
        pairs = split == "train"
        path = str(tmp_path / f"{name}.jsonl")
        synth_run(SynthConfig(n=n, split=split, pairs=pairs, corrupt=0.5, max_steps=3, phrasing=phrasing, output=path))
    spec = {
        "folder": str(tmp_path),
        **{k: str(tmp_path / f"{k}.jsonl") for k in ("train", "val")},
        "tests": {"in-family": str(tmp_path / "test.jsonl"), "held-out family": str(tmp_path / "held.jsonl")},
        "base": str(tiny_model_dir),
        "batch": 4,
        "max_length": 256,
        "steps": 4,
        "lr": 2e-4,
        "warmup": 0.0,
        "bf16": False,
        "eval_every": 2,
        "seed": 0,
        "progress": False,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    tc.worker("ours", str(tmp_path / "spec.json"), str(tmp_path / "ours.json"))
    out = json.loads((tmp_path / "ours.json").read_text())
    assert out["steps"] == 4 and out["tokens"] > 0 and out["peak_memory_mb"] > 0
    assert set(out["quality"]) == {"in-family", "held-out family"}
    assert all({"all", "steps"} <= set(q) for q in out["quality"].values())
    assert [t for t, _ in out["curve"]] == sorted({t for t, _ in out["curve"]}) and len(out["curve"]) == 2
    # batch_size caps each micro-batch at 4 records: 16 training records in 4 steps is exactly one pass, so the
    # tokens seen are the training items' tokens, each once
    from prm.model.io import build
    from prm.model.prm import Spec
    from prm.records import read_records
    from prm.train.config import TrainConfig
    from prm.train.loop import make_items

    prm, tok = build(Spec(base=str(tiny_model_dir)), None)
    cfg = TrainConfig(train="t", output="o", max_length=spec["max_length"])
    items, _ = make_items(read_records(spec["train"]), tok, prm.tag_id, cfg)
    assert len(items) == 16 and out["tokens"] == sum(len(it.enc.input_ids) for it in items)


def test_spec_steps_make_whole_passes(tmp_path):
    from types import SimpleNamespace

    from prm.records import write_records

    write_records([rec([True], rid=f"r{i}") for i in range(20)], tmp_path / "t.jsonl")
    cfg = SimpleNamespace(
        prm_base="b",
        trl_batch=4,
        trl_max_length=128,
        trl_epochs=2.0,
        trl_lr=1e-4,
        prm_eval_every=5,
        prm_seed=0,
        trl_progress=False,
    )
    spec = tc.spec_for(cfg, tmp_path, tmp_path / "t.jsonl", tmp_path / "v", {"in-family": tmp_path / "x"})
    assert spec["steps"] == 10 and spec["batch"] == 4

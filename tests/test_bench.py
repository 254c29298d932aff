"""The benchmark suites run end to end on the tiny model and write JSON rows (their figures come from real runs;
here only that the machinery measures what it says)."""

from __future__ import annotations

import json

import pytest

from prm import cli
from prm.records import read_records


def test_scoring_suite_one_pass_equals_per_prefix(tmp_path, tiny_model_dir):
    out = tmp_path / "b.json"
    args = [
        "bench",
        "--suites",
        "scoring",
        "--prm_base",
        str(tiny_model_dir),
        "--scoring_traces",
        "4",
        "--output",
        str(out),
    ]
    assert cli.main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    ratios = [r for r in rows if r["unit"] == "x"]
    # 4 step counts, then the pool against one row per trace in 8,192-token passes: the same in the device's pass
    # size, trees, trees with the adapter merged; fp32, then bf16 (forced in tests)
    assert len(ratios) == 10 and all(r["max_abs_diff"] < 1e-4 for r in ratios[:7])
    pools = [r for r in ratios if r["name"].startswith("synthetic pools")]
    assert len(pools) == 6 and all(r["traces"] == 16 and r["variant_traces_s"] > 0 for r in pools)
    assert all(0 < r["tokens_in_trees"] < r["tokens_separate"] for r in pools)
    # the goal is on prm score's way: merged trees
    assert [r["goal"] for r in pools] == ["", "", ">= 3x", "", "", ">= 3x"]


def test_serve_suite_loads_the_server_and_sends_every_bad_input(tmp_path, tiny_model_dir):
    pytest.importorskip("fastapi")
    out = tmp_path / "b.json"
    args = ["bench", "--suites", "serve", "--prm_base", str(tiny_model_dir), "--serve_traces", "6"]
    assert cli.main([*args, "--serve_requests", "8", "--repeats", "1", "--output", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    load = [r for r in rows if r["unit"] == "req/s"]
    assert [r["errors"] for r in load] == [0, 0, 0] and all(r["rps"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in load)
    assert load[-1]["share_of_prm_score"] > 0
    bad = [r for r in rows if r["name"].startswith("serve bad input")]
    assert len(bad) >= 10 and all(r["met"] for r in bad), [r for r in bad if not r["met"]]


def test_prm_quality_suite_reports_prm_baseline_floor_and_curve(tmp_path, tiny_model_dir):
    out = tmp_path / "b.json"
    args = [
        "bench",
        "--suites",
        "prm",
        "--prm_base",
        str(tiny_model_dir),
        "--prm_train",
        "40",
        "--prm_val",
        "16",
        "--prm_test",
        "30",
        "--prm_tokens",
        "3000",
        "--prm_eval_every",
        "1",
        "--prm_best_of",
        "6",
        "--output",
        str(out),
    ]
    assert cli.main(args) == 0
    names = [r["name"] for r in json.loads(out.read_text())["rows"]]
    for test_set in ("in-family", "held-out family"):
        assert any(n.startswith(f"AUROC correct vs first error, {test_set} [all]: PRM") for n in names)
        assert any(f"training-free result log-prob, {test_set} [all]" in n for n in names)
        assert any(f"position-only floor, {test_set} [all]" in n for n in names)
    by_name = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    pick = by_name["best-of-4 on held-out-family sets (1 right + 3 wrong): PRM min-score pick"]
    assert 0 <= pick["value"] <= 100 and by_name["  random pick"]["value"] == 25
    held = read_records(tmp_path / "prm_quality" / "test-heldout.jsonl")
    assert {r.meta["phrasing"] for r in held} == {"report"}
    assert len(read_records(tmp_path / "prm_quality" / "best_of_4.jsonl")) == 24
    for png in ("prm_learning_curve.png", "prm_quality.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_of_pick_counts_sets_and_splits_ties():
    from prm.bench.prm_quality import best_of_pick
    from prm.records import StepRecord

    def group(right_score, wrong_scores):
        right = StepRecord(id="ok", problem="p", steps=["a", "b"], labels=[True, True])
        wrong = [StepRecord(id=f"e{i}", problem="p", steps=["a", "b"], labels=[True, False]) for i in range(3)]
        return [right, *wrong], [[0.9, right_score], *[[0.9, s] for s in wrong_scores]]

    r1, s1 = group(0.8, [0.1, 0.2, 0.3])  # right wins
    r2, s2 = group(0.2, [0.1, 0.7, 0.3])  # a wrong one wins
    r3, s3 = group(0.5, [0.5, 0.1, 0.1])  # a tie of two: half a win
    assert best_of_pick(r1 + r2 + r3, s1 + s2 + s3) == pytest.approx(1.5 / 3)

"""The benchmark suites run end to end on the tiny model and write JSON rows (their figures come from real runs;
here only that the machinery measures what it says)."""

from __future__ import annotations

import json

from prm import cli


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
    assert len(ratios) == 4 and all(r["max_abs_diff"] < 1e-4 for r in ratios)


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
        "--output",
        str(out),
    ]
    assert cli.main(args) == 0
    names = [r["name"] for r in json.loads(out.read_text())["rows"]]
    assert any(n.startswith("AUROC correct vs first error [all]: PRM") for n in names)
    assert any("training-free result log-prob [all]" in n for n in names)
    assert any("position-only floor [all]" in n for n in names)
    assert (tmp_path / "prm_learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

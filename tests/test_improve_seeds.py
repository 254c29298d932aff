"""`prm improve-report`: several improve runs of one recipe summarised over seeds, on run folders written here."""

from __future__ import annotations

import json

import pytest

from prm import cli
from prm.config import ConfigError, save_config
from prm.improve.config import ImproveConfig
from prm.improve.seeds import load_run, markdown, summarize
from prm.records import StepRecord, write_records

PROBLEMS = ["a", "b", "c", "d"]


def _pool(folder, right: dict[str, int], k: int = 2) -> None:
    """k held-out samples per problem, the first right[p] of them right."""
    traces = [
        StepRecord(f"{p}/{i}", "q", ["s"], answer="1", meta={"problem_id": p, "correct": i < right.get(p, 0)})
        for p in PROBLEMS
        for i in range(k)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    write_records(traces, folder / "heldout.jsonl")


def _row(f: str, r: int, right: dict[str, int], lucky: int, k: int = 2) -> dict:
    n = sum(right.values())
    return {"filter": f, "round": r, "k": k, "pass@1": n / (k * len(PROBLEMS)), "right": n,
            "right_with_wrong_step": lucky, "wrong_step_share": lucky / n if n else None}  # fmt: skip


def make_run(root, seed: int, rounds: dict[tuple[str, int], tuple[dict[str, int], int]], **overrides):
    """A finished improve run's files: config.yaml, improve.json and every evaluation's held-out samples."""
    out = root / f"run{seed}"
    cfg = ImproveConfig(policy="p", problems="t.jsonl", heldout="h.jsonl", output=str(out), seed=seed, **overrides)
    out.mkdir(parents=True)
    save_config(cfg, out)
    rows = []
    for (f, r), (right, lucky) in rounds.items():
        _pool(out / "round0" if r == 0 else out / f / f"round{r}", right)
        rows.append(_row(f, r, right, lucky))
    (out / "improve.json").write_text(json.dumps({"rows": rows}))
    return out


def _rounds(prm_right: dict[str, int], lucky: int) -> dict:
    return {
        ("start", 0): ({"a": 1}, 0),
        ("outcome", 1): ({"a": 1, "b": 1}, 1),
        ("prm", 1): (prm_right, lucky),
    }


def test_summary_over_seeds_pairs_problems_and_pools_wrong_steps(tmp_path):
    # seed 0: prm 4 right of 8 against outcome's 2 (+25 points); seed 1: 2 against 2 (0).
    runs = [
        load_run(make_run(tmp_path, 0, _rounds({"a": 2, "b": 1, "c": 1}, 1))),
        load_run(make_run(tmp_path, 1, _rounds({"c": 2}, 0))),
    ]
    s = summarize(runs, "outcome", margin=3.0, level=0.9, boot=500, seed=0)
    assert s["seeds"] == [0, 1] and s["problems"] == 4 and s["eval_k"] == 2
    prm = next(r for r in s["rows"] if r["filter"] == "prm")
    assert prm["pass@1"] == [0.5, 0.25] and prm["mean_pass@1"] == pytest.approx(0.375)
    assert prm["right"] == 6 and prm["right_with_wrong_step"] == 1 and prm["wrong_step_share"] == pytest.approx(1 / 6)
    (v,) = s["versus"]
    assert v["per_seed"] == pytest.approx([0.25, 0.0]) and v["mean"] == pytest.approx(0.125)
    assert v["seeds_at_margin"] == 1
    lo, hi = v["interval"]
    assert lo <= v["mean"] <= hi and lo < hi  # problems disagree, so the interval has width
    assert v["wrong_step_share"] == pytest.approx(1 / 6) and v["baseline_wrong_step_share"] == pytest.approx(2 / 4)
    table = markdown(s)
    assert "| prm | 1 | 50.0 / 25.0 | 37.5 | 16.7% (1 of 6) |" in table
    assert "| prm − outcome | +25.0 / +0.0 | +12.5 |" in table and "| 1 of 2 |" in table


def test_runs_of_other_recipes_repeated_seeds_and_unknown_baselines_are_refused(tmp_path):
    a = load_run(make_run(tmp_path, 0, _rounds({"a": 2}, 0)))
    b = load_run(make_run(tmp_path, 1, _rounds({"a": 2}, 0), k=5))
    with pytest.raises(ConfigError, match="k is 5"):
        summarize([a, b], "outcome", 3.0, 0.9, 100, 0)
    with pytest.raises(ConfigError, match="seeds \\[0, 0\\] repeat"):
        summarize([a, a], "outcome", 3.0, 0.9, 100, 0)
    with pytest.raises(ConfigError, match="'gold' is not a filter"):
        summarize([a], "gold", 3.0, 0.9, 100, 0)
    (tmp_path / "run0" / "improve.json").unlink()
    with pytest.raises(ConfigError, match="improve.json: not found"):
        load_run(tmp_path / "run0")


def test_improve_report_command_writes_its_files(tmp_path, capsys):
    runs = [make_run(tmp_path, s, _rounds({"a": 2, "d": s}, s)) for s in (0, 1, 2)]
    out = tmp_path / "seeds"
    assert cli.main(["improve-report", "--runs", f"[{', '.join(map(str, runs))}]", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 runs (seeds 0 / 1 / 2)" in printed
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["runs"] == [str(r) for r in runs] and len(summary["versus"]) == 1
    assert (out / "seeds.md").read_text() in printed
    assert (out / "seeds.png").stat().st_size > 0 and (out / "config.yaml").exists()
    assert cli.main(["improve-report", "--runs", f"[{runs[0]}, {tmp_path / 'nothing'}]", "--output", str(out)]) == 2
    assert "nothing/config.yaml: not found" in capsys.readouterr().err

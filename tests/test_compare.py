"""`prm compare`: the budget arithmetic and summaries (pure), best-of-N summaries on hand-made pools, and one tiny
end-to-end run that resumes and refuses other settings."""

from __future__ import annotations

import dataclasses
import json

import pytest

from prm import cli
from prm.bon.select import Candidate
from prm.compare.core import beam_shape, bon_summaries, bootstrap_std, summarize, unit_strategy
from prm.compare.report import match_line
from prm.config import ConfigError


def test_beam_shape_spends_the_budget_per_depth():
    for k in (1, 2, 4, 8, 16, 32, 64):
        w, e = beam_shape(k)
        assert w * e == k and w <= e


def test_bootstrap_std_grows_with_disagreement():
    assert bootstrap_std([0.0, 1.0] * 8) > bootstrap_std([0.0] + [1.0] * 15) > 0


def test_summarize_splits_easy_and_hard():
    s = summarize([1.0, 0.0, 1.0, 1.0], [10, 20, 30, 40], [False, True, True, False])
    assert s["tokens"] == 25 and s["all"]["accuracy"] == 0.75
    assert s["easy"] == {"accuracy": 1.0, "std": 0.0, "n": 2} and s["hard"]["accuracy"] == 0.5


def test_bon_summaries_vote_by_the_prm_and_cap_at_the_pool():
    good, bad = Candidate("7", True, (0.9,), tokens=10), Candidate("6", False, (0.2,), tokens=10)
    pools = [[good, bad, bad], [good, bad, bad]]
    out = bon_summaries(pools, [False, True], [1, 3, 8], trials=400, seed=0)
    assert out["bon"][3]["all"]["accuracy"] == 1.0  # 0.9 outweighs 0.2 + 0.2
    assert out["bon_rank"][3]["all"]["accuracy"] == 1.0  # ranked first by its score
    assert out["majority"][3]["all"]["accuracy"] == 0.0  # two wrong answers agree
    assert out["bon"][1]["all"]["accuracy"] == pytest.approx(1 / 3, abs=0.07)  # N = 1: a random candidate
    assert out["bon"][8]["n"] == 3 and out["bon"][8]["capped"] and out["bon"][3]["tokens"] == 30


def test_bon_rank_and_vote_part_where_many_weak_votes_outweigh_one_strong():
    good = Candidate("7", True, (0.9,), tokens=10)
    weak = Candidate("6", False, (0.5,), tokens=10)
    out = bon_summaries([[good, weak, weak]], [False], [3], trials=10, seed=0, rank_by="min")
    assert out["bon_rank"][3]["all"]["accuracy"] == 1.0 and out["bon"][3]["all"]["accuracy"] == 0.0


def test_match_line_measures_each_search_against_both_best_of_n_selectors():
    def unit(acc: float, tokens: float) -> dict:
        return {"tokens": tokens, "all": {"accuracy": acc, "std": 0.0, "n": 4}}

    summary = {
        "bon_rank_by": "min",
        "units": {
            "bon": {"8": unit(0.5, 400), "16": unit(0.5, 800)},
            "bon_rank": {"8": unit(0.6, 400), "16": unit(0.75, 800)},
            "astar": {"8": unit(0.5, 390), "16": unit(0.7, 700)},
        },
    }
    lines = match_line(summary)
    assert lines == [
        "A* reaches best-of-16's 50.0% (best-of-N (PRM vote)) at 390 tokens per problem (0.49x best-of-16's 800)",
        "A* does not reach best-of-16's 75.0% (best-of-N (PRM min)) within the budgets",
    ]


def test_unit_strategy_turns_samples_into_tokens():
    from prm.compare.config import CompareConfig

    cfg = CompareConfig(problems="p", prm="m", output="o")
    assert unit_strategy("astar", 8, 50.0, cfg).budget == 400
    assert unit_strategy("mcts", 4, 12.5, cfg).budget == 50
    s = unit_strategy("dvts", 16, 50.0, cfg)
    assert (s.width, s.expand) == (4, 4)


def test_config_rejects_unknown_strategies_and_bad_budgets():
    from prm.compare.config import CompareConfig

    with pytest.raises(ValueError, match="strategies"):
        CompareConfig(problems="p", prm="m", output="o", strategies=("bon", "greedy"))
    with pytest.raises(ValueError, match="budgets"):
        CompareConfig(problems="p", prm="m", output="o", budgets=(0, 4))


def test_compare_end_to_end_on_tiny_models(tmp_path, tiny_model_dir, tiny_prm_dir, tiny_problems, capsys):
    out = tmp_path / "compare"
    args = ["compare", "--problems", str(tiny_problems), "--prm", str(tiny_prm_dir), "--policy", str(tiny_model_dir)]
    args += ["--output", str(out), "--budgets", "[1, 2]", "--hard_steps", "2", "--sampling.max_new_tokens", "12"]
    args += ["--max_step_tokens", "6", "--max_steps", "3", "--astar_expand", "2", "--mcts_expand", "2"]
    args += ["--progress", "false", "--bon_trials", "20"]
    assert cli.main(args) == 0
    summary = json.loads((out / "compare.json").read_text())
    assert list(summary["units"]) == ["bon", "bon_rank", "majority", "beam", "dvts", "astar", "mcts"]
    assert summary["problems"] == 3 and summary["easy"] + summary["hard"] == 3
    for name, units in summary["units"].items():
        assert set(units) == {"1", "2"}, name
        for u in units.values():
            assert 0.0 <= u["all"]["accuracy"] <= 1.0 and u["tokens"] > 0
    t = summary["tokens_per_sample"]
    for name in ("astar", "mcts"):  # they stop at the budget, at most one expansion's samples over
        assert summary["units"][name]["2"]["tokens"] <= 2 * t + 2 * 6
    rows = [json.loads(x) for x in (out / "units" / "astar-2.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {"correct", "tokens", "prediction", "timed_out"} <= set(rows[0])
    assert all(len(r["finished"]) == r["completed"] for r in rows)  # every completion, for other answer rules
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG" and "| budget" in (out / "compare.md").read_text()
    printed = capsys.readouterr().out
    assert "prm compare: 3 problems" in printed and "A*" in printed
    assert "| best-of-N (PRM vote) | best-of-N (PRM min) | majority vote |" in (out / "compare.md").read_text()

    # A rerun resumes: finished units are read, not searched again; a deleted unit is searched again alone.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "units").iterdir()}
    (out / "units" / "mcts-1.jsonl").unlink()
    assert cli.main(args) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "units").iterdir()}
    assert set(after) == set(stamps)
    assert all(after[n] == stamps[n] for n in stamps if n != "mcts-1.jsonl")
    assert json.loads((out / "compare.json").read_text())["units"] == summary["units"]  # same seeds, same result
    # Fewer budgets and strategies: read from the finished units, nothing searched again.
    fewer = args + ["--budgets", "[1]", "--strategies", "[bon, astar]"]
    assert cli.main(fewer) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "units").iterdir()} == after
    narrow = json.loads((out / "compare.json").read_text())
    assert list(narrow["units"]) == ["bon", "bon_rank", "majority", "astar"] and narrow["budgets"] == [1]
    assert narrow["units"]["astar"]["1"] == summary["units"]["astar"]["1"]
    with pytest.raises(ConfigError, match="other settings"):
        from prm.compare import run
        from prm.compare.config import CompareConfig
        from prm.config import load_config

        cfg = load_config(CompareConfig, out / "config.yaml")
        run(dataclasses.replace(cfg, astar_lambda=2.0))


def test_compare_only_hard_samples_and_searches_the_hard_problems_alone(
    tmp_path, tiny_model_dir, tiny_prm_dir, tiny_problems, capsys
):
    from prm.records import read_records

    steps = {p.id: len(p.steps) for p in read_records(tiny_problems)}
    cut = max(steps.values())  # the longest problems are the hard ones
    hard = {i for i, n in steps.items() if n >= cut}
    out = tmp_path / "hard"

    def args(hard_steps: int) -> list[str]:
        a = ["compare", "--problems", str(tiny_problems), "--prm", str(tiny_prm_dir), "--policy", str(tiny_model_dir)]
        a += ["--output", str(out), "--budgets", "[1]", "--hard_steps", str(hard_steps), "--only", "hard"]
        a += ["--strategies", "[bon, astar]", "--sampling.max_new_tokens", "12", "--max_step_tokens", "6"]
        return a + ["--max_steps", "3", "--astar_expand", "2", "--progress", "false", "--bon_trials", "5"]

    assert cli.main(args(cut)) == 0
    summary = json.loads((out / "compare.json").read_text())
    assert summary["problems"] == summary["hard"] == len(hard) and summary["easy"] == 0
    assert {r.id for r in read_records(out / "problems.jsonl")} == hard
    assert {r.meta["problem_id"] for r in read_records(out / "pool.jsonl")} == hard  # nothing sampled for the rest
    assert len((out / "units" / "astar-1.jsonl").read_text().splitlines()) == len(hard)
    # hard_steps now chooses the problems: a rerun that changes it is refused, not regrouped
    assert cli.main(args(cut + 1)) == 2
    assert "other settings" in capsys.readouterr().err
    out = tmp_path / "none"
    assert cli.main(args(cut + 1)) == 2
    assert "no hard problems (hard: >= " in capsys.readouterr().err

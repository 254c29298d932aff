"""PRM-guided search with a scripted policy and a scripted PRM (component layer), and `prm search` once on the
tiny model (end to end)."""

from __future__ import annotations

import json

import pytest

from prm import cli
from prm.records import read_records
from prm.search.beam import search

# Problem 0's policy writes, at each depth, one good step and some bad ones; the PRM recognises the good ones.
GOOD = ["3 + 4 = 7", "7 * 2 = 14", "The answer is 14."]


def scripted_policy(calls):
    def sample_fn(requests, k, keys):
        calls.append((len(requests), k, list(keys)))
        out = []
        for _, steps in requests:
            depth = len(steps)
            row = []
            for j in range(k):
                if j == k - 1 and steps == GOOD[:depth]:
                    text = GOOD[depth]
                else:
                    text = f"bad {depth}.{j}" if depth < 2 else f"The answer is {j}."
                stop = "answer" if text.startswith("The answer") else "line"
                row.append((text, 5, stop))
            out.append(row)
        return out

    return sample_fn


def scripted_prm(requests):
    return [[0.9 if s in GOOD else 0.1 for s in steps] for _, steps in requests]


@pytest.mark.parametrize("strategy", ["beam", "dvts"])
def test_search_follows_the_prm(strategy):
    calls = []
    res = search(scripted_policy(calls), scripted_prm, 1, strategy=strategy, width=2, expand=3, max_steps=5)
    assert res[0].steps == GOOD and res[0].prediction == "14" and res[0].scores == [0.9, 0.9, 0.9]
    # Root: width x expand samples in total; then expand per live beam.
    assert calls[0][1] == (6 if strategy == "beam" else 3)
    assert res[0].tokens == 5 * res[0].expansions
    assert len(calls) == 3  # every beam has an answer at depth 3


def test_search_counts_every_token_and_keys_are_unique():
    calls = []
    res = search(scripted_policy(calls), scripted_prm, 2, width=2, expand=2, max_steps=5)
    keys = [k for _, _, ks in calls for k in ks]
    assert len(keys) == len(set(keys))  # every request is seeded on its own
    assert sum(r.expansions for r in res) == sum(n * k for n, k, _ in calls)


def test_search_depth_limit_completes_beams():
    def never_ends(requests, k, keys):
        return [[(f"step {len(s)}.{j}", 3, "line") for j in range(k)] for _, s in requests]

    res = search(never_ends, lambda reqs: [[0.5] * len(s) for _, s in reqs], 1, width=1, expand=2, max_steps=3)
    assert len(res[0].steps) == 3 and res[0].prediction is None and res[0].completed == 1


def test_search_rejects_bad_settings():
    with pytest.raises(ValueError, match="strategy"):
        search(scripted_policy([]), scripted_prm, 1, strategy="mcts")
    with pytest.raises(ValueError):
        search(scripted_policy([]), scripted_prm, 1, width=0)


def test_search_command_on_tiny_models(tmp_path, tiny_model_dir, tiny_prm_dir, tiny_problems):
    out = tmp_path / "search"
    args = [
        "search",
        "--problems",
        str(tiny_problems),
        "--prm",
        str(tiny_prm_dir),
        "--policy",
        str(tiny_model_dir),
        "--output",
        str(out),
        "--width",
        "2",
        "--expand",
        "2",
        "--max_steps",
        "3",
        "--max_step_tokens",
        "6",
        "--progress",
        "false",
    ]
    assert cli.main(args) == 0
    summary = json.loads((out / "search.json").read_text())
    assert summary["problems"] == 3 and summary["tokens_per_problem"] > 0
    chosen = read_records(out / "search.jsonl")
    assert len(chosen) == 3 and chosen[0].meta["strategy"] == "beam"

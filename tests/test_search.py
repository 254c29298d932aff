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


@pytest.mark.parametrize("strategy", ["beam", "dvts"])
def test_search_answer_by_vote_sums_the_kept_solutions_scores(strategy):
    # Three kept solutions say 5 (0.6 each) and one says 9 (0.9): best picks 9, the weighted vote 5 (1.8 > 0.9).
    # The fourth root sample says 9: beam's one group draws 4 (keys end in g0), DVTS's four groups one each.
    def answers(requests, k, keys):
        fourth = [[int(key[-1]) + j == 3 for j in range(k)] for key in keys]
        return [[(f"The answer is {9 if last else 5}.", 4, "answer") for last in row] for row in fourth]

    def prm(requests):
        return [[0.9 if "9" in s[-1] else 0.6] for _, s in requests]

    picks = {
        how: search(answers, prm, 1, strategy=strategy, width=4, expand=1, answer=how)[0].prediction
        for how in ("best", "vote")
    }
    assert picks == {"best": "9", "vote": "5"}


@pytest.mark.parametrize("strategy", ["beam", "astar", "mcts"])
def test_search_answer_by_best_never_prefers_a_solution_that_states_no_answer(strategy):
    # The root's samples: one cut at the token limit (no answer line) that the PRM likes, one answer it likes less.
    # A solution without an answer is wrong whatever its score, so `best` takes the one that answers.
    def cut_or_answer(requests, k, keys):
        both = [("7 * 2 = 14 and then", 64, "length"), ("The answer is 5.", 5, "answer")]
        return [[both[j % 2] for j in range(k)] for _ in requests]

    def prm(requests):
        return [[0.2 if "answer" in s[-1] else 0.9] for _, s in requests]

    from prm.search.astar import astar
    from prm.search.mcts import mcts

    run = {
        "beam": lambda: search(cut_or_answer, prm, 1, width=2, expand=1, answer="best"),
        "astar": lambda: astar(cut_or_answer, prm, 1, budget=69, expand=2, answer="best"),
        "mcts": lambda: mcts(cut_or_answer, prm, 1, budget=69, expand=2, answer="best"),
    }[strategy]
    res = run()[0]
    assert res.completed == 2 and res.prediction == "5"


def test_best_stated_falls_back_to_every_solution_when_none_answers():
    from prm.search.steps import Child, best_stated

    cut, low = Child(["7 * 2 = 14 and then"], True, 64), Child(["3 + 4 = 7"], True, 5)
    assert best_stated([low, cut], lambda c: c.tokens) is cut


def test_search_rejects_bad_settings():
    with pytest.raises(ValueError, match="strategy"):
        search(scripted_policy([]), scripted_prm, 1, strategy="mcts")
    with pytest.raises(ValueError):
        search(scripted_policy([]), scripted_prm, 1, width=0)
    with pytest.raises(ValueError, match="answer"):
        search(scripted_policy([]), scripted_prm, 1, answer="visits")


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
        "--sampling.max_new_tokens",
        "6",
        "--progress",
        "false",
    ]
    assert cli.main(args) == 0
    summary = json.loads((out / "search.json").read_text())
    assert summary["problems"] == 3 and summary["tokens_per_problem"] > 0
    chosen = read_records(out / "search.jsonl")
    assert len(chosen) == 3 and chosen[0].meta["strategy"] == "beam"
    assert all(len(r.meta["finished"]) == r.meta["completed"] for r in chosen)


# A* and MCTS with the same scripted policy; the value model is a scripted function too.


def _astar(policy, prm=scripted_prm, **kw):
    from prm.search.astar import astar

    return astar(policy, prm, 1, **({"budget": 1000, "expand": 3} | kw))


def test_astar_finds_the_path_the_prm_prefers_and_stops_at_enough_solutions():
    calls = []
    res = _astar(scripted_policy(calls), n_solutions=2)[0]
    assert res.steps == GOOD and res.prediction == "14" and res.completed >= 2
    keys = [k for _, _, ks in calls for k in ks]
    assert len(keys) == len(set(keys)) and res.tokens == 5 * res.expansions
    # best-first: the good prefix is popped first at every depth, so the good answer is complete after 3 pops
    assert all(n == 1 for n, _, _ in calls)


def test_search_results_list_every_completion_with_its_rank_and_the_tokens_spent_by_then():
    res = _astar(scripted_policy([]), n_solutions=3)[0]
    done = res.completions()
    assert len(done) == res.completed >= 3 and [d["rank"] for d in done] == [round(n.f, 6) for n in res.finished]
    assert [d["tokens"] for d in done] == sorted(d["tokens"] for d in done) and done[-1]["tokens"] <= res.tokens
    assert {"14"} <= {d["answer"] for d in done} and all(len(d["scores"]) >= 1 for d in done)
    beam = search(scripted_policy([]), scripted_prm, 1, width=2, expand=3, max_steps=5, answer="vote")[0]
    assert [d["rank"] for d in beam.completions()] == [round(b.score, 6) for b in beam.finished]


def test_astar_budget_stops_the_search_within_one_expansion_and_a_rollout_to_an_answer():
    res = _astar(scripted_policy([]), budget=12, n_solutions=99)[0]
    # the root's 3 samples (15 tokens) spend the budget with nothing complete: one rollout from the best open node
    # (GOOD[0], scored 0.9) writes its last 2 lines, so the search answers
    assert res.tokens == 15 + 2 * 5 and res.completed == 1 and res.steps == GOOD


def test_astar_does_not_answer_a_problem_that_ran_out_of_time():
    res = _astar(scripted_policy([]), budget=12, expired=lambda p: True)[0]
    assert res.timed_out and res.tokens == 0 and res.prediction is None


def test_astar_heuristic_is_the_value_model_when_the_prm_cannot_tell():
    flat = lambda reqs: [[0.5] * len(s) for _, s in reqs]  # noqa: E731 - a PRM that sees nothing
    blind = _astar(scripted_policy([]), prm=flat, n_solutions=1)[0]
    guided = _astar(scripted_policy([]), prm=flat, value_fn=scripted_prm, n_solutions=1)[0]
    assert guided.steps == GOOD
    assert blind.steps != GOOD  # ties broken by insertion order: the first (bad) children come first


def test_astar_drops_repeated_children_but_counts_their_tokens():
    def parrot(requests, k, keys):
        return [[("3 + 4 = 7", 5, "line")] * k for _ in requests]

    res = _astar(parrot, budget=60, max_steps=3)[0]
    # each popped node has one distinct child: a chain of 3 steps, the last complete at the depth limit (45 tokens);
    # then the 3 expanded nodes open again and the best one's 3 fresh samples are repeats too (60: the budget)
    assert res.expansions == 12 and res.tokens == 60 and res.completed == 1 and len(res.steps) == 3


def test_astar_reopens_expanded_nodes_with_fresh_samples_while_budget_is_left():
    # First samples of a node all write the same wrong answer; a reopened node (its key marked "~") samples anew.
    keys_seen = []

    def first_tries_repeat(requests, k, keys):
        keys_seen.extend(keys)
        return [[(f"The answer is {14 if '~' in key else 5}.", 5, "answer")] * k for key in keys]

    res = _astar(first_tries_repeat, n_solutions=2)[0]
    assert keys_seen == ["0/r", "0/r~"] and res.tokens == 30 and res.completed == 2 and res.prediction == "14"
    # reopening only while it finds something: a policy that writes nothing spends nothing and ends
    res = _astar(lambda reqs, k, keys: [[("", 0, "line")] * k for _ in reqs])[0]
    assert res.tokens == 0 and res.completed == 0 and res.prediction is None


def test_astar_growing_by_paths_resamples_from_the_prefix_before_the_doubted_step():
    # The root's rollouts write the good first step, then a wrong one (scored 0.1) and a wrong answer; rollouts
    # from a deeper node (keys with ":") write the good second step. Growing by paths, the first pop ends in an
    # answer, and the next pop is the prefix the PRM trusts: the search resamples from after GOOD[0].
    calls = []

    def keyed(requests, k, keys):
        calls.append([(list(s), key) for (_, s), key in zip(requests, keys, strict=True)])
        out = []
        for (_, steps), key in zip(requests, keys, strict=True):
            depth = len(steps)
            text = (
                GOOD[depth]
                if depth == 0 or ":" in key or steps[-1] == GOOD[1]
                else ("bad 1" if depth == 1 else "The answer is 5.")
            )
            out.append([(text, 5, "answer" if text.startswith("The answer") else "line")] * k)
        return out

    res = _astar(keyed, expand=2, n_solutions=2, grow="path")[0]
    assert res.steps == GOOD and res.prediction == "14" and res.completed == 2
    assert res.finished[0].steps == [GOOD[0], "bad 1", "The answer is 5."]  # both root rollouts: one new end
    # round 1: 2 rollouts x 3 lines from the root; round 2: 2 rollouts x 2 lines from [GOOD[0]]
    assert res.tokens == 2 * 3 * 5 + 2 * 2 * 5 and res.expansions == 10
    assert [steps for steps, _ in calls[3]] == [GOOD[:1], GOOD[:1]]
    keys = [key for call in calls for _, key in call]
    assert len(keys) == len(set(keys))  # every line is seeded on its own
    with pytest.raises(ValueError, match="grow"):
        _astar(keyed, grow="tree")


def test_mcts_follows_the_value_and_answers_by_visits():
    from prm.search.mcts import mcts

    calls = []
    res = mcts(scripted_policy(calls), scripted_prm, 1, budget=200, expand=3)[0]
    assert res.steps == GOOD and res.prediction == "14"
    keys = [k for _, _, ks in calls for k in ks]
    assert len(keys) == len(set(keys))
    # The complete good answer (value 0.9) draws every later selection against the bad steps' 0.1: after max_idle
    # selections in a row that find nothing to expand, the search ends before the budget.
    assert res.tokens < 200 and len(calls) * 3 * 5 == res.tokens


def test_mcts_backup_and_puct_by_hand():
    from prm.search.mcts import TreeNode, backup, puct, select

    root = TreeNode([], "r", expanded=True)
    a = TreeNode(["a"], "r.0", parent=root, prior=0.5, value=0.9, visits=1, total=0.9)
    b = TreeNode(["b"], "r.1", parent=root, prior=0.5, value=0.1, visits=1, total=0.1)
    root.children = [a, b]
    backup(root, 2, 1.0)
    assert (root.visits, root.total) == (2, 1.0)
    assert puct(root, a, 1.0) == pytest.approx(0.9 + 0.5 * 2**0.5 / 2)
    assert select(root, 1.0) is a
    assert select(root, 100.0) is a  # equal priors and visits: the value still decides
    b.prior = 0.99
    a.prior = 0.01
    assert select(root, 100.0) is b  # a large c lets the prior win


def test_mcts_stops_when_nothing_is_left_to_expand():
    from prm.search.mcts import mcts

    def one_answer(requests, k, keys):
        return [[("The answer is 3.", 4, "answer")] * k for _ in requests]

    res = mcts(one_answer, lambda reqs: [[0.7] * len(s) for _, s in reqs], 1, budget=10_000, expand=2, max_idle=4)[0]
    assert res.expansions == 2 and res.prediction == "3"  # the root's one child is complete: the tree is solved


def test_mcts_rollouts_finish_open_children_and_mix_their_verdict_into_the_values():
    from prm.search.mcts import mcts
    from prm.search.steps import rollout_ends

    calls = []
    policy = scripted_policy(calls)
    # From the good first step, the last of k samples follows GOOD; with k = 1 every rollout sample is the good one.
    ends, spent = rollout_ends(policy, [(0, GOOD[:1]), (0, ["bad 0.0"])], ["a", "b"], max_steps=5)
    assert ends[0] == GOOD and spent == [10, 10]  # two more lines each, 5 tokens a line
    assert ends[1] == ["bad 0.0", "bad 1.0", "The answer is 0."]
    assert [k for _, _, ks in calls for k in ks] == ["a/1", "b/1", "a/2", "b/2"]  # seeded by request and depth

    def run(weight, budget):
        calls.clear()
        return mcts(policy, scripted_prm, 1, budget=budget, expand=3, rollout=weight)[0], [c[:2] for c in calls]

    plain, plain_calls = run(0.0, 60)
    assert plain.steps == GOOD and plain.tokens == 60 and plain_calls == [(1, 3)] * 4
    # The rollouts spend the budget: round 1 samples the root's 3 children (15 tokens) and finishes each of them in
    # two lines (30); round 2 expands the good child (15) and checks its 3 open children in one line each (15): 75
    # tokens and no complete solution in the tree. The rollout from the good child wrote the good solution, and
    # rollouts that answer are candidates: the answer (the most visited path ends open) is the best-valued one.
    checked, checked_calls = run(1.0, 60)
    assert checked.tokens == 75 and checked.expansions == 6
    assert checked_calls == [(1, 3), (3, 1), (3, 1), (1, 3), (3, 1)]
    assert checked.steps == GOOD and checked.scores == [0.9, 0.9, 0.9] and checked.completed == 6
    assert run(0.5, 120)[0].steps == GOOD
    with pytest.raises(ValueError, match="rollout"):
        mcts(policy, scripted_prm, 1, budget=60, rollout=1.5)


def test_mcts_rollout_weight_sets_the_leaf_value():
    from prm.search.mcts import TreeNode, _check_by_rollouts
    from prm.search.steps import SearchResult

    def finishes(requests, k, keys):  # every rollout answers at once
        return [[("The answer is 9.", 2, "answer")] * k for _ in requests]

    def values(requests):  # the finished solutions score 0.8 at their answer line
        return [[0.8 if s.startswith("The answer") else 0.2 for s in steps] for _, steps in requests]

    node = TreeNode(["x"], "r.0", value=0.2)
    results = [SearchResult(0)]
    _check_by_rollouts(finishes, values, [(0, node)], 0.25, 8, results)
    assert node.value == pytest.approx(0.75 * 0.2 + 0.25 * 0.8) and results[0].tokens == 2

    def silent(requests, k, keys):  # a rollout that writes nothing has no answer: its verdict is 0
        return [[("", 1, "eos")] * k for _ in requests]

    node = TreeNode(["x"], "r.0", value=0.4)
    _check_by_rollouts(silent, values, [(0, node)], 0.5, 8, results)
    assert node.value == pytest.approx(0.2) and results[0].tokens == 3


@pytest.mark.parametrize("strategy", ["astar", "mcts"])
def test_search_strategies_reject_bad_settings(strategy):
    from prm.search.strategies import Strategy, run_strategy

    with pytest.raises(ValueError):
        run_strategy(Strategy(strategy, budget=0), scripted_policy([]), scripted_prm, None, 1)
    with pytest.raises(ValueError, match="answer"):
        run_strategy(Strategy(strategy, answer="nonsense"), scripted_policy([]), scripted_prm, None, 1)


def test_search_time_limit_counts_the_problem_as_it_ended():
    from prm.search.strategies import Strategy, run_strategy

    for name in ("beam", "astar", "mcts"):
        res = run_strategy(Strategy(name), scripted_policy([]), scripted_prm, None, 2, expired=lambda p: p == 1)
        assert res[1].timed_out and res[1].prediction is None and res[1].tokens == 0
        assert not res[0].timed_out and res[0].prediction == "14"


@pytest.mark.parametrize("strategy, grow", [("astar", "step"), ("astar", "path"), ("mcts", "step")])
def test_search_command_runs_astar_and_mcts_on_tiny_models(
    tmp_path, tiny_model_dir, tiny_prm_dir, tiny_problems, strategy, grow
):
    out = tmp_path / strategy
    args = ["search", "--problems", str(tiny_problems), "--prm", str(tiny_prm_dir), "--policy", str(tiny_model_dir)]
    args += ["--output", str(out), "--strategy", strategy, "--value", str(tiny_prm_dir), "--budget", "30"]
    args += ["--expand", "2", "--max_steps", "3", "--sampling.max_new_tokens", "6", "--progress", "false"]
    assert cli.main(args + ["--grow", grow]) == 0
    summary = json.loads((out / "search.json").read_text())
    assert summary["strategy"] == strategy and summary["problems"] == 3
    # the random model's 6-token steps hit the step limit and end there: the search stops early, never past the budget
    # by more than one expansion (two steps, or two rollouts of up to three steps from the root)
    assert 0 < summary["tokens_per_problem"] <= 30 + 2 * 6 * (3 if grow == "path" else 1)
    assert read_records(out / "search.jsonl")[0].meta["strategy"] == strategy

"""The rollout labelers mc and binary against a scripted completer: monotone and non-monotone success patterns, a
wrong first step, an all-correct trace, K=1, empty completions, a completer that never answers, early stopping,
batching, and binary against mc (same labels on monotone patterns, never more rollouts)."""

from __future__ import annotations

import pytest
from fakes import ScriptedCompleter

from prm.label import LabelOptions, label_batch, rollout_key
from prm.label.rollouts import estimate, rounds
from prm.records import StepRecord

K8 = LabelOptions(k=8)


def make(n_steps: int, answer_right: bool | None, name: str = "q") -> StepRecord:
    """A trace of n_steps calculation lines plus an answer line (right, wrong, or none when None: a cut trace)."""
    steps = [f"Step line {i} of {name}." for i in range(n_steps)]
    if answer_right is not None:
        steps.append(f"The answer is {30 if answer_right else 31}.")
    return StepRecord(f"{name}/0", f"Problem {name}?", steps, answer="30", source="generate", meta={})


def fake(patterns: dict[str, dict], default="0", traces=(), **script) -> ScriptedCompleter:
    """patterns: problem name -> {prefix length (str) or "default": outcome spec}; traces: more problems to answer."""
    problems = {f"Problem {name}?": spec for name, spec in patterns.items()}
    answers = {f"Problem {name}?": "30" for name in patterns} | {t.problem: t.answer for t in traces}
    return ScriptedCompleter({"default": default, "problems": problems, **script}, answers)


def run(method, traces, completer, opts=K8):
    return label_batch(method, traces, completer, opts)


def test_monotone_pattern_mc_and_binary():
    t = make(4, answer_right=False)
    c = fake({"q": {"1": "1", "2": "00000001", "3": "0", "4": "0"}})
    (mc,) = run("mc", [t], c)
    assert mc.labels == [True, True, False, None, None]
    assert mc.values == [1.0, 1 / 8, 0.0, 0.0, 0.0]  # the answer line's value is exact: its answer is wrong
    assert mc.info["rollouts"] == 4 * 8 and mc.info["tokens"] == 4 * 8 * 8
    assert mc.info["outcomes"] == ["11111111", "00000001", "00000000", "00000000", None]
    (bi,) = run("binary", [t], c)
    assert bi.labels == mc.labels and bi.info["probes"] == 2 and bi.info["rollouts"] == 16
    assert bi.values == [None, 1 / 8, 0.0, None, 0.0]  # only where probed (soft) or exact


def test_non_monotone_patterns_where_binary_and_mc_differ():
    # A lucky recovery after a failed prefix: mc labels its first failure; binary's bisection never looks there.
    t = make(4, answer_right=False)
    c = fake({"q": {"1": "0", "2": "1", "3": "1", "4": "1"}})
    assert run("mc", [t], c)[0].labels == [False, None, None, None, None]
    assert run("binary", [t], c)[0].labels == [True, True, True, True, False]
    # A right answer after a failed prefix: binary takes the right answer as proof that every prefix could reach it.
    t2 = make(3, answer_right=True)
    c2 = fake({"q": {"1": "1", "2": "0", "3": "1"}})
    assert run("mc", [t2], c2, LabelOptions(8, after_error="false"))[0].labels == [True, False, False, False]
    (bi,) = run("binary", [t2], c2)
    assert bi.labels == [True] * 4 and bi.info["rollouts"] == 0


def test_wrong_first_step():
    t = make(4, answer_right=False)
    c = fake({"q": {"default": "0"}})
    (mc,) = run("mc", [t], c)
    (bi,) = run("binary", [t], c)
    assert mc.labels == bi.labels == [False, None, None, None, None]
    assert bi.info["probes"] == 2 and mc.info["rollouts"] == 32


def test_all_correct_trace():
    t = make(3, answer_right=True)
    c = fake({"q": {"default": "1"}})
    (mc,) = run("mc", [t], c)
    assert mc.labels == [True] * 4 and mc.values == [1.0] * 4
    (bi,) = run("binary", [t], c)
    assert bi.labels == [True] * 4 and bi.info["rollouts"] == 0 and bi.values == [None, None, None, 1.0]


def test_k1_and_early_stop_decide_on_the_first_correct_rollout():
    t = make(2, answer_right=False)
    c = fake({"q": {"1": "01", "2": "0001"}})
    assert run("mc", [t], c, LabelOptions(k=1))[0].labels == [False, None, None]
    assert run("mc", [t], c, LabelOptions(k=2))[0].labels == [True, False, None]
    full = run("mc", [t], c, LabelOptions(k=4, mode="hard"))[0]
    es = run("mc", [t], c, LabelOptions(k=4, mode="hard", early_stop=True))[0]
    assert full.labels == es.labels == [True, True, False]
    assert es.info["outcomes"] == ["01", "0001", None] and es.info["rollouts"] == 6 < full.info["rollouts"] == 8
    assert es.values == [None, None, 0.0]  # hard mode: only the exact answer line has a value
    assert rounds(8, True) == [1, 1, 2, 4] and sum(rounds(7, True)) == 7


def test_empty_completions_and_a_completer_that_never_answers():
    t = make(3, answer_right=False)
    for outcome, tokens in (("e", 0), ("-", 8)):
        (mc,) = run("mc", [t], fake({"q": {"default": outcome}}), LabelOptions(k=2))
        assert mc.labels == [False, None, None, None] and mc.values == [0.0] * 4
        assert mc.info["outcomes"][:3] == ["--"] * 3 and mc.info["tokens"] == 3 * 2 * tokens
    # A trace cut before its answer line, from a completer that never answers: no prefix can be decided right.
    (bi,) = run("binary", [make(3, answer_right=None)], fake({"q": {"default": "-"}}))
    assert bi.labels == [False, None, None]


def test_monotone_patterns_binary_equals_mc_with_fewer_rollouts():
    for n in range(1, 7):
        for fail in range(1, n + 2):  # first prefix that cannot reach the answer; n + 1 = none
            for answered in (True, False):
                # with an answer line, it is the last prefix: right iff no prefix fails before it
                t = make(n, answer_right=(fail == n + 1) if answered else None, name=f"n{n}f{fail}{answered}")
                total = n + 1 if answered else n
                pattern = {str(i): ("1" if i < fail else "0") for i in range(1, total + 1)}
                c = fake({t.problem[8:-1]: pattern})
                for opts in (LabelOptions(k=3), LabelOptions(k=3, mode="hard", early_stop=True)):
                    (mc,) = run("mc", [t], c, opts)
                    (bi,) = run("binary", [t], c, opts)
                    assert bi.labels == mc.labels, (n, fail, answered, opts)
                    assert bi.info["rollouts"] <= mc.info["rollouts"]


def test_batching_does_not_change_labels_and_prefixes_share_a_call():
    traces = [make(3 + i % 3, answer_right=i % 2 == 0, name=f"b{i}") for i in range(6)]
    c = fake({}, default=0.5, traces=traces, seed=7)
    together = run("mc", traces, c, LabelOptions(k=4, mode="hard", early_stop=True))
    assert c.calls == len(rounds(4, True))  # one call per round for the whole batch
    alone = [run("mc", [t], c, LabelOptions(k=4, mode="hard", early_stop=True))[0] for t in traces]
    assert [x.labels for x in together] == [x.labels for x in alone]
    assert [x.info for x in together] == [x.info for x in alone]
    assert {x.info["outcomes"][0][0] for x in together} == {"0", "1"}  # the probabilistic script does vary


def test_probabilistic_outcomes_do_not_depend_on_rounds():
    t = make(2, answer_right=None)
    c = fake({}, default=0.5, traces=[t], seed=3)
    full = estimate([(t, 1)], c, 8, early_stop=False)[0]
    first = c.complete([(t.problem, t.steps[:1])], 2, [rollout_key(t.id, 1, 0)])[0]
    later = c.complete([(t.problem, t.steps[:1])], 3, [rollout_key(t.id, 1, 5)])[0]
    assert "".join("1" if r.answer == "30" else "0" for r in first + later) == full.outcomes[:2] + full.outcomes[5:]
    assert "0" in full.outcomes and "1" in full.outcomes


def test_bad_inputs():
    t = make(2, answer_right=False)
    with pytest.raises(ValueError, match="early_stop"):
        LabelOptions(k=4, mode="soft", early_stop=True)
    with pytest.raises(ValueError, match="gold answer"):
        run("mc", [StepRecord("x/0", "Problem q?", ["a"], answer=None)], fake({"q": {}}))

    class Short:
        def complete(self, requests, k, keys):
            return [[] for _ in requests]

    with pytest.raises(RuntimeError, match="completer returned"):
        run("mc", [t], Short())
    with pytest.raises(ValueError, match="outcome"):
        fake({"q": {"1": "12"}})

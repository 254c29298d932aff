"""What every search strategy shares: the sampled-step contract, turning a sample into a child, the result of one
problem's search, and the adapters from a causal LM and a PRM to the two functions a search calls.

A search never touches a model: it calls

- `sample_fn(requests, k, keys) -> per request, k samples (text, tokens, stop, logprob)`, where a request is
  (problem index, steps so far) and keys[i] seeds request i (so results do not depend on batching);
- `score_fn(requests) -> per request, one score per step` (the PRM, or the Q-value model).

Tests drive the strategies with scripted functions of the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from prm.answers import extract_answer

Request = tuple[int, list[str]]
T = TypeVar("T")
SampleFn = Callable[[list[Request], int, list[str]], list[list[tuple]]]
ScoreFn = Callable[[list[Request]], list[list[float]]]


@dataclass
class Child:
    steps: list[str]
    done: bool  # ends in an answer line, the end of turn, the token limit, or the depth limit
    tokens: int
    logprob: float = 0.0  # the policy's log-probability of the sampled text (PUCT priors use it)


def child_of(parent: Sequence[str], sample: tuple, depth_limit: int) -> Child | None:
    """The partial solution one sample makes: the parent's steps and the sample's non-empty lines; None when the
    sample wrote nothing (nothing to search from). `depth_limit`: a child with this many steps is complete."""
    text, tokens, stop = sample[:3]
    logprob = sample[3] if len(sample) > 3 else 0.0
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if not lines:
        return None
    steps = list(parent) + lines
    done = stop != "line" or extract_answer(lines[-1]) is not None or len(steps) >= depth_limit
    return Child(steps, done, tokens, logprob)


@dataclass
class SearchResult:
    problem_index: int
    steps: list[str] = field(default_factory=list)  # the chosen solution ([] when nothing completed)
    scores: list[float] = field(default_factory=list)
    prediction: str | None = None
    tokens: int = 0  # every token sampled for this problem
    expansions: int = 0  # policy samples drawn
    finished: list = field(default_factory=list)  # complete solutions the search kept
    timed_out: bool = False  # stopped by the per-problem time limit (counted as it ended, usually wrong)
    # Per finished solution: the value its strategy ranks it by and the problem's tokens when it completed, so that
    # other answer rules and earlier stops can be read off one run (README: Benchmarks -> search at equal compute).
    finished_at: list[tuple[float, int]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.finished)

    def finish(self, solution, rank: float) -> None:
        """Keep a complete solution (anything with `.steps` and `.scores`), ranked by `rank` in its strategy."""
        self.finished.append(solution)
        self.finished_at.append((rank, self.tokens))

    def completions(self) -> list[dict]:
        """Every finished solution in the order it completed: its stated answer (None if none), the strategy's rank
        of it, its step scores and the problem's tokens at that moment."""
        return [
            {
                "answer": stated_answer(sol),
                "rank": round(rank, 6),
                "scores": [round(x, 6) for x in sol.scores],
                "tokens": t,
            }
            for sol, (rank, t) in zip(self.finished, self.finished_at, strict=True)
        ]

    def choose(self, steps: list[str], scores: list[float]) -> None:
        self.steps, self.scores = list(steps), list(scores)
        self.prediction = extract_answer(steps[-1]) if steps else None


def rollout_ends(
    sample_fn: SampleFn, requests: list[tuple[int, list[str]]], keys: list[str], max_steps: int
) -> tuple[list[list[str]], list[int]]:
    """Each request's steps finished by the policy a line at a time (one sampling call per depth for all of them, the
    key of request i and the depth seeding each line), and the tokens each rollout sampled. A rollout ends at an
    answer line, the end of turn, the depth limit, or a sample that wrote nothing."""
    ends = [list(steps) for _, steps in requests]
    spent = [0] * len(requests)
    open_ = [i for i in range(len(requests))]
    while open_:
        outs = sample_fn([(requests[i][0], ends[i]) for i in open_], 1, [f"{keys[i]}/{len(ends[i])}" for i in open_])
        still = []
        for i, samples in zip(open_, outs, strict=True):
            spent[i] += samples[0][1]
            child = child_of(ends[i], samples[0], max_steps)
            if child is not None:
                ends[i] = child.steps
                if not child.done:
                    still.append(i)
        open_ = still
    return ends, spent


def stated_answer(sol) -> str | None:
    """The answer a solution's last line states (anything with `.steps`); None when it states none."""
    return extract_answer(sol.steps[-1]) if sol.steps else None


def weighted_answer(solutions: Sequence[T], weight: Callable[[T], float]) -> T | None:
    """Of complete solutions (anything with `.steps`), the best-weighted one among those whose answer has the
    largest total weight; None when none states an answer."""
    totals: dict[str, float] = {}
    best: dict[str, tuple[T, float]] = {}
    for sol in solutions:
        ans = stated_answer(sol)
        if ans is None:
            continue
        w = weight(sol)
        totals[ans] = totals.get(ans, 0.0) + w
        if ans not in best or w > best[ans][1]:
            best[ans] = (sol, w)
    if not totals:
        return None
    return best[max(totals, key=lambda a: totals[a])][0]


def best_stated(solutions: Sequence[T], key: Callable[[T], float]) -> T:
    """The best complete solution by `key` among those that state an answer, or among all when none does: a solution
    that stops without an answer line (depth or token limit) is wrong whatever its score, so it never beats one
    that answers."""
    stated = [sol for sol in solutions if stated_answer(sol) is not None]
    return max(stated or solutions, key=key)


def vote_weight(value: float, how: str) -> float:
    """A solution's weight in a vote from its aggregate: `prod` is a sum of logs, so it votes with the probability
    it stands for; every other aggregate is a probability already.

    >>> vote_weight(0.5, "min"), vote_weight(0.0, "prod")
    (0.5, 1.0)
    """
    return math.exp(value) if how == "prod" else value


def model_sampler(engine, problems: Sequence[str], params, shots, system) -> SampleFn:
    """A `sample_fn` over a sampling engine (`prm.generate.engine`: ours or vLLM): the policy's prompt with the steps
    so far, one line per sample."""
    from prm.generate.prompt import build_prompt

    line_params = replace(params, stop_at="line")

    def fn(requests, k, keys):
        prompts = [
            build_prompt(engine.tokenizer, problems[p], shots=shots, system=system, prefix=steps)
            for p, steps in requests
        ]
        out = engine.sample(prompts, k, line_params, keys=keys)
        return [[(s.text, s.tokens, s.stop, s.logprob) for s in row] for row in out]

    return fn


def prm_scorer_fn(scorer, problems: Sequence[str]) -> ScoreFn:
    """A `score_fn` over a `PRMScorer` (a PRM or a Q-value model: both score every step of a prefix)."""

    def fn(requests):
        return scorer.score_batch([(problems[p], steps) for p, steps in requests]) if requests else []

    return fn

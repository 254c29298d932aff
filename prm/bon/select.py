"""Best-of-N selection: pure functions over candidate pools, and accuracy against N over random draws.

A pool is one problem's candidates (sampled solutions with their per-step scores). A selector picks one candidate
(or one answer) from a subset of the pool; its correctness is an expectation where ties leave a choice: among the
k tied best candidates (or answers), a uniformly random one is taken, so a selector is never credited for a lucky
tie-break. `accuracy_curve` draws N of the pool's M candidates without replacement, `trials` times, and reports the
mean and standard deviation over trials of the accuracy over problems (the protocol of PRM800K's best-of-N plot).

    pools = [[Candidate("7", True, (0.9, 0.8)), Candidate("6", False, (0.9, 0.2))], ...]
    curve = accuracy_curve(pools, ns=[1, 2], selectors=standard_selectors(), trials=100, seed=0)
    curve["prm-min"]["mean"]   # [acc at N=1, acc at N=2]
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from prm.answers import normalize_number
from prm.eval.calibration import are_probabilities

AGGREGATES = ("min", "prod", "last", "mean")


@dataclass(frozen=True)
class Candidate:
    """One sampled solution: its answer key (`answer_key`; None = no answer), whether it is correct, one score per
    step (from the main scorer), generated tokens, scores from other scorers by name (baselines), whether a
    calculator finds no wrong equation in it (`prm.checker.check_step`), and whether every step is right by
    reference labels (None: no labels)."""

    answer: str | None
    correct: bool
    scores: tuple[float, ...]
    tokens: int = 0
    extra: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)
    calc_ok: bool = True
    steps_right: bool | None = None


def answer_key(prediction: str | None) -> str | None:
    """A key under which equal answers vote together: the exact value of a number (`7`, `7.0` and `14/2` agree),
    else the stripped text.

    >>> answer_key("7.0"), answer_key(" 14/2 "), answer_key("x + 1"), answer_key(None)
    ('7', '7', 'x + 1', None)
    """
    if prediction is None or not prediction.strip():
        return None
    value = normalize_number(prediction)
    if value is None:
        return prediction.strip()
    return str(value.numerator) if value.denominator == 1 else str(Fraction(value))


def aggregate(scores: Sequence[float], how: str) -> float:
    """One number per solution from its step scores. `min`: the weakest step (a chain is as good as its worst
    link); `prod`: the product of probabilities, taken as a sum of logs (and as a plain sum for scores that are
    not probabilities, such as log-likelihoods, which add where probabilities multiply); `last`: the final step's
    score (what an outcome reward model gives); `mean`: the average step.

    >>> aggregate([0.9, 0.5, 0.8], "min"), aggregate([0.9, 0.5, 0.8], "last")
    (0.5, 0.8)
    """
    if not scores:
        raise ValueError("a solution needs at least one step score")
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "prod":
        if are_probabilities(scores):
            return sum(math.log(max(s, 1e-12)) for s in scores)
        return sum(scores)
    raise ValueError(f"unknown aggregate {how!r}; choose from {', '.join(AGGREGATES)}")


def _best_share(values: Sequence[float], correct: Sequence[bool]) -> float:
    """Expected correctness of picking a uniformly random one of the highest values."""
    top = max(values)
    tied = [c for v, c in zip(values, correct, strict=True) if v == top]
    return sum(tied) / len(tied)


def select_by_score(cands: Sequence[Candidate], how: str, scorer: str | None = None) -> float:
    """Best-of-N by an aggregate of step scores (`scorer` names an extra scorer; None = the main one)."""
    values = [aggregate(c.scores if scorer is None else c.extra[scorer], how) for c in cands]
    return _best_share(values, [c.correct for c in cands])


def _vote(cands: Sequence[Candidate], weights: Sequence[float]) -> float:
    totals: dict[str, float] = {}
    right: dict[str, bool] = {}
    for c, w in zip(cands, weights, strict=True):
        if c.answer is None:
            continue  # no answer, no vote
        totals[c.answer] = totals.get(c.answer, 0.0) + w
        right[c.answer] = right.get(c.answer, False) or c.correct
    if not totals:
        return 0.0
    keys = list(totals)
    return _best_share([totals[k] for k in keys], [right[k] for k in keys])


def majority(cands: Sequence[Candidate]) -> float:
    """Self-consistency: the most frequent answer (candidates without an answer do not vote)."""
    return _vote(cands, [1.0] * len(cands))


def weighted_vote(cands: Sequence[Candidate], how: str = "min") -> float:
    """PRM-weighted majority: each answer's votes weighted by its solutions' aggregate score (a probability; for
    log-score scorers, exp of the `prod` aggregate)."""
    probs = are_probabilities(s for c in cands for s in c.scores)
    weights = [aggregate(c.scores, how) if probs else math.exp(aggregate(c.scores, "prod")) for c in cands]
    return _vote(cands, weights)


def filtered_vote(cands: Sequence[Candidate], keep: Callable[[Candidate], bool]) -> float:
    """Majority vote among the candidates `keep` accepts, or among all when it accepts none: a verifier used as a
    filter before self-consistency."""
    kept = [c for c in cands if keep(c)]
    return majority(kept or cands)


def calc_vote(cands: Sequence[Candidate]) -> float:
    """The calculator selector: vote among the candidates whose equations all check (`calc_ok`), else among all. On
    arithmetic it is the cheap verifier a PRM has to beat; it cannot see a wrong operation, operand or value that
    is computed right."""
    return filtered_vote(cands, lambda c: c.calc_ok)


def calc_weighted_vote(cands: Sequence[Candidate], how: str = "min") -> float:
    """The calculator, then the PRM: a PRM-weighted vote among the candidates whose equations all check, else among
    all. What it gains over `calc_vote` is what the PRM adds where the calculator sees nothing wrong."""
    return weighted_vote([c for c in cands if c.calc_ok] or cands, how)


def judge_vote(cands: Sequence[Candidate]) -> float:
    """A perfect step judge: vote among the candidates whose every step is right by the reference labels (e.g. the
    exact `gold` labeler), else among all. What a PRM that judges steps without error would reach by voting."""
    return filtered_vote(cands, lambda c: bool(c.steps_right))


def random_pick(cands: Sequence[Candidate]) -> float:
    """A uniformly random candidate: its expected correctness is pass@1."""
    return sum(c.correct for c in cands) / len(cands)


def oracle(cands: Sequence[Candidate]) -> float:
    """Any candidate correct (pass@N): the ceiling every selector is bounded by."""
    return float(any(c.correct for c in cands))


Selector = Callable[[Sequence[Candidate]], float]


def standard_selectors(
    prefix: str = "prm", extra: Sequence[str] = (), extra_aggregates=("min", "last"), judge: bool = False
) -> dict:
    """Every selector of `prm bon`, by name: `<prefix>-<aggregate>` for the main scorer, `<prefix>-vote` (weighted
    majority), `<prefix>-calc-vote` (that vote among the candidates the calculator passes), `<name>-<aggregate>` for
    each extra scorer, then the calculator (`calc`), majority, random, with
    `judge` the perfect step judge (`judge-vote`, needs reference labels), and oracle."""
    out: dict[str, Selector] = {f"{prefix}-{how}": (lambda cs, how=how: select_by_score(cs, how)) for how in AGGREGATES}
    out[f"{prefix}-vote"] = weighted_vote
    out[f"{prefix}-calc-vote"] = calc_weighted_vote
    for name in extra:
        for how in extra_aggregates:
            out[f"{name}-{how}"] = lambda cs, how=how, name=name: select_by_score(cs, how, name)
    out["calc"] = calc_vote
    out["majority"] = majority
    out["random"] = random_pick
    if judge:
        out["judge-vote"] = judge_vote
    out["oracle"] = oracle
    return out


def powers_of_two(n_max: int) -> list[int]:
    """1, 2, 4, ... up to n_max, with n_max itself last when it is not a power of two.

    >>> powers_of_two(16), powers_of_two(12)
    ([1, 2, 4, 8, 16], [1, 2, 4, 8, 12])
    """
    ns, n = [], 1
    while n < n_max:
        ns.append(n)
        n *= 2
    return ns + [n_max]


def accuracy_curve(
    pools: Sequence[Sequence[Candidate]],
    ns: Sequence[int],
    selectors: dict[str, Selector],
    *,
    trials: int = 200,
    seed: int = 0,
    bootstrap: int = 1000,
) -> dict[str, dict[str, list[float]]]:
    """Accuracy at each N for each selector: {name: {"mean": [...], "std": [...], "problem_std": [...]}} in the
    order of `ns`.

    Each trial draws N candidates without replacement from every pool (the same draw for every selector, so their
    differences are paired) and takes the mean over problems; mean and std are over trials. N equal to the pool
    size needs one draw (std 0). `problem_std` is the other uncertainty, the one the std over draws cannot show:
    the standard deviation of the mean when the problems themselves are resampled with replacement (`bootstrap`
    times, each problem's accuracy averaged over the draws first) — how much the figure would move on another set
    of problems of the same kind.
    """
    if not pools:
        raise ValueError("no problems to select from")
    size = min(len(p) for p in pools)
    if any(n < 1 or n > size for n in ns):
        raise ValueError(f"every N must be in 1..{size} (the smallest pool), got {list(ns)}")
    rng = random.Random(seed)
    boot = random.Random(seed + 1)
    out = {name: {"mean": [], "std": [], "problem_std": []} for name in selectors}
    for n in ns:
        runs = 1 if n == size and all(len(p) == size for p in pools) else trials
        acc = {name: [] for name in selectors}
        per_problem = {name: [0.0] * len(pools) for name in selectors}
        for _ in range(runs):
            draws = [rng.sample(list(p), n) if n < len(p) else list(p) for p in pools]
            for name, fn in selectors.items():
                scores = [fn(d) for d in draws]
                acc[name].append(sum(scores) / len(scores))
                pp = per_problem[name]
                for i, x in enumerate(scores):
                    pp[i] += x / runs
        picks = [[boot.randrange(len(pools)) for _ in pools] for _ in range(bootstrap)]
        for name, vals in acc.items():
            out[name]["mean"].append(statistics.fmean(vals))
            out[name]["std"].append(statistics.pstdev(vals) if len(vals) > 1 else 0.0)
            pp = per_problem[name]
            means = [sum(pp[i] for i in pick) / len(pick) for pick in picks]
            out[name]["problem_std"].append(statistics.pstdev(means) if len(means) > 1 else 0.0)
    return out

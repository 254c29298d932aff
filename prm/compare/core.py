"""Compute-matched comparison of best-of-N and the search strategies: budgets, the runs, and their summaries.

A budget is counted in samples' tokens: budget k means k times the mean generated tokens of one full sample from
the best-of-N pool. Best-of-N spends it as N = k samples; A* and MCTS stop when their sampled tokens reach it; beam
search and DVTS have no token stop, so k sets their shape (width x expand = k samples per depth, about k samples'
tokens over a solution) and their real tokens are reported. Every row carries the tokens actually generated per
problem, so the comparison is read on that axis, not on the nominal budget.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

from prm.answers import answers_equal
from prm.bon.select import Candidate, majority, select_by_score, weighted_vote
from prm.records import StepRecord
from prm.search.steps import SearchResult
from prm.search.strategies import Strategy
from prm.stats import bootstrap_std


def beam_shape(samples: int) -> tuple[int, int]:
    """(width, expand) of beam search and DVTS for a budget of `samples` samples: width x expand = samples, the
    width a power of two near its square root.

    >>> [beam_shape(k) for k in (1, 2, 4, 8, 16, 32)]
    [(1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (4, 8)]
    """
    width = 2 ** (int(math.log2(max(samples, 1))) // 2)
    return width, max(1, samples // width)


def unit_strategy(strategy: str, samples: int, tokens_per_sample: float, cfg) -> Strategy:
    """The strategy of one unit at a budget of `samples` samples' tokens (cfg: a CompareConfig)."""
    budget = max(1, round(samples * tokens_per_sample))
    if strategy in ("beam", "dvts"):
        width, expand = beam_shape(samples)
        return Strategy(
            strategy,
            width=width,
            expand=expand,
            max_steps=cfg.max_steps,
            rank_by=cfg.beam_rank_by,
            answer=cfg.beam_answer,
        )
    if strategy == "astar":
        # n_solutions = samples. It can bind before the budget: complete solutions share prefixes, so each costs less
        # than a full sample (it did on 17 of 48 problems at 32 samples in the README's verifier run).
        return Strategy(
            "astar",
            expand=cfg.astar_expand,
            budget=budget,
            max_steps=cfg.max_steps,
            rank_by=cfg.astar_g,
            lam=cfg.astar_lambda,
            n_solutions=max(samples, 1),
            answer=cfg.astar_answer,
            grow=cfg.astar_grow,
        )
    return Strategy(
        strategy,
        expand=cfg.mcts_expand,
        budget=budget,
        max_steps=cfg.max_steps,
        c_puct=cfg.mcts_c,
        prior=cfg.mcts_prior,
        answer=cfg.mcts_answer,
        rollout=cfg.mcts_rollout,
    )


def unit_rows(results: Sequence[SearchResult], problems: Sequence[StepRecord]) -> list[dict]:
    """One row per problem of a search unit: what it answered, whether that is right, what it spent."""
    return [
        {
            "problem_id": p.id,
            "prediction": r.prediction,
            "correct": answers_equal(r.prediction, p.answer),
            "tokens": r.tokens,
            "expansions": r.expansions,
            "completed": r.completed,
            "timed_out": r.timed_out,
            "steps": r.steps,
            "scores": [round(x, 6) for x in r.scores],
            "finished": r.completions(),
        }
        for r, p in zip(results, problems, strict=True)
    ]


def summarize(values: Sequence[float], tokens: Sequence[float], hard: Sequence[bool], seed: int = 0) -> dict:
    """Accuracy (mean of per-problem correctness), its bootstrap std over problems, tokens per problem, and the same
    accuracy on the easy and the hard problems apart."""

    def part(keep: bool | None) -> dict:
        xs = [v for v, h in zip(values, hard, strict=True) if keep is None or h == keep]
        return {"accuracy": statistics.fmean(xs) if xs else None, "std": bootstrap_std(xs, seed=seed), "n": len(xs)}

    return {
        "tokens": statistics.fmean(tokens) if tokens else 0.0,
        "all": part(None),
        "easy": part(False),
        "hard": part(True),
    }


def search_summary(rows: Sequence[dict], hard: Sequence[bool], seed: int = 0) -> dict:
    out = summarize([float(r["correct"]) for r in rows], [r["tokens"] for r in rows], hard, seed)
    out["timed_out"] = sum(r["timed_out"] for r in rows)
    out["no_answer"] = sum(r["prediction"] is None for r in rows)
    return out


def bon_summaries(
    pools: Sequence[Sequence[Candidate]],
    hard: Sequence[bool],
    budgets: Sequence[int],
    trials: int,
    seed: int,
    rank_by: str = "min",
) -> dict[str, dict[int, dict]]:
    """Best-of-N at N = each budget (capped at the pool size): the PRM-weighted vote ("bon"), the solution the PRM
    ranks first by `rank_by` ("bon_rank") and majority vote, per-problem accuracy averaged over `trials` random
    draws of N, then summarized like a search unit. Both PRM selectors are kept because which one wins depends on
    the PRM: the demo's PRM, which scores most wrong steps near 0.97, votes better than it ranks; a PRM that
    separates right steps from wrong ones ranks better than it votes."""
    size = min(len(p) for p in pools)
    selectors = {
        "bon": weighted_vote,
        "bon_rank": lambda draw: select_by_score(draw, rank_by),
        "majority": majority,
    }
    per_candidate = [statistics.fmean(c.tokens for c in p) for p in pools]
    out: dict[str, dict[int, dict]] = {name: {} for name in selectors}
    for budget in budgets:
        n = min(budget, size)
        rng = random.Random(seed)
        runs = 1 if n == size else trials
        per_problem = {name: [0.0] * len(pools) for name in selectors}
        for _ in range(runs):
            for i, pool in enumerate(pools):
                draw = rng.sample(list(pool), n) if n < len(pool) else list(pool)
                for name, fn in selectors.items():
                    per_problem[name][i] += fn(draw) / runs
        for name in selectors:
            s = summarize(per_problem[name], [n * t for t in per_candidate], hard, seed)
            out[name][budget] = s | {"n": n, "capped": budget > size}
    return out

"""One entry point for every search strategy, so `prm search` and `prm compare` run them the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prm.search.astar import astar
from prm.search.beam import search as beam_search
from prm.search.mcts import mcts
from prm.search.steps import SampleFn, ScoreFn, SearchResult

STRATEGIES = ("beam", "dvts", "astar", "mcts")


@dataclass(frozen=True)
class Strategy:
    """A strategy and its knobs. beam/dvts: width, expand, rank_by (the aggregate that ranks partial solutions and
    complete ones), answer (best | vote).
    astar: budget (sampled tokens per problem), expand, rank_by (g), lam, n_solutions, answer (best | vote), grow
    (step | path: a popped node grows by single steps or by rollouts to the end).
    mcts: budget, expand, c_puct, prior (policy | uniform), answer (visits | best | vote), rollout (the weight of one
    rollout's verdict in each leaf's value; 0: none)."""

    name: str
    width: int = 4
    expand: int = 4
    budget: int = 1000
    max_steps: int = 8
    rank_by: str = "last"
    lam: float = 1.0
    n_solutions: int = 4
    answer: str = ""  # "" = the strategy's own default (beam, dvts, astar: best; mcts: visits)
    c_puct: float = 1.0
    prior: str = "policy"
    rollout: float = 0.0
    grow: str = "step"


def run_strategy(
    s: Strategy,
    sample_fn: SampleFn,
    score_fn: ScoreFn,
    value_fn: ScoreFn | None,
    n_problems: int,
    *,
    expired: Callable[[int], bool] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> list[SearchResult]:
    """Search every problem with `s`. value_fn: the Q-value model (A*'s h, MCTS's leaf value); None = the PRM."""
    if s.name in ("beam", "dvts"):
        return beam_search(
            sample_fn,
            score_fn,
            n_problems,
            strategy=s.name,
            width=s.width,
            expand=s.expand,
            max_steps=s.max_steps,
            how=s.rank_by,
            answer=s.answer or "best",
            on_depth=on_round,
            expired=expired,
        )
    if s.name == "astar":
        return astar(
            sample_fn,
            score_fn,
            n_problems,
            budget=s.budget,
            value_fn=value_fn,
            expand=s.expand,
            n_solutions=s.n_solutions,
            max_steps=s.max_steps,
            how=s.rank_by,
            lam=s.lam,
            answer=s.answer or "best",
            grow=s.grow,
            expired=expired,
            on_round=on_round,
        )
    if s.name == "mcts":
        return mcts(
            sample_fn,
            value_fn or score_fn,
            n_problems,
            budget=s.budget,
            expand=s.expand,
            c_puct=s.c_puct,
            prior=s.prior,
            max_steps=s.max_steps,
            answer=s.answer or "visits",
            rollout=s.rollout,
            expired=expired,
            on_round=on_round,
        )
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {s.name!r}")

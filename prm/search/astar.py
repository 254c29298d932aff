"""Best-first (A*-style) search over partial solutions, with the PRM's step scores as the path cost and a Q-value
model's estimate of the newest step as the heuristic.

Every node is a partial solution. Its priority is f = g + lam * h: g aggregates the PRM's scores of the node's
steps (min, mean, last or prod), h is the Q-value model's score of its newest step (the chance that the solution
still reaches the right answer from here; without a Q-value model, the PRM's score of that step). Each round pops
the `pops` best open nodes of every problem, samples `expand` next steps for each (one line each), scores the
children and pushes them. A child that ends (answer line, end of turn, token limit, depth limit) is a complete
solution and is not expanded. A problem stops when its sampled tokens reach `budget`, when `n_solutions` are
complete, when nothing is left open, or when `expired(problem)` says so. The answer is the complete solution with
the best f (`answer="best"`) or the answer with the largest total g among the complete ones (`answer="vote"`).

A child identical to a node already in the tree is dropped (its tokens still count): sampling at temperature < 1
repeats steps often, and expanding the same prefix twice would spend budget on nothing new. Every sampled token
counts, also those of children that are never popped. Seeding as in beam search: a node's children depend only on
(seed, problem, node path, child index).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from prm.bon.select import aggregate
from prm.search.steps import SampleFn, ScoreFn, SearchResult, child_of, vote_weight, weighted_answer


@dataclass
class Node:
    steps: list[str]
    key: str
    scores: list[float] = field(default_factory=list)  # the PRM's score of each step
    g: float = 0.0
    h: float = 0.0
    f: float = 0.0
    done: bool = False


def astar(
    sample_fn: SampleFn,
    score_fn: ScoreFn,
    n_problems: int,
    *,
    budget: int,
    value_fn: ScoreFn | None = None,
    expand: int = 4,
    pops: int = 1,
    n_solutions: int = 4,
    max_steps: int = 8,
    how: str = "min",
    lam: float = 1.0,
    answer: str = "best",
    expired: Callable[[int], bool] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> list[SearchResult]:
    """Search every problem at once: one sampling call and one scoring call (two with a Q-value model) per round.
    `budget` is in sampled tokens per problem; a round may overshoot it by the samples of its last expansion."""
    if min(budget, expand, pops, n_solutions, max_steps) < 1:
        raise ValueError("budget, expand, pops, n_solutions and max_steps must be >= 1")
    if answer not in ("best", "vote"):
        raise ValueError(f"answer must be best or vote, got {answer!r}")
    aggregate([0.5], how)  # an unknown aggregate fails here, before any sampling
    results = [SearchResult(p) for p in range(n_problems)]
    tie = itertools.count()  # heap entries compare by f, then by insertion: never by node
    heaps: list[list] = [[(0.0, next(tie), Node([], "r"))] for _ in range(n_problems)]
    seen: list[set[tuple[str, ...]]] = [set() for _ in range(n_problems)]
    active = set(range(n_problems))
    rounds = 0
    while active:
        for p in sorted(active):
            res = results[p]
            if expired and expired(p):
                res.timed_out = True
            if res.timed_out or res.tokens >= budget or res.completed >= n_solutions or not heaps[p]:
                active.discard(p)
        if not active:
            break
        popped = [(p, heapq.heappop(heaps[p])[2]) for p in sorted(active) for _ in range(min(pops, len(heaps[p])))]
        outs = sample_fn([(p, n.steps) for p, n in popped], expand, [f"{p}/{n.key}" for p, n in popped])
        children: list[tuple[int, Node]] = []
        for (p, parent), samples in zip(popped, outs, strict=True):
            for j, sample in enumerate(samples):
                results[p].tokens += sample[1]
                results[p].expansions += 1
                child = child_of(parent.steps, sample, max_steps)
                if child is None or tuple(child.steps) in seen[p]:
                    continue
                seen[p].add(tuple(child.steps))
                children.append((p, Node(child.steps, f"{parent.key}.{j}", done=child.done)))
        if children:
            requests = [(p, n.steps) for p, n in children]
            scores = score_fn(requests)
            values = value_fn(requests) if value_fn is not None else scores
            for (p, n), s, v in zip(children, scores, values, strict=True):
                n.scores, n.g, n.h = list(s), aggregate(s, how), v[-1]
                n.f = n.g + lam * n.h
                if n.done:
                    results[p].finished.append(n)
                else:
                    heapq.heappush(heaps[p], (-n.f, next(tie), n))
        rounds += 1
        if on_round:
            on_round(rounds, len(active))
    for res in results:
        if not res.finished:
            continue
        if answer == "best":
            best = max(res.finished, key=lambda n: n.f)
        else:
            best = weighted_answer(res.finished, lambda n: vote_weight(n.g, how)) or max(
                res.finished, key=lambda n: n.f
            )
        res.choose(best.steps, best.scores)
    return results

"""Best-first (A*-style) search over partial solutions, with the PRM's step scores as the path cost and a Q-value
model's estimate of the newest step as the heuristic.

Every node is a partial solution. Its priority is f = g + lam * h: g aggregates the PRM's scores of the node's
steps (min, mean, last or prod), h is the Q-value model's score of its newest step (the chance that the solution
still reaches the right answer from here; without a Q-value model, the PRM's score of that step). Each round pops
the `pops` best open nodes of every problem, samples `expand` next steps for each (one line each), scores the
children and pushes them. A child that ends (answer line, end of turn, token limit, depth limit) is a complete
solution and is not expanded. A problem stops when its sampled tokens reach `budget`, when `n_solutions` are
complete, or when `expired(problem)` says so. When every node has been expanded before then, the expanded nodes open
again and are expanded with fresh samples (on a problem where the policy writes the same few steps, the open list
empties early: without this, 26 of 48 problems of the README's verifier run stopped short of 32 samples' tokens).
A problem whose budget runs out with nothing complete gets one rollout to an answer from its best open node (with
one step per pop, half the problems had no answer at 4 samples' tokens). The answer is the complete solution with
the best f among those that state an answer (`answer="best"`) or the answer with the largest total g among the
complete ones (`answer="vote"`).

A child identical to a node already in the tree is dropped (its tokens still count): sampling at temperature < 1
repeats steps often, and expanding the same prefix twice would spend budget on nothing new. Every sampled token
counts, also those of children that are never popped. Seeding as in beam search: a node's children depend only on
(seed, problem, node path, child index).

`grow="path"` expands a popped node by `expand` rollouts instead of `expand` single steps: the policy finishes the
solution from the node a line at a time, every new prefix of a rollout joins the tree as an open node, and its end
is complete. One step per pop reaches an answer only after as many pops as the solution has steps, so a small budget
ends with paths still open (at 4 samples' tokens, half the problems of the README's run had no complete solution).
A rollout ends in an answer, and the next pop starts again from the best prefix by f, which after a rollout with
one low-scored step is the prefix before it: the search resamples from where the PRM doubts, and keeps the prefix
it trusts instead of sampling it again as best-of-N does. The PRM is causal (a step's score depends on the steps
before it only), so one scoring call on the rollout's end gives the scores of all of its prefixes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from prm.bon.select import aggregate
from prm.search.steps import (
    SampleFn,
    ScoreFn,
    SearchResult,
    best_stated,
    child_of,
    rollout_ends,
    vote_weight,
    weighted_answer,
)


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
    grow: str = "step",
    expired: Callable[[int], bool] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> list[SearchResult]:
    """Search every problem at once: one sampling call (one per depth of the rollouts with `grow="path"`) and one
    scoring call (two with a Q-value model) per round. `budget` is in sampled tokens per problem; a round may
    overshoot it by the samples of its last expansion."""
    if min(budget, expand, pops, n_solutions, max_steps) < 1:
        raise ValueError("budget, expand, pops, n_solutions and max_steps must be >= 1")
    if answer not in ("best", "vote"):
        raise ValueError(f"answer must be best or vote, got {answer!r}")
    if grow not in ("step", "path"):
        raise ValueError(f"grow must be step or path, got {grow!r}")
    aggregate([0.5], how)  # an unknown aggregate fails here, before any sampling
    results = [SearchResult(p) for p in range(n_problems)]
    tie = itertools.count()  # heap entries compare by f, then by insertion: never by node
    heaps: list[list] = [[(0.0, next(tie), Node([], "r"))] for _ in range(n_problems)]
    closed: list[list[Node]] = [[] for _ in range(n_problems)]  # popped nodes, for reopening
    reopened_at = [-1] * n_problems  # a problem's tokens when it last reopened its nodes
    grown = _grow_paths if grow == "path" else _grow_steps
    seen: list[set[tuple[str, ...]]] = [set() for _ in range(n_problems)]

    def place(children: list[tuple[int, Node, list[str]]]) -> None:
        # Score each new path once: the one request of a node that is its own path, or a rollout's end for every
        # new prefix of that rollout (their scores are the first scores of the end's).
        index: dict[tuple[int, tuple[str, ...]], int] = {}
        for p, _, steps in children:
            index.setdefault((p, tuple(steps)), len(index))
        requests = [(p, list(steps)) for p, steps in index]
        scores = score_fn(requests)
        values = value_fn(requests) if value_fn is not None else scores
        for p, n, steps in children:
            i, depth = index[(p, tuple(steps))], len(n.steps)
            s, v = scores[i][:depth], values[i][:depth]
            n.scores, n.g, n.h = list(s), aggregate(s, how), v[-1]
            n.f = n.g + lam * n.h
            if n.done:
                results[p].finish(n, n.f)
            else:
                heapq.heappush(heaps[p], (-n.f, next(tie), n))

    active = set(range(n_problems))
    rounds = 0
    while active:
        for p in sorted(active):
            res = results[p]
            if expired and expired(p):
                res.timed_out = True
            if res.timed_out or res.tokens >= budget or res.completed >= n_solutions:
                active.discard(p)
            elif not heaps[p] and closed[p] and res.tokens > reopened_at[p]:
                # Every node is expanded but budget is left: the expanded nodes open again, and their next
                # children are fresh samples (a new key seeds them). A problem whose reopened nodes sampled
                # nothing at all is not reopened again, so the search always ends.
                reopened_at[p] = res.tokens
                for n in closed[p]:
                    n.key += "~"
                    heapq.heappush(heaps[p], (-n.f, next(tie), n))
                closed[p].clear()
            if not heaps[p]:
                active.discard(p)
        if not active:
            break
        popped = [(p, heapq.heappop(heaps[p])[2]) for p in sorted(active) for _ in range(min(pops, len(heaps[p])))]
        for p, n in popped:
            closed[p].append(n)
        children = grown(sample_fn, popped, expand, max_steps, results, seen)
        if children:
            place(children)
        rounds += 1
        if on_round:
            on_round(rounds, len(active))
    # A problem whose budget ran out with nothing complete gets one rollout from its best open node, so the search
    # always answers; its tokens count (the budget may be overshot by about one sample).
    starts = [
        (p, max([n for _, _, n in heaps[p]] or closed[p], key=lambda n: n.f))  # unexpanded first
        for p, res in enumerate(results)
        if not res.finished and not res.timed_out and (heaps[p] or closed[p])
    ]
    if starts:
        ends, spent = rollout_ends(
            sample_fn, [(p, n.steps) for p, n in starts], [f"{p}/{n.key}/finish" for p, n in starts], max_steps
        )
        for (p, n), end, tokens in zip(starts, ends, spent, strict=True):
            results[p].tokens += tokens
            results[p].expansions += len(end) - len(n.steps)
        finishes = [(p, Node(end, f"{n.key}/finish", done=True), end) for (p, n), end in zip(starts, ends, strict=True)]
        place([c for c in finishes if len(c[2]) > 0])  # a rollout from the root that wrote nothing has no steps
    for res in results:
        if not res.finished:
            continue
        best = best_stated(res.finished, lambda n: n.f)
        if answer == "vote":
            best = weighted_answer(res.finished, lambda n: vote_weight(n.g, how)) or best
        res.choose(best.steps, best.scores)
    return results


def _grow_steps(sample_fn, popped, expand, max_steps, results, seen) -> list[tuple[int, Node, list[str]]]:
    """`expand` next steps of every popped node, one line each: (problem, new node, the path that scores it)."""
    outs = sample_fn([(p, n.steps) for p, n in popped], expand, [f"{p}/{n.key}" for p, n in popped])
    children = []
    for (p, parent), samples in zip(popped, outs, strict=True):
        for j, sample in enumerate(samples):
            results[p].tokens += sample[1]
            results[p].expansions += 1
            child = child_of(parent.steps, sample, max_steps)
            if child is None or tuple(child.steps) in seen[p]:
                continue
            seen[p].add(tuple(child.steps))
            children.append((p, Node(child.steps, f"{parent.key}.{j}", done=child.done), child.steps))
    return children


def _grow_paths(sample_fn, popped, expand, max_steps, results, seen) -> list[tuple[int, Node, list[str]]]:
    """`expand` rollouts from every popped node: each new prefix of a rollout is a new node (its end complete)."""
    rollouts = [(p, parent, f"{parent.key}.{j}") for p, parent in popped for j in range(expand)]
    ends, spent = rollout_ends(
        sample_fn, [(p, parent.steps) for p, parent, _ in rollouts], [f"{p}/{key}" for p, _, key in rollouts], max_steps
    )
    children = []
    for (p, parent, key), end, tokens in zip(rollouts, ends, spent, strict=True):
        results[p].tokens += tokens
        results[p].expansions += len(end) - len(parent.steps)  # lines that wrote something (empty ones: tokens only)
        # A rollout ends at an answer, the end of turn, the depth limit or an empty line: its end is complete.
        for depth in range(len(parent.steps) + 1, len(end) + 1):
            prefix = tuple(end[:depth])
            if prefix not in seen[p]:
                seen[p].add(prefix)
                children.append((p, Node(list(prefix), f"{key}:{depth}", done=depth == len(end)), end))
    return children

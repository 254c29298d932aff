"""PRM-guided step-level search: beam search and diverse verifier tree search (DVTS).

At every depth each live partial solution ("beam") writes `expand` candidate next steps (the policy samples one
line each, `stop_at="line"`), the PRM scores every extended prefix, and the best survive:

- beam: one group per problem keeping the `width` best children overall;
- dvts: `width` independent groups (subtrees) per problem, each keeping its single best child, so the survivors
  cannot all descend from one early step.

A root expands to width x expand children (per group, keep x expand), so every depth costs at most the same number
of samples. A child that ends (answer line, end of turn, or token limit) is complete and stops expanding; when no
beam is live, or after `max_steps`, the answer is the complete solution with the best PRM aggregate among those
that state an answer (`answer="best"`), or the answer with the largest total aggregate among the complete
solutions (`answer="vote"`: the PRM-weighted vote that best-of-N uses, over what the search kept). Every sampled
token counts towards the budget, also those of children that did not survive.

Prompts and seeding are those of `prm generate`: a child's randomness depends only on (seed, problem, depth, parent,
child index), so results do not depend on batching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prm.bon.select import aggregate
from prm.search.steps import SampleFn, ScoreFn, SearchResult, best_stated, child_of, vote_weight, weighted_answer


@dataclass
class Beam:
    steps: list[str]
    score: float = 0.0  # the aggregate the search ranks by
    scores: list[float] = field(default_factory=list)  # the PRM's score of each step
    done: bool = False
    group: int = 0
    key: str = ""


def search(
    sample_fn: SampleFn,
    score_fn: ScoreFn,
    n_problems: int,
    *,
    strategy: str = "beam",
    width: int = 4,
    expand: int = 4,
    max_steps: int = 8,
    how: str = "last",
    answer: str = "best",
    on_depth: Callable[[int, int], None] | None = None,
    expired: Callable[[int], bool] | None = None,
) -> list[SearchResult]:
    """Search every problem at once (one sampling call and one scoring call per depth).

    sample_fn and score_fn as in `prm.search.steps`. `how` ranks partial solutions: `last` (the PRM's judgement
    of the newest step, as a prefix score) or min/prod/mean over the steps; the final pick among complete solutions
    uses the same aggregate, by the best one (`answer="best"`) or a vote (`"vote"`). `expired(problem)` true stops
    that problem's search where it is (a time limit).
    """
    if strategy not in ("beam", "dvts"):
        raise ValueError(f"strategy must be beam or dvts, got {strategy!r}")
    if answer not in ("best", "vote"):
        raise ValueError(f"answer must be best or vote, got {answer!r}")
    if width < 1 or expand < 1 or max_steps < 1:
        raise ValueError("width, expand and max_steps must be >= 1")
    groups, keep = (1, width) if strategy == "beam" else (width, 1)
    live: list[tuple[int, Beam]] = [
        (p, Beam([], group=g, key=f"g{g}")) for p in range(n_problems) for g in range(groups)
    ]
    results = [SearchResult(p) for p in range(n_problems)]
    for depth in range(max_steps):
        if expired:
            for p in {p for p, _ in live if expired(p)}:
                results[p].timed_out = True
            live = [(p, b) for p, b in live if not results[p].timed_out]
        if not live:
            break
        k = keep * expand if depth == 0 else expand  # roots expand wider: every depth samples about as much
        outs = sample_fn([(p, b.steps) for p, b in live], k, [f"{p}/{depth}/{b.key}" for p, b in live])
        children: list[tuple[int, Beam]] = []
        for (p, parent), samples in zip(live, outs, strict=True):
            res = results[p]
            for j, sample in enumerate(samples):
                res.tokens += sample[1]
                res.expansions += 1
                child = child_of(parent.steps, sample, max_steps)
                if child is not None:
                    done = child.done or depth == max_steps - 1
                    children.append((p, Beam(child.steps, done=done, group=parent.group, key=f"{parent.key}.{j}")))
        if children:
            scores = score_fn([(p, b.steps) for p, b in children])
            for (_, b), s in zip(children, scores, strict=True):
                b.score, b.scores = aggregate(s, how), list(s)
        live = []
        by_group: dict[tuple[int, int], list[Beam]] = {}
        for p, b in children:
            by_group.setdefault((p, b.group), []).append(b)
        for (p, _), beams in by_group.items():
            beams.sort(key=lambda b: -b.score)
            for b in beams[:keep]:
                if b.done:
                    results[p].finish(b, b.score)
                else:
                    live.append((p, b))
        if on_depth:
            on_depth(depth + 1, len(live))
    for res in results:
        if not res.finished:
            continue
        best = best_stated(res.finished, lambda b: b.score)
        if answer == "vote":
            best = weighted_answer(res.finished, lambda b: vote_weight(b.score, how)) or best
        res.choose(best.steps, best.scores)
    return results

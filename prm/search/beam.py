"""PRM-guided step-level search: beam search and diverse verifier tree search (DVTS).

At every depth each live partial solution ("beam") writes `expand` candidate next steps (the policy samples one
line each, `stop_at="line"`), the PRM scores every extended prefix, and the best survive:

- beam: one group per problem keeping the `width` best children overall;
- dvts: `width` independent groups (subtrees) per problem, each keeping its single best child, so the survivors
  cannot all descend from one early step.

A root expands to width x expand children (per group, keep x expand), so every depth costs at most the same number
of samples. A child that ends (answer line, end of turn, or token limit) is complete and stops expanding; when no
beam is live, or after `max_steps`, the complete solution with the best PRM aggregate is the answer. Every sampled
token counts towards the budget, also those of children that did not survive.

Prompts and seeding are those of `prm generate`: a child's randomness depends only on (seed, problem, depth, parent,
child index), so results do not depend on batching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from prm.answers import extract_answer
from prm.bon.select import aggregate


@dataclass
class Beam:
    steps: list[str]
    score: float = 0.0  # the aggregate the search ranks by
    scores: list[float] = field(default_factory=list)  # the PRM's score of each step
    done: bool = False
    group: int = 0
    key: str = ""


@dataclass
class SearchResult:
    problem_index: int
    steps: list[str] = field(default_factory=list)  # the chosen solution ([] when nothing completed)
    scores: list[float] = field(default_factory=list)
    prediction: str | None = None
    tokens: int = 0  # every token sampled for this problem
    expansions: int = 0  # policy samples drawn
    finished: list[Beam] = field(default_factory=list)  # complete solutions that survived a selection

    @property
    def completed(self) -> int:
        return len(self.finished)


def search(
    sample_fn: Callable[[list[tuple[int, list[str]]], int, list[str]], list[list[tuple[str, int, str]]]],
    score_fn: Callable[[list[tuple[int, list[str]]]], list[list[float]]],
    n_problems: int,
    *,
    strategy: str = "beam",
    width: int = 4,
    expand: int = 4,
    max_steps: int = 8,
    how: str = "last",
    on_depth: Callable[[int, int], None] | None = None,
) -> list[SearchResult]:
    """Search every problem at once (one sampling call and one scoring call per depth).

    sample_fn(requests, k, keys) -> per request k samples (text, tokens, stop), where a request is (problem index,
    steps so far); score_fn(requests) -> step scores of each (problem index, steps). `how` ranks partial
    solutions: `last` (the PRM's judgement of the newest step, as a prefix score) or min/prod/mean over the steps;
    the final pick among complete solutions uses the same aggregate.
    """
    if strategy not in ("beam", "dvts"):
        raise ValueError(f"strategy must be beam or dvts, got {strategy!r}")
    if width < 1 or expand < 1 or max_steps < 1:
        raise ValueError("width, expand and max_steps must be >= 1")
    groups, keep = (1, width) if strategy == "beam" else (width, 1)
    live: list[tuple[int, Beam]] = [
        (p, Beam([], group=g, key=f"g{g}")) for p in range(n_problems) for g in range(groups)
    ]
    results = [SearchResult(p) for p in range(n_problems)]
    for depth in range(max_steps):
        if not live:
            break
        k = keep * expand if depth == 0 else expand  # roots expand wider: every depth samples about as much
        outs = sample_fn([(p, b.steps) for p, b in live], k, [f"{p}/{depth}/{b.key}" for p, b in live])
        children: list[tuple[int, Beam]] = []
        for (p, parent), samples in zip(live, outs, strict=True):
            res = results[p]
            for j, (text, tokens, stop) in enumerate(samples):
                res.tokens += tokens
                res.expansions += 1
                lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
                if not lines:
                    continue  # an empty continuation adds nothing to search from
                steps = parent.steps + lines
                done = stop != "line" or extract_answer(lines[-1]) is not None or depth == max_steps - 1
                children.append((p, Beam(steps, done=done, group=parent.group, key=f"{parent.key}.{j}")))
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
                    results[p].finished.append(b)
                else:
                    live.append((p, b))
        if on_depth:
            on_depth(depth + 1, len(live))
    for res in results:
        if res.finished:
            best = max(res.finished, key=lambda b: b.score)
            res.steps, res.scores = best.steps, best.scores
            res.prediction = extract_answer(best.steps[-1])
    return results


def model_sampler(model, tokenizer, problems: Sequence[str], params, shots, system):
    """A `sample_fn` over a causal LM: the policy's prompt with the steps so far, one line per sample."""
    from prm.generate.prompt import build_prompt
    from prm.generate.sampler import sample

    line_params = replace(params, stop_at="line")

    def fn(requests, k, keys):
        prompts = [
            build_prompt(tokenizer, problems[p], shots=shots, system=system, prefix=steps) for p, steps in requests
        ]
        out = sample(model, tokenizer, prompts, k, line_params, keys=keys)
        return [[(s.text, s.tokens, s.stop) for s in row] for row in out]

    return fn


def prm_scorer_fn(scorer, problems: Sequence[str]):
    """A `score_fn` over a `PRMScorer`."""

    def fn(requests):
        return scorer.score_batch([(problems[p], steps) for p, steps in requests])

    return fn

"""Monte-Carlo tree search over steps with a learned value at the leaves instead of full rollouts.

One simulation per problem per round:

1. select: from the root, go to the child with the largest Q + c * P * sqrt(N_parent) / (1 + N_child) (PUCT) until
   a node that has not been expanded. Q is the mean of the values backed up through the child, P its prior: the
   policy's own probability of the step (`prior="policy"`: a softmax over the siblings of each step's mean token
   log-probability; the mean, because a step's total log-probability mostly measures its length) or 1/k
   (`prior="uniform"`, plain UCT with a constant exploration term).
2. expand: sample `expand` next steps for it (one line each); identical siblings are merged.
3. evaluate: each child's value is the value model's score of its newest step (the Q-value model: the chance the
   solution still reaches the right answer from this step). With `rollout` = w > 0, a check as AlphaGo mixes its
   value network with rollouts: the policy also finishes each open child's solution a line at a time, and the
   child's value becomes (1 - w) * Q + w * z, where z is the value model's score of the finished solution's answer
   line (0 where it ends without an answer). The rollouts' tokens count against the budget. A rollout that answers
   is a complete solution too, valued z: it is not a node of the tree (visits never reach it), but it is a candidate
   wherever the answer is chosen by value (`best`, `vote`, and `visits` when the most visited path ends open).
4. back up: every child counts as one visit with its value; the expanded node and its ancestors add them all.

A selection that ends on a complete solution backs its value up again without sampling (the tree's belief in that
solution grows); a problem stops when its sampled tokens reach `budget`, when `max_idle` selections in a row
found nothing to expand, or when `expired(problem)` says so. The answer follows the most visited child from the
root down to a complete solution (`answer="visits"`, AlphaZero's choice); where that path ends on an open node, or
with `answer="best"`, it is the complete solution of highest value among those that state an answer (among all
when none does); `answer="vote"` sums values per answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from prm.answers import extract_answer
from prm.search.steps import SampleFn, ScoreFn, SearchResult, best_stated, child_of, rollout_ends, weighted_answer


@dataclass(eq=False)
class TreeNode:
    steps: list[str]
    key: str
    parent: TreeNode | None = None
    prior: float = 1.0
    value: float = 0.0  # the value model's estimate of this node
    visits: int = 0
    total: float = 0.0  # sum of the values backed up through this node
    done: bool = False
    expanded: bool = False
    logprob: float = 0.0  # the policy's log-probability of the newest step, and its tokens (for the prior)
    tokens: int = 0
    scores: list[float] = field(default_factory=list)  # the value model's score of each step
    children: list[TreeNode] = field(default_factory=list)

    @property
    def q(self) -> float:
        return self.total / self.visits if self.visits else self.value


def puct(parent: TreeNode, child: TreeNode, c: float) -> float:
    """The selection score of `child` under `parent`."""
    return child.q + c * child.prior * math.sqrt(max(parent.visits, 1)) / (1 + child.visits)


def priors(logprobs: list[float], tokens: list[int], kind: str) -> list[float]:
    """Priors of sibling steps: softmax of the mean token log-probability (`policy`) or uniform.

    >>> [round(p, 3) for p in priors([-2.0, -4.0], [2, 2], "policy")]
    [0.731, 0.269]
    """
    if kind == "uniform" or not logprobs:
        return [1.0 / max(len(logprobs), 1)] * len(logprobs)
    means = [lp / max(t, 1) for lp, t in zip(logprobs, tokens, strict=True)]
    top = max(means)
    weights = [math.exp(m - top) for m in means]
    return [w / sum(weights) for w in weights]


def select(root: TreeNode, c: float) -> TreeNode:
    node = root
    while node.expanded and node.children and not node.done:
        node = max(node.children, key=lambda ch: puct(node, ch, c))
    return node


def backup(node: TreeNode | None, visits: int, total: float) -> None:
    while node is not None:
        node.visits += visits
        node.total += total
        node = node.parent


def most_visited_path(root: TreeNode) -> TreeNode:
    node = root
    while node.children and not node.done:
        node = max(node.children, key=lambda ch: (ch.visits, ch.q))
    return node


def mcts(
    sample_fn: SampleFn,
    value_fn: ScoreFn,
    n_problems: int,
    *,
    budget: int,
    expand: int = 4,
    c_puct: float = 1.0,
    prior: str = "policy",
    max_steps: int = 8,
    answer: str = "visits",
    max_idle: int = 32,
    rollout: float = 0.0,
    expired: Callable[[int], bool] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> list[SearchResult]:
    """Search every problem at once: one sampling call and one value call per round (one simulation per problem),
    and with `rollout` > 0 one more sampling call per depth of the rollouts and one value call for their ends.
    `budget` is in sampled tokens per problem; a round may overshoot it by one expansion's samples (and rollouts)."""
    if min(budget, expand, max_steps, max_idle) < 1:
        raise ValueError("budget, expand, max_steps and max_idle must be >= 1")
    if not 0.0 <= rollout <= 1.0:
        raise ValueError(f"rollout must be within [0, 1], got {rollout}")
    if prior not in ("policy", "uniform"):
        raise ValueError(f"prior must be policy or uniform, got {prior!r}")
    if answer not in ("visits", "best", "vote"):
        raise ValueError(f"answer must be visits, best or vote, got {answer!r}")
    if c_puct < 0:
        raise ValueError("c_puct must be >= 0")
    results = [SearchResult(p) for p in range(n_problems)]
    roots = [TreeNode([], "r") for _ in range(n_problems)]
    active = set(range(n_problems))
    rounds = 0
    while active:
        leaves: list[tuple[int, TreeNode]] = []
        for p in sorted(active):
            res = results[p]
            if expired and expired(p):
                res.timed_out = True
            if res.timed_out or res.tokens >= budget:
                active.discard(p)
                continue
            for _ in range(max_idle):
                leaf = select(roots[p], c_puct)
                if not leaf.done and not leaf.expanded:
                    leaves.append((p, leaf))
                    break
                backup(leaf, 1, leaf.value)  # a complete solution (or a dead end) visited again
            else:
                active.discard(p)  # nothing left to expand within reach of the selection rule
        if not leaves:
            break
        outs = sample_fn([(p, n.steps) for p, n in leaves], expand, [f"{p}/{n.key}" for p, n in leaves])
        new: list[tuple[int, TreeNode]] = []
        for (p, leaf), samples in zip(leaves, outs, strict=True):
            leaf.expanded = True
            names = set()
            for j, sample in enumerate(samples):
                results[p].tokens += sample[1]
                results[p].expansions += 1
                child = child_of(leaf.steps, sample, max_steps)
                if child is None or tuple(child.steps) in names:
                    continue
                names.add(tuple(child.steps))
                node = TreeNode(child.steps, f"{leaf.key}.{j}", parent=leaf, done=child.done)
                node.logprob, node.tokens = child.logprob, child.tokens
                leaf.children.append(node)
                new.append((p, node))
            if not leaf.children:
                leaf.done = True  # the policy wrote nothing here: a dead end of value 0
                backup(leaf, 1, 0.0)
        if new:
            values = value_fn([(p, n.steps) for p, n in new])
            for (p, node), v in zip(new, values, strict=True):
                node.scores, node.value = list(v), v[-1]
                if node.done:
                    results[p].finish(node, node.value)
            if rollout > 0:
                _check_by_rollouts(sample_fn, value_fn, [x for x in new if not x[1].done], rollout, max_steps, results)
            for _, node in new:
                node.visits, node.total = 1, node.value  # each child is one simulation
            for _, leaf in leaves:
                kids = leaf.children
                for kid, pr in zip(
                    kids, priors([k.logprob for k in kids], [k.tokens for k in kids], prior), strict=True
                ):
                    kid.prior = pr
                if kids:
                    backup(leaf, len(kids), sum(k.value for k in kids))
        rounds += 1
        if on_round:
            on_round(rounds, len(active))
    for res, root in zip(results, roots, strict=True):
        if not res.finished:
            continue
        best = best_stated(res.finished, lambda n: n.value)
        if answer == "visits":
            end = most_visited_path(root)
            best = end if end.done and end in res.finished else best
        elif answer == "vote":
            best = weighted_answer(res.finished, lambda n: n.value) or best
        res.choose(best.steps, best.scores)
    return results


def _check_by_rollouts(
    sample_fn: SampleFn,
    value_fn: ScoreFn,
    nodes: list[tuple[int, TreeNode]],
    weight: float,
    max_steps: int,
    results: list[SearchResult],
) -> None:
    """Mix each open node's value with the value model's verdict on one rollout from it (see the module docstring)."""
    if not nodes:
        return
    ends, spent = rollout_ends(
        sample_fn, [(p, n.steps) for p, n in nodes], [f"{p}/{n.key}/r" for p, n in nodes], max_steps
    )
    for (p, _), tokens in zip(nodes, spent, strict=True):
        results[p].tokens += tokens
    answered = [i for i, steps in enumerate(ends) if steps and extract_answer(steps[-1]) is not None]
    finals = value_fn([(nodes[i][0], ends[i]) for i in answered]) if answered else []
    z = [0.0] * len(nodes)
    for i, scores in zip(answered, finals, strict=True):
        z[i] = scores[-1]
        p, node = nodes[i]
        end = TreeNode(ends[i], f"{node.key}/r", done=True, value=z[i], scores=list(scores))
        results[p].finish(end, end.value)  # a candidate answer outside the tree
    for (_, node), zi in zip(nodes, z, strict=True):
        node.value = (1 - weight) * node.value + weight * zi

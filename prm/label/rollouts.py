"""The rollout labelers: `mc` (Math-Shepherd) and `binary` (OmegaPRM-like first-error search).

Prefix i of a trace is steps[0..i-1] (i = 1..n); step i-1 is judged by whether its prefix can still reach the gold
answer. A rollout is correct when its extracted answer equals the trace's gold `answer` (`prm.answers.answers_equal`);
no answer, or an empty completion, is not correct.

- A TERMINAL prefix, whose last step states a final answer (the answer line `prm generate` stops at), is decided
  without rollouts: value 1.0 if that answer is right, else 0.0.
- `mc`: every non-terminal prefix of every trace of the batch gets k rollouts, all in one `complete` call.
  values[i] = correct / k (mode soft), labels[i] = at least one correct ("hard estimation"); after the first False
  label the convention applies (`null` or `false`), even where a later prefix had a correct rollout.
- EARLY STOP (mode hard): rollouts come in rounds of 1, 1, 2, 4, ... (at most k in all); a prefix leaves as soon as
  one rollout is correct, since its label is then decided. Each round is one `complete` call for the whole batch.
  A prefix is decided False only after all k, so early stopping saves on the prefixes that are right.
- `binary`: assumes MONOTONICITY, "a prefix that can reach the answer implies every shorter prefix can", and
  searches for the first prefix that cannot, by bisection: reach(0) is taken as true (the problem is solvable),
  a terminal last prefix is free (a trace with a right final answer is then all true at no cost; one with a wrong
  answer has its error in [0, n-1]), and each probe costs k rollouts (fewer with early stop), so a trace costs
  O(k log n) rollouts instead of O(k n). Steps before the first error are true, it is false, later ones follow the
  convention; values are written only for probed prefixes (mode soft) and terminal (exact) ones. Where monotonicity fails
  (a right answer by a wrong route, a lucky recovery), binary can land on another step than mc: see the tests.

Rollout keys are `rollout_key(trace id, prefix length, index of the round's first rollout)`, so results do not
depend on how traces are batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prm.answers import answers_equal, extract_answer
from prm.label.base import Labeled, LabelOptions, apply_convention
from prm.label.completer import Completer, rollout_key
from prm.records import StepRecord


@dataclass
class Estimate:
    """The rollouts of one prefix: outcomes (one char each: 1 correct, 0 wrong answer, - no answer) and tokens."""

    outcomes: str = ""
    tokens: int = 0

    @property
    def reach(self) -> bool:
        return "1" in self.outcomes

    @property
    def value(self) -> float:
        return self.outcomes.count("1") / len(self.outcomes)


def rounds(k: int, early_stop: bool) -> list[int]:
    """Rollouts per round: [k] without early stop; else 1, 1, 2, 4, ... summing to k.

    >>> rounds(8, True), rounds(5, True), rounds(1, True), rounds(8, False)
    ([1, 1, 2, 4], [1, 1, 2, 1], [1], [8])
    """
    if not early_stop:
        return [k]
    out, total = [], 0
    while total < k:
        size = min(max(total, 1), k - total)
        out.append(size)
        total += size
    return out


def terminal(trace: StepRecord, prefix_len: int) -> bool | None:
    """For a prefix whose last step states a final answer: whether that answer is right; else None."""
    answer = extract_answer(trace.steps[prefix_len - 1])
    return None if answer is None else answers_equal(answer, trace.answer)


def _outcome(rollout, gold: str | None) -> str:
    if rollout.answer is None:
        return "-"
    return "1" if answers_equal(rollout.answer, gold) else "0"


def estimate(jobs: Sequence[tuple[StepRecord, int]], completer: Completer, k: int, early_stop: bool) -> list[Estimate]:
    """Roll out each (trace, prefix length) job: k rollouts, or fewer with early stop. One call per round."""
    ests = [Estimate() for _ in jobs]
    open_ = list(range(len(jobs)))
    start = 0
    for size in rounds(k, early_stop):
        if not open_:
            break
        requests = [(jobs[j][0].problem, list(jobs[j][0].steps[: jobs[j][1]])) for j in open_]
        keys = [rollout_key(jobs[j][0].id, jobs[j][1], start) for j in open_]
        out = completer.complete(requests, size, keys)
        if len(out) != len(requests) or any(len(row) != size for row in out):
            raise RuntimeError(f"completer returned {[len(r) for r in out]} rollouts for {len(requests)} x {size}")
        for j, row in zip(open_, out, strict=True):
            gold = jobs[j][0].answer
            ests[j].outcomes += "".join(_outcome(r, gold) for r in row)
            ests[j].tokens += sum(r.tokens for r in row)
        start += size
        if early_stop:
            open_ = [j for j in open_ if not ests[j].reach]
    return ests


def _info(method: str, opts: LabelOptions, ests: dict[int, Estimate], n: int, **extra) -> dict:
    return {
        "method": method,
        "k": opts.k,
        "rollouts": sum(len(e.outcomes) for e in ests.values()),
        "tokens": sum(e.tokens for e in ests.values()),
        **extra,
        "outcomes": [ests[i].outcomes if i in ests else None for i in range(1, n + 1)],
    }


def _check(traces: Sequence[StepRecord]) -> None:
    for t in traces:
        if t.answer is None:
            raise ValueError(f"trace {t.id!r} has no gold answer: rollouts cannot be graded")


def label_mc(traces: Sequence[StepRecord], completer: Completer, opts: LabelOptions) -> list[Labeled]:
    _check(traces)
    jobs = [(t, i) for t in traces for i in range(1, len(t.steps) + 1) if terminal(t, i) is None]
    found = iter(estimate(jobs, completer, opts.k, opts.early_stop))
    out = []
    for t in traces:
        ests: dict[int, Estimate] = {}
        reach: list[bool | None] = []
        values: list[float | None] = []
        for i in range(1, len(t.steps) + 1):
            end = terminal(t, i)
            if end is not None:
                reach.append(end)
                values.append(1.0 if end else 0.0)
                continue
            ests[i] = e = next(found)
            reach.append(e.reach)
            values.append(e.value if opts.mode == "soft" else None)
        out.append(Labeled(apply_convention(reach, opts.after_error), values, _info("mc", opts, ests, len(t.steps))))
    return out


@dataclass
class _Search:
    trace: StepRecord
    lo: int  # longest prefix known (or assumed) to reach the answer
    hi: int  # shortest prefix known not to; len(steps) + 1 = none found
    ests: dict[int, Estimate]
    probes: int = 0

    def mid(self) -> int | None:
        return (self.lo + self.hi) // 2 if self.hi - self.lo > 1 else None

    def settle(self, prefix_len: int, reach: bool) -> None:
        if reach:
            self.lo = prefix_len
        else:
            self.hi = prefix_len


def label_binary(traces: Sequence[StepRecord], completer: Completer, opts: LabelOptions) -> list[Labeled]:
    _check(traces)
    searches = []
    for t in traces:
        n = len(t.steps)
        s = _Search(t, 0, n + 1, {})
        end = terminal(t, n)
        if end is not None:
            s.settle(n, end)
        searches.append(s)
    while True:
        jobs, waiting = [], []
        for s in searches:
            while (mid := s.mid()) is not None and (end := terminal(s.trace, mid)) is not None:
                s.settle(mid, end)  # an answer line in the middle: free
            if mid is not None:
                jobs.append((s.trace, mid))
                waiting.append(s)
        if not jobs:
            break
        for s, (_, mid), e in zip(waiting, jobs, estimate(jobs, completer, opts.k, opts.early_stop), strict=True):
            s.ests[mid] = e
            s.probes += 1
            s.settle(mid, e.reach)
    out = []
    for s in searches:
        n = len(s.trace.steps)
        e = s.hi - 1 if s.hi <= n else None
        verdicts: list[bool | None] = [True] * n if e is None else [True] * e + [False] * (n - e)
        values: list[float | None] = [None] * n
        for i in range(1, n + 1):
            end = terminal(s.trace, i)
            if end is not None:
                values[i - 1] = 1.0 if end else 0.0
            elif i in s.ests and opts.mode == "soft":
                values[i - 1] = s.ests[i].value
        info = _info("binary", opts, s.ests, n, probes=s.probes)
        out.append(Labeled(apply_convention(verdicts, opts.after_error), values, info))
    return out

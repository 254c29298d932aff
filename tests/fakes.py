"""Test doubles. A scripted completer: rollouts whose outcomes a test decides, deterministically.

Selected with `completer: python:fakes:scripted:PATH` in `prm label` / `prm label-report` (the tests folder on the
import path), where PATH is a JSON script:

    {"seed": 0, "tokens": 8, "delay_s": 0.0,
     "default": 0.0,
     "oracle": [0.9, 0.1],
     "problems": {"<problem text>": {"1": "10-e", "3": 0.5, "default": "1"}}}

Every request (problem, prefix) gets an outcome spec: the problem's entry for its prefix length, else the problem's
"default", else, when "oracle" is set and the problem is a synthetic one among the traces, oracle[0] if the prefix is
still on the gold chain (no gold error in it, `prm.label.gold`) and oracle[1] if not, else the top-level "default".
A spec is a probability p (rollout i is correct iff a hash of (seed, trace, prefix length, i) falls below p) or a
string of one character per rollout index i (the last character repeats): `1` writes the gold answer, `0` a wrong
answer, `-` text without any answer, `e` an empty completion. Outcomes depend on the rollout's index only, never on
the batch or on how rollouts were split into calls. `tokens` is the count each non-empty rollout reports; `delay_s`
sleeps in every call (to give a kill test something to interrupt).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

from prm.answers import normalize_number
from prm.label.base import synth_meta
from prm.label.completer import Rollout, parse_key
from prm.label.gold import GoldProblem, gold_first_error
from prm.records import StepRecord

OUTCOMES = "10-e"


def _unit(seed: int, trace_id: str, prefix_len: int, index: int) -> float:
    digest = hashlib.blake2b(f"{seed}/{trace_id}/{prefix_len}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def _wrong(gold: str) -> str:
    v = normalize_number(gold)
    return str(v + 1) if v is not None else "wrong"


class ScriptedCompleter:
    def __init__(self, script: dict, answers: dict[str, str], gold: dict[str, GoldProblem] | None = None):
        """`answers`: problem text -> gold answer (what a correct rollout writes); `gold`: problem text -> its
        synthetic gold facts (for "oracle")."""
        unknown = set(script) - {"seed", "tokens", "delay_s", "default", "oracle", "problems"}
        if unknown:
            raise ValueError(f"fake script: unknown keys {sorted(unknown)}")
        self.script, self.answers, self.gold = script, answers, gold or {}
        self.seed = int(script.get("seed", 0))
        self.tokens = int(script.get("tokens", 8))
        self.delay = float(script.get("delay_s", 0.0))
        self.calls = 0
        for spec in [script.get("default", 0.0), *(v for p in script.get("problems", {}).values() for v in p.values())]:
            _check_spec(spec)

    @classmethod
    def from_traces(cls, script: dict, traces: Iterable[StepRecord]) -> ScriptedCompleter:
        answers, gold = {}, {}
        for t in traces:
            if t.answer is not None:
                answers[t.problem] = t.answer
            if synth_meta(t) is not None and t.problem not in gold:
                gold[t.problem] = GoldProblem.from_meta(synth_meta(t), t.problem, t.answer)
        return cls(script, answers, gold)

    @classmethod
    def from_file(cls, path: str, traces: Iterable[StepRecord]) -> ScriptedCompleter:
        return cls.from_traces(json.loads(Path(path).read_text(encoding="utf-8")), traces)

    def spec(self, problem: str, prefix: list[str]) -> float | str:
        entry = self.script.get("problems", {}).get(problem, {})
        if str(len(prefix)) in entry:
            return entry[str(len(prefix))]
        if "default" in entry:
            return entry["default"]
        oracle = self.script.get("oracle")
        if oracle and problem in self.gold:
            e, _ = gold_first_error(prefix, self.gold[problem])
            return oracle[0] if e is None else oracle[1]
        return self.script.get("default", 0.0)

    def outcome(self, spec: float | str, trace_id: str, prefix_len: int, index: int) -> str:
        if isinstance(spec, str):
            return spec[min(index, len(spec) - 1)]
        return "1" if _unit(self.seed, trace_id, prefix_len, index) < spec else "0"

    def rollout(self, outcome: str, problem: str) -> Rollout:
        if outcome == "e":
            return Rollout("", None, 0)
        if outcome == "-":
            return Rollout("I am not sure how to go on from here.", None, self.tokens)
        if problem not in self.answers:
            raise KeyError(f"fake completer: no gold answer for problem {problem[:60]!r}")
        answer = self.answers[problem] if outcome == "1" else _wrong(self.answers[problem])
        return Rollout(f"So that is settled.\nThe answer is {answer}.", answer, self.tokens)

    def complete(self, requests: list[tuple[str, list[str]]], k: int, keys: list[str]) -> list[list[Rollout]]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = []
        for (problem, prefix), key in zip(requests, keys, strict=True):
            trace_id, prefix_len, start = parse_key(key)
            spec = self.spec(problem, prefix)
            out.append([self.rollout(self.outcome(spec, trace_id, prefix_len, start + j), problem) for j in range(k)])
        return out


def _check_spec(spec) -> None:
    if isinstance(spec, str):
        if not spec or set(spec) - set(OUTCOMES):
            raise ValueError(f"fake script: outcome string {spec!r} must use only {OUTCOMES!r}")
    elif isinstance(spec, bool) or not isinstance(spec, (int, float)) or not 0 <= spec <= 1:
        raise ValueError(f"fake script: outcome {spec!r} must be a probability or a string of {OUTCOMES!r}")


def scripted(path: str, traces: Iterable[StepRecord]) -> ScriptedCompleter:
    """The factory `completer: python:fakes:scripted:PATH` names."""
    return ScriptedCompleter.from_file(path, traces)

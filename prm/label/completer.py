"""Completers: what the rollout labelers ask to finish a partial solution K times.

A request is (problem text, prefix steps). `complete(requests, k, keys)` returns k rollouts per request, each the
text the policy wrote after the prefix, its extracted final answer (None when it wrote none) and its token count.

Keys name the rollouts, so that a rollout does not depend on what else shares its batch (a resumed run writes what
an uninterrupted one would have): the labelers send `rollout_key(trace_id, prefix_len, start)`, and rollout j of
that request is rollout `start + j` of that prefix of that trace. A completer must return the same rollouts for the
same (request, key, j), whatever the other requests of the call are.

    completer = make_completer(cfg, traces)   # cfg.completer: "model" or "python:MODULE:FACTORY[:ARG]"
    rollouts = completer.complete([(problem, steps[:2])], k=4, keys=[rollout_key(trace_id, 2, 0)])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prm.answers import extract_answer
from prm.generate.prompt import DEFAULT_SHOTS, DEFAULT_SYSTEM, Shot


@dataclass(frozen=True)
class Rollout:
    text: str  # what was written after the prefix ("" for an empty completion)
    answer: str | None  # extract_answer(text): None when no final answer was written
    tokens: int  # tokens generated for it


class Completer(Protocol):
    def complete(self, requests: list[tuple[str, list[str]]], k: int, keys: list[str]) -> list[list[Rollout]]:
        """k rollouts for each (problem, prefix steps) request: result[i][j] is rollout j of request i."""
        ...


def rollout_key(trace_id: str, prefix_len: int, start: int) -> str:
    """The key of a request for rollouts start, start+1, ... of the first `prefix_len` steps of a trace."""
    return f"{trace_id}/{prefix_len}/{start}"


def parse_key(key: str) -> tuple[str, int, int]:
    """(trace id, prefix length, start) of a `rollout_key` (trace ids may contain '/')."""
    trace_id, prefix_len, start = key.rsplit("/", 2)
    return trace_id, int(prefix_len), int(start)


class ModelCompleter:
    """Rollouts from a causal LM through a sampling engine of `prm generate` (`prm.generate.engine`: ours or vLLM):
    the prompt is the policy's own (`build_prompt` with the same shots and system line), with the assistant's turn
    opened and the prefix steps already written, so the model carries on from them. Rollouts stop at their answer
    line. Each rollout is seeded by (params.seed, key, j)."""

    def __init__(self, engine, params, shots: Sequence[Shot] = DEFAULT_SHOTS, system: str | None = DEFAULT_SYSTEM):
        self.engine, self.tokenizer, self.params = engine, engine.tokenizer, params
        self.shots, self.system = tuple(shots), system

    def complete(self, requests: list[tuple[str, list[str]]], k: int, keys: list[str]) -> list[list[Rollout]]:
        from prm.generate.prompt import build_prompt

        if not requests:
            return []
        prompts = [
            build_prompt(self.tokenizer, problem, shots=self.shots, system=self.system, prefix=prefix)
            for problem, prefix in requests
        ]
        out = self.engine.sample(prompts, k, self.params, keys=keys)
        return [[Rollout(s.text, extract_answer(s.text), s.tokens) for s in row] for row in out]

    def close(self) -> None:
        self.engine.close()


def make_completer(cfg, traces=()) -> Completer:
    """The completer a config names in `cfg.completer`: `model` (the causal LM `cfg.model`: an alias such as
    smollm2-135m, a folder or a hub id, sampled and prompted as cfg.sampling says, by its engine) or `python:MODULE:FACTORY[:ARG]` (a completer from your own code, e.g. the tests' scripted fake, for tests and benches
    without a model; `traces` give it the gold answers)."""
    spec = cfg.completer
    if spec == "model":
        import torch

        from prm.generate.engine import open_engine

        engine = open_engine(cfg.model, cfg.sampling, bf16=cfg.bf16)
        if cfg.sampling.engine == "native":
            device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            engine.model = engine.model.to(device)
        system, shots = cfg.sampling.prompt(cfg.model)
        return ModelCompleter(engine, cfg.sampling.params(seed=cfg.seed, bf16=cfg.bf16), shots, system)
    if spec.startswith("python:"):
        return plugin_completer(spec, traces)
    raise ValueError(f"completer must be 'model' or 'python:MODULE:FACTORY[:ARG]', got {spec!r}")


def close_completer(completer) -> None:
    """Stop what a completer runs (a vLLM engine's processes would otherwise outlive the command); a plugin
    completer without `close`, or None, has nothing to stop."""
    if hasattr(completer, "close"):
        completer.close()


def plugin_completer(spec: str, traces) -> Completer:
    """`python:MODULE:FACTORY[:ARG]`: FACTORY(ARG, traces) from an importable module returns the completer (anything
    with `complete(requests)`): a client of another engine, or a test's scripted fake."""
    import importlib

    parts = spec.split(":", 3)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise ValueError(f"completer: {spec!r} is not python:MODULE:FACTORY[:ARG]")
    try:
        factory = getattr(importlib.import_module(parts[1]), parts[2])
    except (ImportError, AttributeError) as e:
        raise ValueError(f"completer: cannot load {parts[1]}:{parts[2]} ({e})") from None
    return factory(parts[3] if len(parts) > 3 else None, traces)

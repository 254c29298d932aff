"""A trained PRM as a reward for RL trainers: one scalar per response, from its per-step scores.

    reward = for_trl("runs/prm")                # TRL's GRPOTrainer(reward_funcs=[reward], ...)
    reward(prompts=["Tom has 3 apples ..."], completions=["3 + 4 = 7 apples.\\nThe answer is 7."])   # [0.88]

    compute_score = for_verl("runs/prm")        # verl: custom_reward_function.path / name
    compute_score("synth", "3 + 4 = 7.\\nThe answer is 7.", "7", {"question": "Tom has 3 apples ..."})

The stated rules, shared with `prm serve`'s /get_reward:
- the problem is the prompt's last user turn: the `content` of the last user message of a conversational prompt, or,
  in a prompt already rendered by a chat template (ChatML, Llama 3, Gemma), the text of its last user turn; any
  other prompt is taken whole;
- the response loses its trailing end-of-turn markers (`<|im_end|>`, `<|eot_id|>`, `</s>`, ...) and is split into
  steps by `prm.records.split_steps` (non-empty lines by default);
- the reward is an aggregate of the step scores: `min` (default: a chain is as good as its weakest step), `prod`
  (the product of the probabilities), `last` or `mean`; a response without a step gets 0.0, the lowest reward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prm.bon.select import aggregate
from prm.records import split_steps

REWARD_AGGREGATES = ("min", "prod", "last", "mean")

# The last user turn in prompts rendered by the common chat templates: (start of a user turn, end of a turn).
_TURNS = (
    (r"<\|im_start\|>user\s*\n", r"<\|im_end\|>"),  # ChatML: SmolLM2, Qwen
    (r"<\|start_header_id\|>user<\|end_header_id\|>\s*", r"<\|eot_id\|>"),  # Llama 3
    (r"<start_of_turn>user\s*\n", r"<end_of_turn>"),  # Gemma
)
# Where the response begins in a rendered chat: after the last assistant header.
_ASSISTANT = re.compile(
    r"(<\|im_start\|>assistant\s*\n|<\|start_header_id\|>assistant<\|end_header_id\|>\s*|<start_of_turn>model\s*\n)"
)
_END_MARKERS = re.compile(r"(\s*(<\|[a-z_]+\|>|</s>|<end_of_turn>|<eos>))+\s*$")


def user_text(prompt: str | Sequence[dict]) -> str:
    """The problem a prompt poses: its last user turn, or the whole prompt when it has no turns.

    >>> user_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}])
    '2 + 2?'
    >>> user_text("<|im_start|>user\\n2 + 2?<|im_end|>\\n<|im_start|>assistant\\n"), user_text(" 2 + 2? ")
    ('2 + 2?', '2 + 2?')
    """
    if not isinstance(prompt, str):
        users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
        return str(users[-1]).strip() if users else ""
    for start, end in _TURNS:
        turns = re.findall(start + r"(.*?)(?:" + end + r"|$)", prompt, flags=re.S)
        if turns:
            return turns[-1].strip()
    return prompt.strip()


def response_text(completion: str | Sequence[dict]) -> str:
    """A completion as plain text: a string less its trailing end-of-turn markers, or the joined contents of a
    conversational completion's messages.

    >>> response_text("3 + 4 = 7.\\nThe answer is 7.<|im_end|>"), response_text([{"role": "assistant", "content": "7"}])
    ('3 + 4 = 7.\\nThe answer is 7.', '7')
    """
    if not isinstance(completion, str):
        return "\n".join(str(m.get("content", "")) for m in completion)
    return _END_MARKERS.sub("", completion).strip()


def split_query(query: str, prompt: str | None = None) -> tuple[str, str] | None:
    """(problem, response) of an OpenRLHF query (prompt + response as one rendered text): the response is what
    follows `prompt` when the query starts with it, else what follows the query's last assistant header; None when
    neither finds it.

    >>> split_query("Q: 2 + 2?\\nA: 4", "Q: 2 + 2?\\nA:")
    ('Q: 2 + 2?\\nA:', '4')
    >>> split_query("<|im_start|>user\\n2 + 2?<|im_end|>\\n<|im_start|>assistant\\n4<|im_end|>")
    ('2 + 2?', '4')
    """
    if prompt is not None and query.startswith(prompt):
        return user_text(prompt), response_text(query[len(prompt) :])
    heads = list(_ASSISTANT.finditer(query))
    if not heads:
        return None
    cut = heads[-1].end()
    return user_text(query[:cut]), response_text(query[cut:])


def trace_reward(scores: Sequence[float], how: str = "min") -> float:
    """One reward from step probabilities; 0.0 for a response without a step.

    >>> trace_reward([0.9, 0.5]), round(trace_reward([0.9, 0.5], "prod"), 6), trace_reward([])
    (0.5, 0.45, 0.0)
    """
    if how not in REWARD_AGGREGATES:
        raise ValueError(f"unknown aggregate {how!r}; choose from {', '.join(REWARD_AGGREGATES)}")
    if not scores:
        return 0.0
    # bon's `prod` is a sum of logs (a ranking key); a reward wants the probability itself
    return math.exp(aggregate(scores, "prod")) if how == "prod" else aggregate(scores, how)


def all_aggregates(scores: Sequence[float]) -> dict[str, float]:
    return {how: trace_reward(scores, how) for how in REWARD_AGGREGATES}


class Rewarder:
    """Problems and responses in, rewards out, through a `PRMScorer` (or anything with its `score_batch`)."""

    def __init__(self, scorer, *, how: str = "min", split: str = "lines"):
        trace_reward([], how)  # checks `how` now rather than at the first call
        split_steps("", split)
        self.scorer, self.how, self.split = scorer, how, split

    def step_scores(self, problems: Sequence[str], responses: Sequence[str]) -> list[list[float]]:
        steps = [split_steps(r, self.split) for r in responses]
        todo = [i for i, s in enumerate(steps) if s]
        scored = self.scorer.score_batch([(problems[i], steps[i]) for i in todo]) if todo else []
        out: list[list[float]] = [[] for _ in responses]
        for i, s in zip(todo, scored, strict=True):
            out[i] = s
        return out

    def rewards(self, problems: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [trace_reward(s, self.how) for s in self.step_scores(problems, responses)]


def _rewarder(run_dir: str | Path, how: str, split: str, scorer_kw: dict) -> Rewarder:
    from prm.score.prm_scorer import PRMScorer

    return Rewarder(PRMScorer.from_pretrained(run_dir, **scorer_kw), how=how, split=split)


def for_trl(run_dir: str | Path, *, how: str = "min", split: str = "lines", **scorer_kw) -> Callable[..., list[float]]:
    """A reward function with TRL's signature, `(prompts, completions, **kwargs) -> list[float]`; prompts and
    completions may be strings or conversations (lists of {"role", "content"}). `scorer_kw` goes to
    `PRMScorer.from_pretrained` (batch_tokens, max_length, bf16)."""
    rewarder = _rewarder(run_dir, how, split, scorer_kw)

    def prm_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs) -> list[float]:
        return rewarder.rewards([user_text(p) for p in prompts], [response_text(c) for c in completions])

    return prm_reward


def for_verl(run_dir: str | Path, *, how: str = "min", split: str = "lines", **scorer_kw) -> Callable[..., Any]:
    """A function of verl's `compute_score(data_source, solution_str, ground_truth, extra_info)` shape. The problem
    comes from `extra_info["question"]` (or `["problem"]`, as verl's GSM8K and MATH preprocessing write it); the
    ground truth is not used: the PRM judges the steps. Called with lists (verl's batch reward manager), it returns
    a list of rewards."""
    rewarder = _rewarder(run_dir, how, split, scorer_kw)

    def problem_of(extra_info: dict | None) -> str:
        info = extra_info or {}
        return str(info.get("question", info.get("problem", "")))

    def compute_score(data_source, solution_str, ground_truth=None, extra_info=None, **kwargs):
        if isinstance(solution_str, str):
            return rewarder.rewards([problem_of(extra_info)], [response_text(solution_str)])[0]
        infos = extra_info if extra_info is not None else [None] * len(solution_str)
        return rewarder.rewards([problem_of(i) for i in infos], [response_text(s) for s in solution_str])

    return compute_score

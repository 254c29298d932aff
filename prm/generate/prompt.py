"""Prompts for the policy: the model's chat template, a system line, a few worked examples, then the problem.

The examples teach the output format the rest of the pipeline relies on: one step per line, each with its
calculation, and a last line `The answer is N.`. A continuation prompt (for Monte-Carlo rollouts) ends inside the
assistant's turn with the steps written so far, so the model carries on from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prm.models import read_policy


@dataclass(frozen=True)
class Shot:
    """One worked example: a problem and its solution (one step per line, ending `The answer is N.`)."""

    problem: str
    solution: str


DEFAULT_SYSTEM = (
    "Solve the math word problem step by step. Write one step per line with its calculation, "
    "and end with a line 'The answer is N.'"
)

# Two hand-written examples in the style of `prm synth` (not drawn from either split).
DEFAULT_SHOTS = (
    Shot(
        problem="Ava has 12 pencils. She buys 3 packs of 4 pencils. Then she gives 5 pencils to her brother. "
        "How many pencils does Ava have now?",
        solution="3 packs of 4 pencils is 3 * 4 = 12 pencils.\n"
        "After buying them, Ava has 12 + 12 = 24 pencils.\n"
        "After giving 5 away, she has 24 - 5 = 19 pencils.\n"
        "The answer is 19.",
    ),
    Shot(
        problem="A baker makes 45 rolls and packs them equally into 5 bags. He eats 2 rolls from one bag. "
        "How many rolls are left in that bag?",
        solution="Each bag holds 45 / 5 = 9 rolls.\nAfter eating 2, the bag has 9 - 2 = 7 rolls.\nThe answer is 7.",
    ),
)


def policy_prompt(
    model: str, system: str | None = None, shots: Sequence[Shot] | None = None
) -> tuple[str, tuple[Shot, ...]]:
    """The system line and worked examples to prompt `model` with: each one given wins; one left out (None) is the
    policy's own, from the policy.json of a `prm sft` folder (a fine-tuned policy is prompted as it was trained,
    zero-shot by default), else the built-in line and two examples. An empty system line means none.

    >>> policy_prompt("smollm2-135m")[1] == DEFAULT_SHOTS, policy_prompt("smollm2-135m", shots=())[1]
    (True, ())
    """
    own = read_policy(model)
    if own is not None:
        default_system = own.get("system") or ""
        default_shots = tuple(Shot(**s) for s in own.get("shots", []))
    else:
        default_system, default_shots = DEFAULT_SYSTEM, DEFAULT_SHOTS
    return (default_system if system is None else system), (default_shots if shots is None else tuple(shots))


def messages(problem: str, shots: Sequence[Shot] = DEFAULT_SHOTS, system: str | None = DEFAULT_SYSTEM) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        msgs += [{"role": "user", "content": shot.problem}, {"role": "assistant", "content": shot.solution}]
    msgs.append({"role": "user", "content": problem})
    return msgs


def build_prompt(
    tokenizer,
    problem: str,
    *,
    shots: Sequence[Shot] = DEFAULT_SHOTS,
    system: str | None = DEFAULT_SYSTEM,
    prefix: Sequence[str] = (),
) -> str:
    """The prompt text for `problem`; with `prefix` steps, the assistant's turn is opened and continues from them.

    A tokenizer without a chat template gets a plain "Problem:/Solution:" layout, so any causal LM works.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            messages(problem, shots, system), tokenize=False, add_generation_prompt=True
        )
    else:
        parts = [system] if system else []
        parts += [f"Problem: {s.problem}\nSolution:\n{s.solution}" for s in shots]
        parts.append(f"Problem: {problem}\nSolution:\n")
        text = "\n\n".join(parts)
    if prefix:
        text += "\n".join(prefix) + "\n"
    return text

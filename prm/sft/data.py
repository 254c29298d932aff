"""What `prm sft` trains on: which records to imitate, and each as prompt tokens followed by target tokens.

The prompt is exactly what `prm generate` sends (`build_prompt`: chat template, system line, shots, the problem, the
assistant's turn opened); the target is the solution, one step per line, and the end of the assistant's turn. The
two are tokenized separately, as generation sees them (the sampler encodes the prompt alone and then writes tokens),
and the loss covers the target only.

    ex = encode_example(tok, "Tom has 3 apples ...", ["3 + 4 = 7 apples.", "The answer is 7."], system, shots=())
    ex.input_ids[ex.start:]   # the tokens the policy learns to write
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prm.answers import is_right
from prm.generate.prompt import Shot, build_prompt
from prm.records import StepRecord


@dataclass(frozen=True)
class Example:
    input_ids: list[int]  # prompt, then target
    start: int  # index of the first target token: tokens start.. are predicted, each from the one before it
    problem: str  # examples of one problem share their prompt, and may share a row


def end_of_turn(tokenizer) -> str:
    """The text that closes an assistant's message in the tokenizer's chat template (`<|im_end|>` for ChatML), so
    that the policy learns to stop; the eos token for a tokenizer without a template.

    Found by rendering a reply and reading what the template writes after it, trailing whitespace left out (the
    sampler stops at the end-of-turn token itself)."""
    template = getattr(tokenizer, "chat_template", None)
    if template:
        marker = "MARKER-7f3a"
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": marker}], tokenize=False
        )
        tail = text[text.rindex(marker) + len(marker) :].strip()
        if tail:
            return tail
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has neither a chat template nor an eos token: the policy could not stop")
    return tokenizer.eos_token


def encode_example(
    tokenizer, problem: str, steps: Sequence[str], system: str, shots: Sequence[Shot], eot: str | None = None
) -> Example:
    prompt = tokenizer(build_prompt(tokenizer, problem, shots=shots, system=system), add_special_tokens=False)
    target = "\n".join(steps) + (end_of_turn(tokenizer) if eot is None else eot)
    ids = tokenizer(target, add_special_tokens=False).input_ids
    return Example(list(prompt.input_ids) + list(ids), len(prompt.input_ids), problem)


def kept(record: StepRecord, keep: str) -> bool:
    """Whether `prm sft` imitates this record (see SFTConfig.keep).

    >>> r = StepRecord("a", "p", ["2 + 3 = 5.", "The answer is 5."], answer="5")
    >>> kept(r, "answer"), kept(r, "steps"), kept(r, "all")
    (True, False, True)
    """
    if keep == "all":
        return True
    if keep == "steps":
        return all(x is True for x in record.labels)
    if keep == "answer":
        return bool(is_right(record)) and False not in record.labels
    raise ValueError(f"keep must be answer, steps or all, got {keep!r}")


def make_examples(records: Sequence[StepRecord], tokenizer, cfg) -> tuple[list[Example], dict]:
    """The kept records as examples, and counts: records, kept, left out as too long (cfg.max_length)."""
    eot = end_of_turn(tokenizer)
    system, shots = cfg.prompt()
    out, too_long, dropped = [], 0, 0
    for r in records:
        if not kept(r, cfg.keep):
            dropped += 1
            continue
        ex = encode_example(tokenizer, r.problem, r.steps, system, shots, eot)
        if len(ex.input_ids) > cfg.max_length:
            too_long += 1
            continue
        out.append(ex)
    return out, {"records": len(records), "kept": len(out), "not_kept": dropped, "too_long": too_long}

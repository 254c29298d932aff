"""Turning a record into PRM input: the token layout, the step tags and the spans the likelihood features read.

Layout (each piece tokenized on its own, so positions are exact and identical in training and scoring):

    "Problem: {problem}\\nSolution:"  "\\n{step 1}" <tag>  "\\n{step 2}" <tag>  ...

The tag is a dedicated special token added to the tokenizer; it is matched before any other tokenization, so it
always encodes to one id whatever surrounds it. The PRM reads each step's verdict from the hidden state at its tag.

    enc = encode(tok, tag_id, "Tom has 3 apples ...", ["3 + 4 = 7", "The answer is 7."], max_length=512)
    enc.input_ids[enc.tags[1]] == tag_id
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from prm.checker import check_step
from prm.spans import result_span  # the same "written result" the training-free baseline scores

STEP_TAG = "<|prm_step|>"

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"
# An equation: an arithmetic expression, "=", a number; a chain of them ("26 * 23 = 26 * 20 + 26 * 3 = 520 + 78 =
# 598") is one span, so the features read every link's tokens.
_EQUATION = re.compile(rf"(?:{_NUMBER}|\()[\d\s.,$()+\-*/×÷x=]*=\s*{_NUMBER}")


# The operation a step performs: the first link of its equation, "x op y" (a worked chain's later links only
# rewrite it).
_OPERATION = re.compile(r"(\d[\d,]*)\s*([-+*/×÷x])\s*(\d[\d,]*)")


def operation_spans(step: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """Character spans of the first operand, the operator and the second operand of the step's last equation.

    >>> s = "Mia gives away 4, so she has 17 - 4 = 13 marbles."
    >>> [s[slice(*sp)] for sp in operation_spans(s)]
    ['17', '-', '4']
    """
    span = equation_span(step)
    m = _OPERATION.match(step, span[0]) if span else None
    return (m.span(1), m.span(2), m.span(3)) if m else None


def calc_verdict(step: str) -> float:
    """The calculator's verdict as a feature: 1.0 when every equation of the step checks, -1.0 when one is wrong,
    0.0 when it has none.

    >>> calc_verdict("17 - 4 = 13 marbles."), calc_verdict("17 - 4 = 12 marbles."), calc_verdict("The answer is 13.")
    (1.0, -1.0, 0.0)
    """
    return {True: 1.0, False: -1.0, None: 0.0}[check_step(step)]


def add_step_tag(tokenizer) -> int:
    """Add the step tag as a special token (idempotent) and return its id."""
    if STEP_TAG not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [STEP_TAG]}, replace_extra_special_tokens=False)
    return tokenizer.convert_tokens_to_ids(STEP_TAG)


def equation_span(step: str) -> tuple[int, int] | None:
    """Character span of the last equation in the step (operands, operators and result; a whole chain).

    >>> s = "Mia gives away 4, so she has 17 - 4 = 13 marbles."
    >>> s[slice(*equation_span(s))]
    '17 - 4 = 13'
    """
    spans = [m.span() for m in _EQUATION.finditer(step)]
    return spans[-1] if spans else None


@dataclass
class Encoded:
    input_ids: list[int]
    tags: list[int]  # position of each kept step's tag
    kept: int  # steps kept (whole steps only)
    dropped: int  # steps dropped by truncation
    # Per kept step, the positions of the tokens the likelihood features score (each predicted from position - 1).
    result_tokens: list[list[int]] = field(default_factory=list)
    equation_tokens: list[list[int]] = field(default_factory=list)
    # Per kept step: the tokens of its operation's first operand, operator and second operand ([] x 3 if none).
    operation_tokens: list[tuple[list[int], list[int], list[int]]] = field(default_factory=list)
    # Per kept step: the calculator's verdict on its equations (1 all check, -1 one is wrong, 0 none to check).
    calc: list[float] = field(default_factory=list)
    # Per kept step: every token of its text (the leading newline left out), for the `step` feature set.
    step_tokens: list[list[int]] = field(default_factory=list)


def first_steps(enc: Encoded, n: int) -> Encoded:
    """The encoding of the first n kept steps only. Attention is causal, so every kept tag reads exactly the hidden
    state it had in the whole encoding: training can leave out unlabeled steps after the last labeled one at no
    change in loss or gradients."""
    if n >= enc.kept:
        return enc
    if n < 1:
        raise ValueError("keep at least one step")
    return Encoded(
        input_ids=enc.input_ids[: enc.tags[n - 1] + 1],
        tags=enc.tags[:n],
        kept=n,
        dropped=enc.dropped,
        result_tokens=enc.result_tokens[:n],
        equation_tokens=enc.equation_tokens[:n],
        operation_tokens=enc.operation_tokens[:n],
        calc=enc.calc[:n],
        step_tokens=enc.step_tokens[:n],
    )


def _tokens_in(offsets: Sequence[tuple[int, int]], span: tuple[int, int] | None, base: int) -> list[int]:
    if span is None:
        return []
    a, b = span
    return [base + i for i, (s, e) in enumerate(offsets) if s < b and e > a and e > s]


def encode(tokenizer, tag_id: int, problem: str, steps: Sequence[str], max_length: int) -> Encoded:
    """Token ids of the layout above, keeping whole steps only: a step that does not fit (with its tag) is dropped
    along with every later one, and counted, so no step is ever labeled from a truncated text."""
    ids = tokenizer(f"Problem: {problem}\nSolution:", add_special_tokens=False).input_ids
    if len(ids) >= max_length:
        ids = ids[: max_length // 2]  # an overlong problem keeps its start; the steps matter more
    enc = Encoded(input_ids=list(ids), tags=[], kept=0, dropped=0)
    for i, step in enumerate(steps):
        text = "\n" + step
        piece = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc.input_ids) + len(piece.input_ids) + 1 > max_length:
            enc.dropped = len(steps) - i
            break
        base = len(enc.input_ids)
        rs, es = result_span(step), equation_span(step)
        shift = lambda sp: None if sp is None else (sp[0] + 1, sp[1] + 1)  # noqa: E731  (the leading newline)
        enc.result_tokens.append(_tokens_in(piece.offset_mapping, shift(rs), base))
        enc.equation_tokens.append(_tokens_in(piece.offset_mapping, shift(es), base))
        ops = operation_spans(step) or (None, None, None)
        enc.operation_tokens.append(tuple(_tokens_in(piece.offset_mapping, shift(sp), base) for sp in ops))
        enc.calc.append(calc_verdict(step))
        enc.step_tokens.append(_tokens_in(piece.offset_mapping, (1, len(text)), base))
        enc.input_ids += piece.input_ids
        enc.tags.append(len(enc.input_ids))
        enc.input_ids.append(tag_id)
        enc.kept += 1
    return enc

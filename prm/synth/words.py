"""The words of a problem and its solution: a skeleton's numbers put into sentences drawn from `templates`.

`render_plan` draws the problem text and a plan of the solution's words; `write_solution` fills that plan with the
numbers of one solution (the gold one, or a corrupted one), so the right and wrong solutions of a problem differ in
their numbers and operations only.
"""

from __future__ import annotations

import random
import re

from prm.synth import templates as T
from prm.synth.corrupt import Step, equation, gold_steps

# Prebuilt once: per person the fixed placeholder values and the subject variants, per thing its nouns and pools.
_PEOPLE = tuple(
    (
        {"n": n, "p": p, "P": p.capitalize(), "pp": pp, "self": obj + "self"},
        tuple(c.format(p=p, P=p.capitalize()) if c else n for c in T.CONNECTORS),
    )
    for n, p, obj, pp in T.PEOPLE
)
_NAMES = tuple(p[0] for p in T.PEOPLE)
_SUB = (T.SUB, T.SUB + T.SUB_EDIBLE)
_MUL = {k: T.MUL + extra for k, extra in T.MUL_BY.items()}
_DIV = {k: T.DIV + extra for k, extra in T.DIV_BY.items()}
_DIV_LAST = {k: T.DIV + extra + T.DIV_LAST for k, extra in T.DIV_BY.items()}
_DIV_LAST_DEFAULT = T.DIV + T.DIV_LAST


# Solution sentences with their equation cut out: "{a} + {k} = {c}" becomes "{eq}", so that a corrupted step can
# write another operation or other numbers into the same sentence. The operand may be a literal ("{a} * 2" in
# "Doubling gives ..."), equal to k wherever that template is used. k_first: the sentence writes "k * a".
_EQUATION = re.compile(r"\{([ak])\} [-+*/] (?:\{[ak]\}|\d+) = \{c\}")


def _cut(sentence: str) -> tuple[str, bool]:
    m = _EQUATION.search(sentence)
    if m is None:
        raise ValueError(f"solution template without an equation: {sentence!r}")
    return sentence[: m.start()] + "{eq}" + sentence[m.end() :], m[1] == "k"


_CUT: dict[str, tuple[str, bool]] = {
    tpl[1]: _cut(tpl[1])
    for pool in (
        T.ADD,
        T.SUB,
        T.SUB_EDIBLE,
        T.MUL,
        T.MUL_INTRO,
        T.DIV,
        T.DIV_LAST,
        *T.MUL_BY.values(),
        *T.DIV_BY.values(),
    )
    for tpl in pool
}

# The words a solution needs besides its numbers: the record's common placeholders (name, pronouns, things) and, per
# step, (sentence with "{eq}", k_first, subject).
Plan = tuple[dict, list[tuple[str, bool, str]]]


def render(rng: random.Random, chain: list[int], ops: list[str], operands: list[int]) -> tuple[str, list[str]]:
    """Words for a skeleton: (problem text, gold solution lines ending with "The answer is N.").

    >>> text, solution = render(random.Random(0), [17, 13], ["-"], [4])
    >>> text
    'Tariq keeps 17 beads in a bag. He gives 4 beads to Theo. In the end, how many beads does Tariq have?'
    >>> solution
    ['Tariq gives 4 beads to Theo, so he has 17 - 4 = 13 beads left.', 'The answer is 13.']
    """
    text, plan = render_plan(rng, chain, ops, operands)
    return text, write_solution(plan, gold_steps(chain, ops, operands), chain[-1])


def render_plan(rng: random.Random, chain: list[int], ops: list[str], operands: list[int]) -> tuple[str, Plan]:
    """The problem text, and the plan of its solution's words: `write_solution` fills the plan with numbers (the
    gold ones, or a corrupted solution's), so the right and wrong solutions of a problem share every word."""
    pi = rng.randrange(len(_PEOPLE))
    base, subjects = _PEOPLE[pi]
    one, many, box, boxes, edible = rng.choice(T.THINGS)
    d = dict(base, o=_NAMES[(pi + rng.randrange(1, len(_NAMES))) % len(_NAMES)], it=many, box=box, boxes=boxes)
    common = dict(d, one=one)
    text: list[str] = []
    steps: list[tuple[str, bool, str]] = []
    question = None
    last = len(ops) - 1
    start = 0
    a = chain[0]
    d["ita"] = one if a == 1 else many
    if ops[0] == "*" and rng.random() < 0.5:
        sentence, said = rng.choice(T.MUL_INTRO)
        c = chain[1]
        d.update(a=a, k=operands[0], c=c, itc=one if c == 1 else many)
        text.append(sentence.format_map(d))
        steps.append((*_CUT[said], ""))
        start = 1
    else:
        d["a"] = a
        text.append(rng.choice(T.INTROS).format_map(d))
    for i in range(start, len(ops)):
        op, k, a, c = ops[i], operands[i], chain[i], chain[i + 1]
        if op == "+":
            pool = T.ADD
        elif op == "-":
            pool = _SUB[edible]
        elif op == "*":
            pool = _MUL.get(k, T.MUL)
        elif i == last:
            pool = _DIV_LAST.get(k, _DIV_LAST_DEFAULT)
        else:
            pool = _DIV.get(k, T.DIV)
        tpl = rng.choice(pool)
        subject = rng.choice(subjects)
        d.update(
            S=subject,
            a=a,
            k=k,
            c=c,
            ita=one if a == 1 else many,
            itk=one if k == 1 else many,
            itc=one if c == 1 else many,
            boxc=box if c == 1 else boxes,
        )
        text.append(tpl[0].format_map(d))
        steps.append((*_CUT[tpl[1]], subject))
        if len(tpl) == 3:
            question = tpl[2]
    text.append((question or rng.choice(T.QUESTIONS)).format_map(d))
    return " ".join(text), (common, steps)


def write_solution(plan: Plan, written: list[Step], final: int, worked: bool = False) -> list[str]:
    """Solution lines from a plan and one Step `(a, op, k, c)` per operation, then `The answer is {final}.`;
    `worked` writes each equation worked by place value (`prm.synth.corrupt.worked_chain`)."""
    common, steps = plan
    one, many, box, boxes = common["one"], common["it"], common["box"], common["boxes"]
    out = []
    for (sentence, k_first, subject), step in zip(steps, written, strict=True):
        a, _, k, c = step
        d = dict(common, S=subject, a=a, k=k, c=c, eq=equation(step, k_first, worked))
        d.update(ita=one if a == 1 else many, itk=one if k == 1 else many, itc=one if c == 1 else many)
        d["boxc"] = box if c == 1 else boxes
        out.append(sentence.format_map(d))
    out.append(T.ANSWER.format(c=final))
    return out

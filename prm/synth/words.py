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
from prm.synth.phrasings import FAMILIES, families

# Prebuilt once: per person the fixed placeholder values, per family and person the subject variants.
_PEOPLE = tuple({"n": n, "p": p, "P": p.capitalize(), "pp": pp, "self": obj + "self"} for n, p, obj, pp in T.PEOPLE)
_NAMES = tuple(p[0] for p in T.PEOPLE)
_SUBJECTS = {
    f.name: tuple(tuple(c.format(p=p, P=p.capitalize()) if c else n for c in f.connectors) for n, p, _, _ in T.PEOPLE)
    for f in FAMILIES.values()
}

# Styles drawn per problem, whatever the family: how multiplication and division are written in the equations,
# whether numbers up to ten are spelled out in the sentences (never in an equation), a distractor sentence with an
# unrelated number, and the question before the facts instead of after them.
TIMES = ("*", "*", "×", "x")
DIVIDE = ("/", "/", "÷")
P_WORDS, P_DISTRACTOR, P_QUESTION_FIRST = 0.3, 0.3, 0.2
_WORDS = "zero one two three four five six seven eight nine ten".split()


def spell(v: int, words: bool):
    """`v` as the sentence writes it: a word up to ten when `words`, else the number itself."""
    return _WORDS[v] if words and 0 <= v <= 10 else v


def _capital(sentence: str) -> str:
    # A sentence may open with a spelled-out number ("Three boxes of ...").
    return sentence[:1].upper() + sentence[1:]


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
    tpl[1]: _cut(tpl[1]) for f in FAMILIES.values() for pool in f.pools() for tpl in pool
}

# The words a solution needs besides its numbers: the record's common placeholders (name, pronouns, things) and, per
# step, (sentence with "{eq}", k_first, subject).
Plan = tuple[dict, list[tuple[str, bool, str]]]


def render(
    rng: random.Random, chain: list[int], ops: list[str], operands: list[int], phrasing: str = "train"
) -> tuple[str, list[str]]:
    """Words for a skeleton: (problem text, gold solution lines ending with the family's answer line).

    >>> text, solution = render(random.Random(0), [17, 13], ["-"], [4])
    >>> text
    "There are 17 stamps in Luis's album. He lends four stamps to Chloe. What's the number of stamps Luis has now?"
    >>> solution
    ['Luis lends out four, so 17 - 4 = 13 stamps are left.', 'So the answer is 13.']
    """
    text, plan = render_plan(rng, chain, ops, operands, families(phrasing))
    return text, write_solution(plan, gold_steps(chain, ops, operands), chain[-1])


def render_plan(
    rng: random.Random,
    chain: list[int],
    ops: list[str],
    operands: list[int],
    fams: tuple[T.Family, ...],
    styles: bool = True,
) -> tuple[str, Plan]:
    """The problem text, and the plan of its solution's words: `write_solution` fills the plan with numbers (the
    gold ones, or a corrupted solution's), so the right and wrong solutions of a problem share every word.
    The family is drawn from `fams`, then the styles (see TIMES, DIVIDE, P_WORDS, ...) unless `styles` is off:
    then the text is plain (digits, `*` and `/`, no distractor, the question last) and, with one family, draws
    nothing more than the words did before the families existed, so `story` without styles writes those texts."""
    fam = fams[0] if len(fams) == 1 else rng.choice(fams)
    pi = rng.randrange(len(_PEOPLE))
    base, subjects = _PEOPLE[pi], _SUBJECTS[fam.name][pi]
    one, many, box, boxes, edible = rng.choice(T.THINGS)
    words = styles and rng.random() < P_WORDS
    d = dict(base, o=_NAMES[(pi + rng.randrange(1, len(_NAMES))) % len(_NAMES)], it=many, box=box, boxes=boxes)
    times, divide = (rng.choice(TIMES), rng.choice(DIVIDE)) if styles else ("*", "/")
    common = dict(d, one=one, family=fam.name, words=words, times=times, divide=divide)
    text: list[str] = []
    steps: list[tuple[str, bool, str]] = []
    question = None
    last = len(ops) - 1
    start = 0
    a = chain[0]
    d["ita"] = one if a == 1 else many
    if ops[0] == "*" and rng.random() < 0.5:
        sentence, said = rng.choice(fam.mul_intro)
        c = chain[1]
        d.update(a=spell(a, words), k=spell(operands[0], words), c=c, itc=one if c == 1 else many)
        text.append(sentence.format_map(d))
        steps.append((*_CUT[said], ""))
        start = 1
    else:
        d["a"] = spell(a, words)
        text.append(rng.choice(fam.intros).format_map(d))
    for i in range(start, len(ops)):
        op, k, a, c = ops[i], operands[i], chain[i], chain[i + 1]
        if op == "+":
            pool = fam.add
        elif op == "-":
            pool = fam.sub + fam.sub_edible if edible else fam.sub
        elif op == "*":
            pool = fam.mul + fam.mul_by.get(k, ())
        else:
            pool = fam.div + fam.div_by.get(k, ()) + (fam.div_last if i == last else ())
        tpl = rng.choice(pool)
        subject = rng.choice(subjects)
        d.update(
            S=subject,
            a=spell(a, words),
            k=spell(k, words),
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
    common["distractor"] = None
    if styles and rng.random() < P_DISTRACTOR:
        # Anywhere after the opening sentence: a number the solution must not use.
        x = common["distractor"] = rng.randint(2, 30)
        text.insert(rng.randint(1, len(text)), rng.choice(fam.distractors).format_map(d | {"x": spell(x, words)}))
    asked = (question or rng.choice(fam.questions)).format_map(d)
    if styles and rng.random() < P_QUESTION_FIRST and question is None:
        text.insert(0, asked)
    else:
        text.append(asked)
    return " ".join(_capital(t) for t in text), (common, steps)


def write_solution(plan: Plan, written: list[Step], final: int, arithmetic: str = "plain") -> list[str]:
    """Solution lines from a plan and one Step `(a, op, k, c)` per operation, then the family's answer line;
    `arithmetic` says how each equation is written (`prm.synth.corrupt.equation`)."""
    common, steps = plan
    one, many, box, boxes, words = common["one"], common["it"], common["box"], common["boxes"], common["words"]
    symbols = {"*": common["times"], "/": common["divide"]}
    out = []
    for (sentence, k_first, subject), step in zip(steps, written, strict=True):
        a, _, k, c = step
        eq = equation(step, k_first, arithmetic, symbols)
        d = dict(common, S=subject, a=spell(a, words), k=spell(k, words), c=spell(c, words), eq=eq)
        d.update(ita=one if a == 1 else many, itk=one if k == 1 else many, itc=one if c == 1 else many)
        d["boxc"] = box if c == 1 else boxes
        out.append(_capital(sentence.format_map(d)))
    out.append(FAMILIES[common["family"]].answer.format(c=final))
    return out

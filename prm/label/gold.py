"""The `gold` labeler: ground truth for synthetic traces, from the problem's gold chain of intermediate values.

A synthetic problem (`prm synth`) carries `chain` = [start, result of op 0, result of op 1, ...], `ops` and
`operands`, so chain[j] = chain[j-1] ops[j-1] operands[j-1]. The labeler walks the steps in order, keeping the
position p of the furthest gold value the solution has reached (p = 0: only the start value, which the problem states).
A step is judged as follows; the first step judged wrong is the first error (`false`), the steps before it are
`true`, the steps after it follow the convention (`null` by default, or `false`).

1. Every equation the safe checker finds (`prm.checker.find_equations`, inline `a op b = c` and GSM8K `<<a*b=c>>`)
   and every other link of a chained equality (`prm.checker.find_links`, `a + b = c + d`) must be arithmetically
   right: a wrong one makes the step wrong ("wrong arithmetic"). One the checker cannot read is ignored.
2. Each right equation's result r, in order within the step, must follow the gold chain:
   - r = chain[j] with j > p, computed by a GOLD ROUTE: its literals are {chain[m]} + operands[m:j] and its operators
     are ops[m:j] (as multisets, so `4 * 3` and `3 * 4` both match) for some m < j. The step advances: p = j. With
     j > p + 1 this is a SKIPPED step: the intermediate value(s) were not written (done in the head, or combined as
     `(12 + 5) * 2 = 34`); it is right. An equation whose operators or numbers cannot be read is given the benefit
     of the doubt (j >= p, no route check).
   - r = chain[j] with j > p by ANOTHER route (`4 * 2 = 8` where the gold step is `4 + 4 = 8`): a RIGHT RESULT BY A
     WRONG ROUTE is wrong ("wrong route"). Strict on purpose: an equivalent rewrite (`12 * 2` for `12 + 12`) is
     judged wrong too; in synthetic problems each step has exactly one operation and one operand, so a solution
     that follows it writes the gold route.
   - r = chain[p], the current value, by its gold route (`12 + 5 = 17` again): a RESTATEMENT, harmless (p unchanged).
     By any other route it is NO PROGRESS, wrong: an operation that lands on the value the solution already had,
     such as `55 / 1 = 55` where the step should divide by 5, or `3 * 3 = 9` that happens to give the start value.
   - r = chain[j] with j < p: harmless only as a recap of a gold step (gold route); otherwise the solution went
     back to an old value ("back to an earlier value").
   - r not in the chain at all: wrong ("off the gold chain").
3. A step stating a final answer (`prm.answers.extract_answer`) is right iff the answer equals the gold answer
   (after its equations pass rule 1 and 2), even if some chain values were skipped.
4. A step without equations and without an answer is a restatement or prose: right, unless it states a number
   that is neither in the problem text, nor a gold chain value, nor an operand ("unsupported number"); a leading
   enumerator such as `Step 2:` or `3.` is not a number of the step. Prose never advances p.
5. An empty trace (`meta["empty"]`, its one step a placeholder) is wrong at step 0.

Known limits (measured: on 6,000 `prm synth --corrupt 0.5` test solutions of 1-8 steps, seed 3, 8 of the 3,000
injected errors are found one or more steps late, none early, and no error is found in a gold solution; 11 late
before the no-progress rule): a step that only repeats the previous step's equation where it should have applied
the next operation is a restatement under rule 2, and an equation whose numbers happen to spell a gold route (a
problem number equal to a skipped chain value) passes as a skip; in both cases the error is found at the next step
that leaves the chain.

values: 1.0 for the steps before the first error, 0.0 from it on (as `prm synth --corrupt` writes them).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from prm.answers import answers_equal, extract_answer
from prm.checker import check_equation, check_link, claimed_value, find_equations, find_links
from prm.label.base import Labeled, apply_convention, synth_meta
from prm.records import RecordError, StepRecord

_NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
_ENUMERATOR = re.compile(r"^\s*(?:step\s*)?\d+\s*[:.)]\s+", re.I)
_UNICODE_OPS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})
_TIMES_X = re.compile(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])")
_OP_NAMES = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "/"}


@dataclass(frozen=True)
class GoldProblem:
    """The gold facts of a synthetic problem: chain (len n+1), ops and operands (len n), answer, known numbers."""

    chain: tuple[int, ...]
    ops: tuple[str, ...]
    operands: tuple[int, ...]
    answer: str
    known: frozenset[Fraction]

    @classmethod
    def from_meta(cls, meta: dict, problem: str, answer: str | None) -> GoldProblem:
        chain, ops, operands = tuple(meta["chain"]), tuple(meta["ops"]), tuple(meta["operands"])
        if len(chain) != len(ops) + 1 or len(ops) != len(operands):
            raise ValueError("chain must have one more value than ops and operands")
        known = frozenset(numbers(problem)) | {Fraction(v) for v in chain + operands}
        return cls(chain, ops, operands, answer if answer is not None else str(chain[-1]), known)


def numbers(text: str) -> list[Fraction]:
    """The plain numbers written in `text` (`1,200` is one number; digits glued to letters are not numbers)."""
    return [Fraction(m[0].replace(",", "")) for m in _NUMBER.finditer(text)]


def route(expr: str) -> tuple[Counter, Counter] | None:
    """(literals, operators) of an equation's left side as multisets, or None when it is not plain + - * / arithmetic.

    >>> route("$12 + 3 x 4")
    (Counter({Fraction(12, 1): 1, Fraction(3, 1): 1, Fraction(4, 1): 1}), Counter({'+': 1, '*': 1}))
    """
    src = _TIMES_X.sub(" * ", expr.translate(_UNICODE_OPS).replace("$", ""))
    src = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", src)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None
    literals, operators = Counter(), Counter()
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                return None
            literals[Fraction(str(node.value))] += 1
        elif isinstance(node, ast.BinOp):
            name = _OP_NAMES.get(type(node.op))
            if name is None:
                return None
            operators[name] += 1
        elif not isinstance(node, tuple(_OP_NAMES)):
            return None  # unary minus, names, calls, % or **: not a route we can compare
    return literals, operators


def _gold_route(r: tuple[Counter, Counter], g: GoldProblem, j: int) -> bool:
    literals, operators = r
    for m in range(j):
        if literals == Counter([Fraction(g.chain[m]), *map(Fraction, g.operands[m:j])]) and operators == Counter(
            g.ops[m:j]
        ):
            return True
    return False


def _follow(value: Fraction, expr: str, g: GoldProblem, p: int) -> tuple[int | None, str]:
    """Where a right equation with result `value` takes the walk from position p: (new p, "") or (None, why)."""
    hits = [j for j, v in enumerate(g.chain) if v == value]
    r = route(expr)
    if r is None:
        ahead = [j for j in hits if j >= p]
        return (ahead[0], "") if ahead else (None, f"off the gold chain: {expr} = {value}")
    for j in hits:
        if j > p and _gold_route(r, g, j):
            return j, ""
    if p in hits and p > 0 and _gold_route(r, g, p):  # the current value by its own gold route: a recap
        return p, ""
    if any(j < p and j > 0 and _gold_route(r, g, j) for j in hits):
        return p, ""
    if p in hits:
        return None, f"no progress: {expr} = {value}"
    if any(j > p for j in hits):
        return None, f"wrong route: {expr} = {value}"
    if hits:
        return None, f"back to an earlier value: {expr} = {value}"
    return None, f"off the gold chain: {expr} = {value}"


def judge_step(step: str, g: GoldProblem, p: int) -> tuple[bool, int, str]:
    """(right, new position, reason when wrong) for one step at walk position p (rules 1-4 of the module doc)."""
    for link in find_links(step):  # "a + b = c + d": every link of a chain is a claim
        if check_link(link) is False:
            return False, p, f"wrong arithmetic: {step[link.start : link.end]}"
    eqs = find_equations(step)
    for eq in eqs:
        verdict = check_equation(eq)
        if verdict is False:
            return False, p, f"wrong arithmetic: {step[eq.start : eq.end]}"
        value = claimed_value(eq.claimed) if verdict else None
        if value is None:
            continue
        p2, why = _follow(value, eq.route, g, p)
        if p2 is None:
            return False, p, why
        p = p2
    answer = extract_answer(step)
    if answer is not None:
        if answers_equal(answer, g.answer):
            return True, p, ""
        return False, p, f"wrong final answer: {answer}"
    prose = list(step)
    for eq in eqs:
        prose[eq.start : eq.end] = " " * (eq.end - eq.start)
    for x in numbers(_ENUMERATOR.sub("", "".join(prose))):
        if x not in g.known:
            return False, p, f"unsupported number: {x}"
    return True, p, ""


def gold_first_error(steps: list[str], g: GoldProblem) -> tuple[int | None, str]:
    """(index of the first wrong step or None, reason)."""
    p = 0
    for i, step in enumerate(steps):
        ok, p, why = judge_step(step, g, p)
        if not ok:
            return i, why
    return None, ""


def gold_problem(trace: StepRecord) -> GoldProblem:
    meta = synth_meta(trace)
    if meta is None:
        raise RecordError(
            None, None, "meta.problem.chain", f"trace {trace.id!r}: gold needs a synthetic problem's chain"
        )
    return GoldProblem.from_meta(meta, trace.problem, trace.answer)


def label_gold(trace: StepRecord, after_error: str = "null") -> Labeled:
    """Ground-truth labels of a synthetic trace (see the module doc for the rules)."""
    n = len(trace.steps)
    if trace.meta.get("empty"):
        e, why = 0, "empty trace"
    else:
        e, why = gold_first_error(trace.steps, gold_problem(trace))
    verdicts: list[bool | None] = [True] * n if e is None else [True] * e + [False] * (n - e)
    values: list[float | None] = [1.0] * n if e is None else [1.0] * e + [0.0] * (n - e)
    info = {"method": "gold", "rollouts": 0, "tokens": 0, "first_error": e}
    if why:
        info["reason"] = why
    return Labeled(apply_convention(verdicts, after_error), values, info)

"""Inject one named error into a gold solution, and label it exactly: `prm synth --corrupt`.

A solution is written as one `Step` per operation, `(a, op, k, c)`: the running value it starts from, the operation,
the operand and the result, as the text will show them. `inject` picks an error step and a kind, writes that step
wrongly, then recomputes every later step correctly FROM THE WRONG VALUE, as a real solver would carry its mistake
on; so the final answer is wrong too. Error kinds (the names are part of the record format, `meta["error"]["kind"]`):

    off_by_k         an arithmetic slip: the written result is off by 1..10 (and stays positive)   17 + 4 = 22
    digit_swap       two adjacent (distinct) digits of the result swapped                          17 + 4 = 12
    wrong_operation  another operation on the same operands, computed right, sentence kept         17 - 4 = 13
    wrong_operand    a number from neither the problem nor the chain so far, computed right       17 + 9 = 26
    stale_value      an older value of the chain instead of the current one, computed right        11 + 4 = 15

Two more kinds change the solution's shape, as a fine-tuned policy's own errors do (`make demo`'s pool: it skips a
sentence, answers early, or does one sentence twice). They are not in the default `ERROR_KINDS` (every benchmark of
the README was measured without them), and `KNOWN_KINDS` lists all seven:

    skipped_step     one operation left out: the next line works from the value before it; left out last, the
                     answer line states that value early (then the answer line is the first error)
    repeated_step    one operation done twice: its sentence again, applied to its own result       21 + 4 = 25

The first two make the step's own equation false; the last three keep every equation true, and only the route is
wrong. A wrong operand or a stale value is written wherever the step's sentence names that number (the solver misread
it); a wrong operation keeps the sentence, so the text says one thing and the equation does another. Every written value is a positive integer, every division exact, and values stay at most `limit` (the
problem's own cap, so that a large number never gives a wrong solution away).

    >>> import random
    >>> inject(random.Random(0), ("stale_value",), [17, 21, 42], ["+", "*"], [4, 2], [False, False], 2, 50, 1000)
    Injected(kind='stale_value', step=1, written=[(17, '+', 4, 21), (17, '*', 2, 34)], final=34, line=1, sentences=(0, 1))
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ERROR_KINDS = ("off_by_k", "digit_swap", "wrong_operation", "wrong_operand", "stale_value")
SHAPE_KINDS = ("skipped_step", "repeated_step")  # errors that add or drop a line
KNOWN_KINDS = ERROR_KINDS + SHAPE_KINDS
MAX_SLIP = 10  # off_by_k draws k from ±1..±MAX_SLIP: slips of a careless solver, not wild numbers

Step = tuple[int, str, int, int]  # (a, op, k, c) as written: running value, operation, operand, result


@dataclass(frozen=True)
class Injected:
    """A corrupted solution: `written` has one Step per line before the answer line (the gold ones before the
    error), `final` is the value the answer line states (wrong). `step` is the operation the error is about,
    `line` the first wrong line (the label's position), `sentences` the operation whose sentence each written
    line uses. For the shape-keeping kinds `line == step` and the sentences are 0, 1, ..., one per operation."""

    kind: str
    step: int
    written: list[Step]
    final: int
    line: int
    sentences: tuple[int, ...]


def apply(op: str, x: int, y: int) -> int | None:
    """`x op y` when it is a positive integer (exact division), else None. `apply("/", 12, 5) is None`."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y if x > y else None
    if op == "*":
        return x * y
    return x // y if y and x % y == 0 else None


def compute(a: int, op: str, k: int, k_first: bool) -> int | None:
    """The result of a step whose equation writes `k op a` (k_first) or `a op k`: order matters for - and /."""
    return apply(op, k, a) if k_first else apply(op, a, k)


def gold_steps(chain: list[int], ops: list[str], operands: list[int]) -> list[Step]:
    return [(chain[i], ops[i], operands[i], chain[i + 1]) for i in range(len(ops))]


def equation(step: Step, k_first: bool, arithmetic: str = "plain", symbols: dict[str, str] | None = None) -> str:
    """The text of a step's equation: `equation((17, "+", 4, 21), False) == "17 + 4 = 21"`; `worked` and `digits`
    insert the middle links of `worked_chain` and `digits_chain`; `symbols` writes an operator another way
    (`{"*": "×"}`).

    >>> equation((6, "*", 4, 24), True, symbols={"*": "x"}), equation((504, "/", 9, 56), False, "digits")
    ('4 x 6 = 24', '504 / 9 = 450 / 9 + 54 / 9 = 50 + 6 = 56')
    """
    a, op, k, c = step
    x, y = (k, a) if k_first else (a, k)
    middle = _CHAINS[arithmetic](x, op, y) if arithmetic in _CHAINS else []  # plain: no middle links
    text = " = ".join([f"{x} {op} {y}", *middle, str(c)])
    for ascii_op, shown in (symbols or {}).items():
        if shown != ascii_op:
            text = text.replace(f" {ascii_op} ", f" {shown} ")
    return text


def worked_chain(x: int, op: str, y: int) -> list[str]:
    """The middle links of a worked equation `x op y = ... = result`: a sum, difference or product with a
    multi-digit operand split into tens and units, so each link is a one-digit step a small model can compute
    (the way a pupil works it on paper). The links are exact; a wrong result (a slip) shows in the last link only.
    Divisions and one-digit operations stay plain.

    >>> worked_chain(874, "-", 37), worked_chain(26, "*", 23), worked_chain(105, "*", 6), worked_chain(9, "+", 4)
    (['874 - 30 - 7', '844 - 7'], ['26 * 20 + 26 * 3', '520 + 78'], ['100 * 6 + 5 * 6', '600 + 30'], [])
    """
    tens, units = y - y % 10, y % 10
    if op in "+-" and y >= 10 and units:
        return [f"{x} {op} {tens} {op} {units}", f"{x + tens if op == '+' else x - tens} {op} {units}"]
    if op == "*" and y >= 10 and units and x > 1:
        return [f"{x} * {tens} + {x} * {units}", f"{x * tens} + {x * units}"]
    if op == "*" and x >= 10 and x % 10 and 1 < y < 10:
        hi, lo = x - x % 10, x % 10
        return [f"{hi} * {y} + {lo} * {y}", f"{hi * y} + {lo * y}"]
    return []


def place_parts(n: int) -> list[int]:
    """The nonzero place-value parts of n, largest first: `place_parts(504) == [500, 4]`."""
    digits = str(n)
    return [int(d) * 10 ** (len(digits) - 1 - i) for i, d in enumerate(digits) if d != "0"]


def digits_chain(x: int, op: str, y: int) -> list[str]:
    """The middle links of an equation worked out to one-digit facts, further than `worked_chain`: every product
    of place-value parts is a one-digit product with zeros after it, and partial sums are added one at a time;
    a division is split by the quotient's place-value parts (long division in chunks); a product of two round
    numbers is written as its one-digit product times a power of ten. Sums and differences as in `worked_chain`.
    The links are exact: a slip shows in the last link only, as in `worked_chain`.

    >>> digits_chain(26, "*", 23)
    ['20 * 20 + 20 * 3 + 6 * 20 + 6 * 3', '400 + 60 + 120 + 18', '460 + 120 + 18', '580 + 18']
    >>> digits_chain(80, "*", 6), digits_chain(27, "*", 6), digits_chain(480, "/", 20), digits_chain(56, "/", 8)
    (['8 * 6 * 10', '48 * 10'], ['20 * 6 + 7 * 6', '120 + 42'], ['400 / 20 + 80 / 20', '20 + 4'], [])
    """
    if op in "+-":
        return worked_chain(x, op, y)
    if op == "*" and min(x, y) > 1:
        xs, ys = place_parts(x), place_parts(y)
        if len(xs) == 1 and len(ys) == 1:
            (p,), (q,) = xs, ys
            dx, dy = int(str(p)[0]), int(str(q)[0])
            scale = p * q // (dx * dy)
            return [] if scale == 1 else [f"{dx} * {dy} * {scale}", f"{dx * dy} * {scale}"]
        terms = [(p, q) for p in xs for q in ys]
        links = [" + ".join(f"{p} * {q}" for p, q in terms)]
        sums = [p * q for p, q in terms]
        while len(sums) > 1:
            links.append(" + ".join(map(str, sums)))
            sums = [sums[0] + sums[1], *sums[2:]]
        return links
    if op == "/" and y and x % y == 0:
        parts = place_parts(x // y)
        if len(parts) < 2:
            return []
        return [" + ".join(f"{q * y} / {y}" for q in parts), " + ".join(map(str, parts))]
    return []


_CHAINS = {"worked": worked_chain, "digits": digits_chain}  # the middle links of each --arithmetic but plain


def _candidates(
    kind: str, e: int, chain, ops, operands, k_first: list[bool], lo: int, hi: int, avoid: tuple[int, ...] = ()
) -> list[Step]:
    """Every way to write step `e` wrongly with `kind` (before checking what it does to the later steps); `avoid`:
    other numbers of the problem's text (a distractor's), which a wrong operand must not be either."""
    a, op, k, c = chain[e], ops[e], operands[e], chain[e + 1]
    kf = k_first[e]
    out: list[Step] = []
    if kind == "off_by_k":
        for d in range(-MAX_SLIP, MAX_SLIP + 1):
            if d and c + d >= 1:
                out.append((a, op, k, c + d))
    elif kind == "digit_swap":
        s = str(c)
        for p in range(len(s) - 1):
            # Equal digits would not change the result; a zero moved to the front would not be a number.
            if s[p] != s[p + 1] and not (p == 0 and s[1] == "0"):
                out.append((a, op, k, int(s[:p] + s[p + 1] + s[p] + s[p + 2 :])))
    elif kind == "wrong_operation":
        for other in "+-*/":
            r = compute(a, other, k, kf) if other != op else None
            if r is not None and r != c:
                out.append((a, other, k, r))
    elif kind == "wrong_operand":
        # Numbers a solver could not have taken from the text or its own work: a hallucinated operand.
        seen = {*chain[: e + 1], *operands, *avoid}
        low = lo if op in "+-" else max(lo, 2)  # x 1 and / 1 are no operations at all
        for k2 in range(low, hi + 1):
            r = compute(a, op, k2, kf) if k2 not in seen else None
            if r is not None:
                out.append((a, op, k2, r))
    elif kind == "stale_value":
        for old in dict.fromkeys(chain[:e]):  # distinct, in order: deterministic
            r = compute(old, op, k, kf) if old != a else None
            if r is not None:
                out.append((old, op, k, r))
    else:
        raise ValueError(f"unknown error kind {kind!r} (known: {', '.join(KNOWN_KINDS)})")
    return out


def _reshaped(kind: str, e: int, chain, ops, operands, k_first: list[bool], limit: int) -> Injected | None:
    """Operation `e` left out (`skipped_step`) or done twice (`repeated_step`), the later operations computed right
    from the value that results; None when a value leaves 1..limit or a division stops being exact, or when the
    wrong line's value is one of the gold chain's (`+ 3` twice in a row: leaving one out or doing it once more
    would be wrong only in which sentence the line quotes; `- 33` after `* 34` after `- 33` returns to a value
    of the chain): a labeler that follows the values could not see where it went wrong; or when the answer comes
    out right all the same (an operation by 1)."""
    gold = gold_steps(chain, ops, operands)
    n = len(ops)
    if kind == "skipped_step":
        later = _carry(chain[e], e, ops, operands, k_first, limit)
        if later is None or (later and later[0][3] in chain):
            return None
        out = Injected(kind, e, gold[:e] + later, later[-1][3] if later else chain[e], e, (*range(e), *range(e + 1, n)))
    else:
        again = compute(chain[e + 1], ops[e], operands[e], k_first[e])
        later = (
            None
            if again is None or again > limit or again in chain
            else _carry(again, e, ops, operands, k_first, limit)
        )
        if later is None:
            return None
        written = gold[: e + 1] + [(chain[e + 1], ops[e], operands[e], again)] + later
        out = Injected(kind, e, written, written[-1][3], e + 1, (*range(e + 1), *range(e, n)))
    return None if out.final == chain[-1] else out


def _carry(value: int, e: int, ops, operands, k_first: list[bool], limit: int) -> list[Step] | None:
    """Steps e+1.. computed right from `value` (the wrong result of step e); None when a value leaves 1..limit or
    a division stops being exact, since the solution could then not be written in this problem's terms."""
    out: list[Step] = []
    for j in range(e + 1, len(ops)):
        r = compute(value, ops[j], operands[j], k_first[j])
        if r is None or r > limit:
            return None
        out.append((value, ops[j], operands[j], r))
        value = r
    return out


def inject(
    rng: random.Random,
    kinds: tuple[str, ...] | list[str],
    chain: list[int],
    ops: list[str],
    operands: list[int],
    k_first: list[bool],
    lo: int,
    hi: int,
    limit: int,
    avoid: tuple[int, ...] = (),
) -> Injected | None:
    """Corrupt the gold solution `chain, ops, operands` (len(chain) == len(ops) + 1) with one of `kinds`.

    The error step is drawn uniformly among the operation steps; when no kind can be injected there (e.g. a digit
    swap into a one-digit result, or a slip that a later division cannot divide), the other steps are tried in a
    random order. The kind is uniform among the kinds possible at that step, the wrong step uniform among that
    kind's valid versions. Returns None when no step admits any kind (then the caller skips the problem).

    The step comes first so that an error's position carries no information (a `repeated_step` errs on the line
    after its operation, so its wrong line is never the first); the price is that kinds that fit fewer steps are
    rarer (with all kinds on 2-4-step problems: off_by_k and wrong_operand about 27% each,
    wrong_operation 21%, digit_swap 13%, stale_value 11%, never at step 0).
    """
    n = len(ops)
    first = rng.randrange(n)
    rest = [i for i in range(n) if i != first]
    rng.shuffle(rest)
    gold = gold_steps(chain, ops, operands)
    for e in (first, *rest):
        order = list(kinds)
        rng.shuffle(order)
        for kind in order:
            if kind in SHAPE_KINDS:
                reshaped = _reshaped(kind, e, chain, ops, operands, k_first, limit)
                if reshaped is not None:
                    return reshaped
                continue
            valid = []
            for cand in _candidates(kind, e, chain, ops, operands, k_first, lo, hi, avoid):
                if cand[3] > limit:
                    continue
                later = _carry(cand[3], e, ops, operands, k_first, limit)
                if later is not None:
                    valid.append((cand, later))
            if valid:
                cand, later = rng.choice(valid)
                written = gold[:e] + [cand] + later
                return Injected(kind, e, written, written[-1][3], e, tuple(range(len(ops))))
    return None


def error_labels(n_steps: int, error: int, after_error: str) -> tuple[list[bool | None], list[float]]:
    """Labels and values of a solution of `n_steps` lines (answer line included) whose first error is line `error`.

    >>> error_labels(4, 1, "null")
    ([True, False, None, None], [1.0, 0.0, 0.0, 0.0])
    >>> error_labels(3, 0, "false")[0]
    [False, False, False]
    """
    after: bool | None = None if after_error == "null" else False
    labels: list[bool | None] = [True] * error + [False] + [after] * (n_steps - error - 1)
    # From the error on the solution cannot reach the answer any more: its value is exactly 0.
    values = [1.0] * error + [0.0] * (n_steps - error)
    return labels, values

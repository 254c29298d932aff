"""Safe arithmetic checking of step text: find the equations a step writes and recompute them exactly.

    >>> check_step("She has 16 - 3 = 13 eggs left.")
    True
    >>> check_step("He pays 12 × 4 = 46 dollars.")
    False
    >>> [e.expr for e in find_equations("Natalia sold 48/2 = <<48/2=24>>24 clips.")]
    ['48/2']

`safe_eval` never runs code: it walks the `ast` of the expression and computes with `fractions.Fraction`, refusing
anything but numbers, + - * / // % ** and parentheses, and refusing before computing anything that could be large.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

# A GSM8K calculator annotation: <<48/2=24>> -> expression "48/2", claimed value "24".
CALC_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")

# Limits of safe_eval. Step arithmetic is small (GSM8K's largest annotations are a few dozen characters, numbers well
# under 10**12); anything past these is refused with CheckError rather than computed.
MAX_EXPR_CHARS = 200  # length of the expression text
MAX_PAREN_DEPTH = 20  # checked on the text before ast.parse, which itself can hit RecursionError on deep nesting
MAX_NODES = 64  # AST nodes in the parsed expression
MAX_DIGITS = 30  # digits in one literal (checked on the text, before any int is built)
MAX_EXPONENT = 64  # |e| in a ** e; e must be an integer
MAX_MAGNITUDE = Fraction(10**40)  # |value| of every literal and intermediate result
MAX_BITS = 512  # bits of the numerator and denominator of every intermediate (keeps gcds and pows cheap)


class CheckError(ValueError):
    """An expression safe_eval refuses: malformed, not plain arithmetic, or over a limit."""


_UNICODE_OPS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"})  # – : writers use the en dash
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")  # "1,200" but not "1,2" or "1,2345"
_DIGIT_RUN = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")
_ARITH = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_BINOPS = (*_ARITH, ast.Pow)


def _check_size(x: Fraction) -> Fraction:
    if abs(x) > MAX_MAGNITUDE or x.numerator.bit_length() > MAX_BITS or x.denominator.bit_length() > MAX_BITS:
        raise CheckError("value out of range")
    return x


def _eval(node: ast.AST, src: str) -> Fraction:
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):  # bool, str, bytes, complex, None, Ellipsis
            raise CheckError(f"not a number: {type(node.value).__name__}")
        # From the source text, not the float: Fraction(0.1) is 3602879701896397/36028797018963968, not 1/10.
        try:
            value = Fraction(ast.get_source_segment(src, node) or "")
        except (ValueError, ZeroDivisionError):
            raise CheckError("unreadable number") from None
        return _check_size(value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        x = _eval(node.operand, src)
        return -x if isinstance(node.op, ast.USub) else x
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
        a, b = _eval(node.left, src), _eval(node.right, src)
        op = node.op
        if isinstance(op, ast.Pow):
            if b.denominator != 1 or abs(b) > MAX_EXPONENT:
                raise CheckError(f"exponent must be an integer of at most {MAX_EXPONENT}")
            e = abs(int(b))
            # Size the result from bit lengths before computing it, so that no large power ever starts.
            if max(a.numerator.bit_length(), a.denominator.bit_length()) * e > MAX_BITS:
                raise CheckError("power too large")
            if a == 0 and b < 0:
                raise CheckError("division by zero")
            return _check_size(a**b)
        if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and b == 0:
            raise CheckError("division by zero")
        return _check_size(Fraction(_ARITH[type(op)](a, b)))
    raise CheckError(f"not allowed: {type(node).__name__}")


def safe_eval(expr: str) -> Fraction:
    """Evaluate plain arithmetic exactly. Raises CheckError on anything else or over a limit (see the module constants).

    `× · ÷ −` read as `* * / -`; thousands separators are dropped (`1,200` -> 1200).

        >>> safe_eval("1,200 / 4"), safe_eval("0.1 + 0.2"), safe_eval("(3 + 4) × 2")
        (Fraction(300, 1), Fraction(3, 10), Fraction(14, 1))
    """
    if not isinstance(expr, str):
        raise CheckError("not a string")
    if len(expr) > MAX_EXPR_CHARS:
        raise CheckError(f"longer than {MAX_EXPR_CHARS} characters")
    src = _THOUSANDS.sub(lambda m: m[0].replace(",", ""), expr.translate(_UNICODE_OPS))
    src = " ".join(src.split())  # one line, so that source segments map back simply
    depth = 0
    for c in src:
        depth += (c in "([{") - (c in ")]}")
        if depth > MAX_PAREN_DEPTH:
            raise CheckError(f"nested deeper than {MAX_PAREN_DEPTH}")
    if _DIGIT_RUN.search(src):
        raise CheckError(f"a literal longer than {MAX_DIGITS} digits")
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CheckError("not an expression") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CheckError(f"more than {MAX_NODES} nodes")
    return _eval(tree.body, src)


# ---------------------------------------------------------------------------------------------------------------------
# Equations in step text


@dataclass(frozen=True)
class Equation:
    """One equation of a step: `expr` and `claimed` as written, `step[start:end]` the whole equation. When it ends
    a chain ("874 - 37 = 874 - 30 - 7 = 844 - 7 = 837"), `head` is the chain's first expression ("874 - 37": what
    the step computes) and `step[start:end]` the whole chain; its other links are `Link`s."""

    expr: str
    claimed: str
    start: int
    end: int
    head: str | None = None

    @property
    def route(self) -> str:
        """The expression that says which operation on which numbers the equation performs."""
        return self.head or self.expr


_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"  # ".10" too: GSM8K writes ".10*60"
_TOKEN = re.compile(rf"(?P<num>{_NUM})|(?P<word>[A-Za-z]+)|(?P<sp>\s+)|(?P<ch>.)", re.S)
_SINGLE = {c: "op" for c in "-+*/×·÷−–"} | {c: c for c in "()$=%"}
_MAX_LHS_TOKENS = 80  # a longer left side would be cut short and misjudged, so it is skipped
_CLAIM = re.compile(rf"(?P<sign>[-−–]?)\s*\$?\s*(?P<n>{_NUM})(?:\s*/\s*(?P<d>{_NUM}))?")
_TIMES_X = re.compile(r"(?<![A-Za-z])[xX](?![A-Za-z])")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num op x ( ) $ = % word other
    text: str
    start: int
    end: int


def _tokens(text: str) -> list[_Tok]:
    """Significant tokens of `text` (spaces dropped); an annotation is masked beforehand so it tokenizes as `other`."""
    out = []
    for m in _TOKEN.finditer(text):
        kind, t = m.lastgroup, m[0]
        if kind == "sp":
            continue
        if kind == "word":
            kind = "x" if t in ("x", "X") else "word"
        elif kind == "ch":
            kind = _SINGLE.get(t, "other")
        out.append(_Tok(kind, t, m.start(), m.end()))
    return out


def _is_minus(t: _Tok) -> bool:
    return t.kind == "op" and t.text in "-−–"


def _lhs(toks: list[_Tok], eq: int, lone: bool = False) -> int | None:
    """Index of the first token of the arithmetic expression that ends just before toks[eq], or None when there is
    none or its start is unclear (a left operand in prose: "M + 4 + 2 = 8", "2 pounds * 1/3 = 2/3"). With `lone`,
    a lone number counts too (the middle of a chain "2 + 3 = 5 = 4 + 1")."""
    i = eq - 1
    while i >= 0 and eq - i <= _MAX_LHS_TOKENS:
        t, after = toks[i], toks[i + 1].kind
        before = toks[i - 1].kind if i else None
        if t.kind == "x" and not (before in ("num", ")") and after in ("num", "(", "$")):
            break  # "x" is a times sign only between two operands ("3 x 4"); else a variable or a word
        if t.kind == "$" and after != "num":
            break
        if t.kind not in ("num", "op", "x", "(", ")", "$"):
            break
        i -= 1
    else:
        if i >= 0:
            return None  # hit the length limit inside an expression: its start is unknown
    start = i + 1
    if start == eq:
        return None
    first, prev = toks[start], (toks[start - 1] if start else None)
    if first.kind in ("x", ")") or (first.kind == "op" and not _is_minus(first)):
        return None  # the run starts mid-expression: its left operand is a word or a variable
    if prev is not None:
        if _is_minus(first) and prev.kind in ("word", "x", "%"):
            return None  # "pages -3 + 2", "5 apples - 3 + 2": a hyphen, or a minus whose left operand is prose
        if prev.text in ".,:" and prev.end == first.start:
            return None  # "16,0000/10", "6:00+48": the run is the tail of a malformed number or a clock time
        if prev.text == "and" and start >= 2 and toks[start - 2].kind == "num" and toks[start + 1].text == "/":
            return None  # "12 x 1 and 1/4": a mixed number in words
    kinds = [t.kind for t in toks[start:eq]]
    while kinds and kinds[0] == "(" and kinds.count("(") > kinds.count(")"):
        start, kinds = start + 1, kinds[1:]  # "(so 3 + 4 = 7)": the "(" opens an aside, not the expression
    if not kinds or kinds.count("(") != kinds.count(")"):
        return None
    if lone and [k for k in kinds if k != "$"] == ["num"] and kinds[-1] == "num":
        # Only as the middle of a chain or at the start: after a word a lone number is a name ("Week 2 = 35 + 35")
        return start if prev is None or prev.kind == "=" else None
    return start if _binary(kinds) and kinds[-1] in ("num", ")") else None


def _binary(kinds: list[str]) -> bool:
    """Whether a run of token kinds holds a binary operator (one after an operand)."""
    return any(k in ("op", "x") and p in ("num", ")") for p, k in zip(kinds, kinds[1:], strict=False))


# Words after a result that change its value or continue it: "= 50 cents", "= 1 and 1/3".
_RESULT_SCALES = {"cent", "cents", "percent", "hundred", "thousand", "million", "billion", "dozen"}


def _rhs(toks: list[_Tok], eq: int) -> int | None:
    """Index of the last token of a lone number (or a/b) right after toks[eq]; None for anything else, including
    the middle link of a chain "2 + 3 = 5 + 1 = 6", whose right side is an expression."""
    i = eq + 1
    if i < len(toks) and toks[i].kind == "$":
        i += 1
    if i < len(toks) and _is_minus(toks[i]):
        i += 1
    if i >= len(toks) or toks[i].kind != "num":
        return None
    if i + 2 < len(toks) and toks[i + 1].text == "/" and toks[i + 2].kind == "num":
        i += 2
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    if nxt is None:
        return i
    if nxt.kind in ("op", "x", "(", "%", "num") or nxt.text == "^" or nxt.text.lower() in _RESULT_SCALES:
        return None
    if nxt.kind == "word" and nxt.start == toks[i].end:
        return None  # "= 5A/5", "= 1.2Y": a number glued to a letter is algebra, not a result
    if nxt.text == ":" and nxt.start == toks[i].end:
        return None  # "= 6:48": a clock time
    if nxt.text == "and" and i + 3 < len(toks) and toks[i + 2].kind in ("num", "(") and toks[i + 3].text in "/(":
        return None  # "= 1 and 1/3", "= 16 and (2/3)": a mixed number in words
    return i


def find_equations(step: str) -> list[Equation]:
    """Every equation of a step, in order: GSM8K annotations `<<expr=value>>` and inline `lhs = number`.

    Rules: the left side is the maximal arithmetic expression before `=` and must hold an operator (so "of 20 = 10"
    is no equation); the right side must be a lone number, so in a chain "2 + 3 = 5 + 1 = 6" only "5 + 1 = 6" is
    checked (running totals written that way are sloppy, not slips). An annotation hides its own text from the inline
    search, so "16-3=<<16-3=13>>13" is one equation (the annotation's): the inline "16-3=" has no number after `=`.

        >>> [(e.expr, e.claimed) for e in find_equations("$12 + $5 = $17, then 17 x 2 = 34 eggs")]
        [('$12 + $5', '$17'), ('17 x 2', '34')]
    """
    if not isinstance(step, str):
        return []
    found = [Equation(m[1], m[2], m.start(), m.end()) for m in CALC_ANNOTATION.finditer(step)]
    masked = CALC_ANNOTATION.sub(lambda m: "§" * len(m[0]), step)  # same length: spans stay valid
    toks = _tokens(masked)
    for eq, t in enumerate(toks):
        if t.kind != "=":
            continue
        left, right = _lhs(toks, eq), _rhs(toks, eq)
        if left is not None and right is not None:
            a, b, c = toks[left].start, toks[eq - 1].end, toks[eq + 1].start
            first, head_eq = left, None
            while first >= 2 and toks[first - 1].kind == "=":  # the earlier links of a chain ending here
                before = _lhs(toks, first - 1, lone=True)
                if before is None:
                    break
                first, head_eq = before, first - 1
            head = step[toks[first].start : toks[head_eq - 1].end] if head_eq is not None else None
            found.append(Equation(step[a:b], step[c : toks[right].end], toks[first].start, toks[right].end, head))
    return sorted(found, key=lambda e: e.start)


def _rhs_run(toks: list[_Tok], eq: int) -> int | None:
    """Index of the last token of the arithmetic expression (or number) right after toks[eq], or None when what
    follows is not one that ends cleanly: a result continued in words or units ("= 50 cents", "= 75%"), a clock
    time, a number glued to letters, a mixed number in words, an expression trailing into prose."""
    i = eq + 1
    end = None
    depth = 0
    while i < len(toks):
        t = toks[i]
        prev = toks[i - 1].kind if i > eq + 1 else None
        if t.kind == "x" and not (prev in ("num", ")") and i + 1 < len(toks) and toks[i + 1].kind in ("num", "(", "$")):
            break
        if t.kind not in ("num", "op", "x", "(", ")", "$"):
            break
        if t.kind == "op" and prev is not None and prev not in ("num", ")") and not _is_minus(t):
            return None  # "= 3 * / 4": not arithmetic
        depth += (t.kind == "(") - (t.kind == ")")
        if depth < 0:
            return None  # "(so 3 + 4 = 7)": the ")" closes an aside
        if t.kind in ("num", ")") and depth == 0:
            end = i
        i += 1
    if end is None or end != i - 1 or depth != 0:
        return None  # nothing, or a run that trails into prose ("= 5 - the rest")
    nxt = toks[i] if i < len(toks) else None
    if nxt is None:
        return end
    if nxt.kind == "%" or nxt.text == "^" or nxt.text.lower() in _RESULT_SCALES:
        return None
    if nxt.kind in ("word", "x") and nxt.start == toks[end].end:
        return None  # "= 5+3x", "= (1/2)X": algebra
    if nxt.text == ":" and nxt.start == toks[end].end:
        return None
    if nxt.text == "and" and i + 2 < len(toks) and toks[i + 1].kind in ("num", "(") and toks[i + 2].text in "/(":
        return None
    return end


@dataclass(frozen=True)
class Link:
    """One `=` of a step whose two sides are both arithmetic and not a plain `expression = number` (that is an
    `Equation`): `left = right` with an expression on either side, e.g. each link of "(7 - 28) = (3 - 24) = -21"
    but the last."""

    left: str
    right: str
    start: int
    end: int


def find_links(step: str) -> list[Link]:
    """Every claim `expression = expression` of a step that `find_equations` leaves out: the middle links of a
    chain "2 + 3 = 5 + 1 = 6" and a link whose right side is an expression "7 - -7 * 4 = 7 - 28". Each is a claim
    that both sides are equal, so a calculator checks it too (`check_step`).

        >>> [(k.left, k.right) for k in find_links("x = (7 - -7 * 4) = (7 - 28) = -21")]
        [('(7 - -7 * 4)', '(7 - 28)')]
    """
    if not isinstance(step, str):
        return []
    toks = _tokens(CALC_ANNOTATION.sub(lambda m: "§" * len(m[0]), step))
    out = []
    for eq, t in enumerate(toks):
        if t.kind != "=" or (_lhs(toks, eq) is not None and _rhs(toks, eq) is not None):
            continue  # not an "=", or an Equation
        left, right = _lhs(toks, eq, lone=True), _rhs_run(toks, eq)
        if left is None or right is None:
            continue
        lk, rk = [x.kind for x in toks[left:eq]], [x.kind for x in toks[eq + 1 : right + 1]]
        if _binary(lk) or _binary(rk):
            a, b = toks[left].start, toks[right].end
            out.append(Link(step[a : toks[eq - 1].end], step[toks[eq + 1].start : b], a, b))
    return out


def check_link(link: Link) -> bool | None:
    """True when both sides have the same value, False when not, None when either is unreadable. A lone number
    written with k decimals may be the other side rounded to k decimals (as in `check_equation`)."""
    try:
        left, right = safe_eval(_as_arithmetic(link.left)), safe_eval(_as_arithmetic(link.right))
    except CheckError:
        return None
    tolerance = Fraction(0)
    for side in (link.left, link.right):
        m = _CLAIM.fullmatch(side.strip())
        if m and not m["d"] and "." in m["n"]:
            tolerance = max(tolerance, Fraction(1, 2 * 10 ** len(m["n"].partition(".")[2])))
    return abs(left - right) <= tolerance


def claimed_value(claimed: str) -> Fraction | None:
    """The exact value of a written result: `13`, `13.0`, `1,300`, `-4`, `$17`, `3/4`; None when not a plain number."""
    m = _CLAIM.fullmatch(claimed.strip())
    if m is None:
        return None
    if len(m["n"]) > MAX_DIGITS or len(m["d"] or "") > MAX_DIGITS:
        return None  # also keeps Fraction() off digit strings long enough to be slow or refused by int()
    den = Fraction(m["d"].replace(",", "")) if m["d"] else Fraction(1)
    if den == 0:
        return None
    value = Fraction(m["n"].replace(",", "")) / den
    return -value if m["sign"] else value


_MIXED = re.compile(r"(?<![\d.,/])(\d+)\s+(\d+)/(\d+)(?![\d./])")  # "1 1/2" -> (1+1/2)
_TIGHT_FRACTION = re.compile(r"(?<![\d.,/)])(\d*\.?\d+)/(\d*\.?\d+)(?![\d./(])")
_IMPLICIT_TIMES = re.compile(r"(?<=[\d)])\s*(?=\()|(?<=\))\s*(?=[\d.])")


def _as_arithmetic(expr: str) -> str:
    """Step notation to safe_eval's: drop `$`, `x` between operands is `*`, `1 1/2` is a mixed number, an unspaced
    `a/b` binds tighter than spaced operators (`25 / 1/3` is 75, as its writer meant), `2(3+4)` and `(1/2) 18`
    multiply.

        >>> _as_arithmetic("$25 / 1/3"), _as_arithmetic("8 x 1 1/2"), _as_arithmetic("9+2(8)")
        ('25 / (1/3)', '8 * (1+(1/2))', '9+2*(8)')
    """
    s = _TIMES_X.sub("*", expr.replace("$", ""))
    s = _MIXED.sub(r"(\1+\2/\3)", s)
    s = _TIGHT_FRACTION.sub(r"(\1/\2)", s)
    return _IMPLICIT_TIMES.sub("*", s)


def check_equation(eq: Equation) -> bool | None:
    """True when the expression's value is the claimed one, False when not, None when either is unreadable.

    Exact, except that a claim written with k decimals may be the value rounded to k decimals: `10 / 3 = 3.33` and
    `2/3 = 0.7` are right (writers round repeating decimals), `10 / 3 = 3` and `2/3 = 0.66` are wrong.
    """
    claimed = claimed_value(eq.claimed)
    if claimed is None:
        return None
    try:
        value = safe_eval(_as_arithmetic(eq.expr))
    except CheckError:
        return None
    m = _CLAIM.fullmatch(eq.claimed.strip())
    decimals = len(m["n"].partition(".")[2]) if m and not m["d"] else 0
    if decimals:
        return abs(value - claimed) <= Fraction(1, 2 * 10**decimals)
    return value == claimed


def check_step(step: str) -> bool | None:
    """False if any equation or link of the step is wrong; True if it has one and all are right; None otherwise.
    Every link of a chained equality is a claim, so "x = (7 - -7 * 4) = (7 - 28) = -21" is False although its last
    link is right.

    >>> check_step("2 + 2 = 5"), check_step("1,200 / 4 = 300"), check_step("No arithmetic here.")
    (False, True, None)
    >>> check_step("2 + 3 = 5 + 1 = 6"), check_step("7 - -7 * 4 = 7 - 28")
    (False, False)
    """
    verdicts = [check_equation(e) for e in find_equations(step)] + [check_link(k) for k in find_links(step)]
    if False in verdicts:
        return False
    return True if True in verdicts else None


def calc_passes(steps: Sequence[str]) -> bool:
    """Whether a solution passes the calculator: no step has a wrong equation (steps with none pass).

    >>> calc_passes(["3 * 4 = 12 pens.", "The answer is 12."]), calc_passes(["3 * 4 = 13 pens.", "The answer is 13."])
    (True, False)
    """
    return all(check_step(s) is not False for s in steps)

"""Final answers: find the answer of a solution trace, and decide whether two answers are equal.

    >>> extract_answer("48 + 24 = 72\\nThe answer is $72$.")
    '72'
    >>> extract_answer("so x = \\\\boxed{\\\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    >>> answers_equal("3/4", "0.75"), answers_equal("$1,000", "1000 dollars"), answers_equal("18", "19")
    (True, True, False)

Plain numbers (the whole of GSM8K and the synthetic problems) are compared exactly with `fractions.Fraction` and never
reach math-verify: this runs on every generated trace, and sympy costs milliseconds where a regex costs microseconds.
Anything else (`\\sqrt{2}`, `x+1`, intervals) goes to math-verify, guarded so that it cannot crash, hang or run long.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prm.record import StepRecord

# ---------------------------------------------------------------------------------------------------------------------
# Extraction

_PHRASE = re.compile(r"\banswer\s+is\b\s*:?(?P<ans>[^\n]*)", re.I)  # "The (final) answer is N"
_LABEL = re.compile(r"\banswer\s*(?:\*\*)?\s*:(?P<ans>[^\n]*)", re.I)  # "Answer: N", "**Final Answer:** N"
_HASH = re.compile(r"####(?P<ans>[^\n]*)")  # GSM8K's last line
_BOXED = re.compile(r"\\boxed\s*\{")
_SENTENCE_END = re.compile(r"\.\s")  # "The answer is 18. I checked it." -> "18"; "2.5" has no space after its dot


def _braced(text: str, open_at: int) -> int | None:
    """Index just past the brace that closes the `{` at `open_at`, or None when it never closes."""
    depth = 0
    for i in range(open_at, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _brace_pairs(text: str) -> dict[int, int]:
    """Index of each `{` -> index of its `}`, in one pass (a scan per box would be quadratic on "\\boxed{" * n)."""
    pairs, stack = {}, []
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def _unwrap(s: str) -> str:
    """Strip spaces, trailing periods, markdown bold, `$...$` / `\\(...\\)` delimiters and a whole-string `\\boxed{}`."""
    for _ in range(4):  # a few rounds: "$\\boxed{5}$." needs period, then dollars, then the box
        before = s
        s = s.strip().rstrip(".").strip().strip("*").strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)]
                break
        m = _BOXED.match(s)
        if m and _braced(s, m.end() - 1) == len(s):
            s = s[m.end() : -1]
        if s == before:
            break
    return s.strip()


def extract_answer(text: str) -> str | None:
    """The final answer of a trace: the LAST of "The (final) answer is N", "Answer: N", "#### N" and `\\boxed{N}`.

    The text is stripped of spaces, a trailing period and `$...$`; a box inside an answer line wins over the line
    (it starts later). None when there is no answer.

        >>> extract_answer("The answer is 5.\\nWait, no. The answer is 6.")
        '6'
        >>> extract_answer("#### 1,234")
        '1,234'
    """
    if not text:
        return None
    best: tuple[int, str] | None = None
    for rx in (_PHRASE, _LABEL, _HASH):
        for m in rx.finditer(text):
            ans = _SENTENCE_END.split(m.group("ans"), maxsplit=1)[0]
            if _unwrap(ans) and (best is None or m.start() > best[0]):
                best = (m.start(), ans)
    closing = _brace_pairs(text) if "\\boxed" in text else {}
    for m in reversed(list(_BOXED.finditer(text))):  # the last closed, non-empty box
        end = closing.get(m.end() - 1)
        if end is not None and text[m.end() : end].strip():
            if best is None or m.start() > best[0]:
                best = (m.start(), text[m.end() : end])
            break
    if best is None:
        return None
    return _unwrap(best[1]) or None


# ---------------------------------------------------------------------------------------------------------------------
# Numbers

_MAX_NUMBER_CHARS = 120  # longer strings are not plain numbers; the cap also keeps Fraction() off huge digit strings
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+"  # thousands groups must be exact: "1,2" is not 12
_VALUE = re.compile(
    rf"""(?P<sign>[-+]?)\s*(?:\\?\$|€|£|¥)?\s*(?P<sign2>[-+]?)\s*
    (?: \\[dt]?frac\{{\s*(?P<fsign>-?)\s*(?P<fn>{_NUM})\s*\}}\{{\s*(?P<fd>{_NUM})\s*\}}
      | (?P<n>{_NUM})(?:\s*/\s*(?P<d>{_NUM}))? )
    \s*(?:\\?%|\^\{{?\\circ\}}?|°)?""",
    re.X,
)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_UNIT_WORD = re.compile(r"[A-Za-z][A-Za-z.'/-]*(?:\^[23]|[²³])?")
# Words after a number that change its value: "5 million" is not 5. Such strings go to math-verify instead.
_SCALE_WORDS = {"million", "millions", "billion", "billions", "trillion", "thousand", "thousands", "hundred", "dozen"}
_SCALE_WORDS |= {"pi", "sqrt", "squared", "cubed", "half", "quarter", "thirds", "fourths"}


def _units_ok(rest: str) -> bool:
    """True when the text after a number is only unit-like words ("apples", "km/h", "cm^2", "dollars each")."""
    words = rest.split()
    if not words:
        return True
    if len(rest) > 40 or len(words[0].rstrip(".")) < 2:  # "2 i", "3 x" are algebra, not units
        return False
    return all(_UNIT_WORD.fullmatch(w) and w.lower().rstrip(".") not in _SCALE_WORDS for w in words)


def normalize_number(s: str) -> Fraction | None:
    """The exact value of a plain numeric answer, or None when `s` is not one.

    Accepted: `1,234`, `2.50`, `-5`, `−5` (unicode minus), `3/4`, `\\frac{3}{4}`, `$18`, `\\$18`, `12 apples`, `7 cm`,
    `30^\\circ`. A percent keeps its number: `50%` -> 50, because GSM8K-style gold answers write percent questions'
    answers without the sign (`#### 50`); so `50%` equals `50`, not `0.5`.

        >>> normalize_number("$1,234.50"), normalize_number("\\\\frac{3}{4}"), normalize_number("x + 1")
        (Fraction(2469, 2), Fraction(3, 4), None)
    """
    if not isinstance(s, str) or len(s) > _MAX_NUMBER_CHARS:
        return None
    s = _unwrap(s.replace("−", "-").replace("{,}", ",").replace("\\!", "").replace("\\,", ""))
    s = _TEXT_CMD.sub(r" \1 ", s)
    m = _VALUE.match(s)
    if m is None or (m["sign"] and m["sign2"]) or not _units_ok(s[m.end() :]):
        return None
    negative = "-" in (m["sign"] + m["sign2"] + (m["fsign"] or ""))
    if m["fn"] is not None:
        num, den = m["fn"], m["fd"]
    else:
        num, den = m["n"], m["d"] or "1"
    den_value = Fraction(den.replace(",", ""))
    if den_value == 0:
        return None
    value = Fraction(num.replace(",", "")) / den_value
    return -value if negative else value


# ---------------------------------------------------------------------------------------------------------------------
# Comparison

_MV_MAX_CHARS = 200  # longer answers are not compared symbolically: parse time grows with length
_MV_TIMEOUT_S = 1  # math-verify's signal.alarm takes whole seconds; 1 is the shortest that is on at all
_POW = re.compile(r"\^|\*\*")
_FACTORIAL = re.compile(r"(?<!\\)(\d*)\s*!")  # not LaTeX's "\!" thin space
_INT = re.compile(r"\d+")


def _too_costly(text: str) -> bool:
    """True for inputs that could keep sympy busy for minutes: exponent towers (`9^{9^{9}}`), huge exponents, huge
    factorials. In a worker thread math-verify has no timeout at all, so this screen is the only guard there."""
    if len(text) > _MV_MAX_CHARS:
        return True
    for m in _POW.finditer(text):
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            end = _braced(text, i)
            exponent = text[i:end] if end else text[i:]
        else:
            digits = _INT.match(text, i)
            exponent = digits[0] if digits else text[i : i + 1]
        if _POW.search(exponent) or "!" in exponent or any(int(n) > 10**5 for n in _INT.findall(exponent)):
            return True
    for m in _FACTORIAL.finditer(text):
        if not m.group(1) or int(m.group(1)) > 10**4:  # "(10^9)!" cannot be sized here, so refuse it
            return True
    return any(len(n) > 30 for n in _INT.findall(text))


def _latex(text: str) -> str:
    # math-verify finds LaTeX only inside delimiters: bare "\sqrt{2}" or "x+1" parse to nothing.
    return text if ("$" in text or "\\(" in text or "\\[" in text) else f"${text}$"


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=8192)
def _parse(text: str, timed: bool) -> tuple:
    import math_verify

    return tuple(math_verify.parse(_latex(text), parsing_timeout=_MV_TIMEOUT_S if timed else None))


@lru_cache(maxsize=8192)
def _math_verify_equal(pred: str, gold: str, timed: bool) -> bool:
    import math_verify

    try:
        from math_verify.errors import TimeoutException
    except ImportError:  # older math-verify releases
        TimeoutException = Exception  # noqa: N806
    try:
        g, p = _parse(gold, timed), _parse(pred, timed)
        if not g or not p:
            return False
        return bool(math_verify.verify(list(g), list(p), timeout_seconds=_MV_TIMEOUT_S if timed else None))
    except (Exception, TimeoutException):  # TimeoutException is a BaseException; neither may escape
        return False


def _keep_outer_alarm(fn, *args):
    """Call fn; math-verify's signal.alarm() cancels any timer the caller had (pytest-timeout's, for one), so put
    the remaining time back afterwards."""
    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    t0 = time.monotonic()
    try:
        return fn(*args)
    finally:
        if remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, max(remaining - (time.monotonic() - t0), 1e-3), interval)


def answers_equal(pred: str | None, gold: str | None) -> bool:
    """Whether a predicted answer equals the gold answer. None on either side -> False; never raises.

    Both plain numbers -> exact comparison (`2.50` == `5/2`, `1,000` == `$1000`); else math-verify, gold first.
    In the main thread math-verify runs with its 1 s signal timeouts; in other threads signals are unavailable, so it
    runs without them and `_too_costly` screens out the inputs that could run long.

        >>> answers_equal("\\\\sqrt{2}", "2^{1/2}"), answers_equal(None, "1")
        (True, False)
    """
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False
    a, b = normalize_number(pred), normalize_number(gold)
    if a is not None and b is not None:
        return a == b
    pred, gold = pred.strip(), gold.strip()
    if not pred or not gold:
        return False
    if pred == gold:
        return True
    if _too_costly(pred) or _too_costly(gold):
        return False
    try:
        if _in_main_thread() and hasattr(signal, "setitimer"):
            return _keep_outer_alarm(_math_verify_equal, pred, gold, True)
        return _math_verify_equal(pred, gold, False)
    except Exception:
        return False


def is_right(record: StepRecord) -> bool | None:
    """Whether a record's final answer is right: `meta.correct` (prm generate), else its last step against its
    gold answer; None when it has no gold answer to compare with."""
    if "correct" in record.meta:
        return bool(record.meta["correct"])
    if record.answer is None:
        return None
    return answers_equal(extract_answer(record.steps[-1]), record.answer)

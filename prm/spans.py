"""Where a step's text writes its result: shared by the training-free baseline (which scores those tokens) and the
PRM's encoder (whose likelihood features read them), below both so neither imports the other."""

from __future__ import annotations

import re

_NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?"  # 21, -3, 1,000, 2.5; "21." at a sentence end is "21"
_AFTER_EQUALS = re.compile(rf"=\s*\$?\s*(?P<num>{_NUMBER})")
_ANSWER = re.compile(rf"(?:\banswer\s+is\b\s*:?|####)\s*\$?\s*(?P<num>{_NUMBER})", re.I)


def result_span(step: str) -> tuple[int, int] | None:
    """Character span [start, end) of the result `step` writes: the number after the last `=` that a number
    follows, else the number of the last "The answer is N" or "#### N"; None when there is neither.

    >>> s = "Tom has 12 + 5 = 17 apples."
    >>> s[slice(*result_span(s))], result_span("He has 3 apples.")
    ('17', None)
    >>> s = "The answer is $1,250."
    >>> s[slice(*result_span(s))]
    '1,250'
    """
    for pattern in (_AFTER_EQUALS, _ANSWER):
        last = None
        for last in pattern.finditer(step):  # noqa: B007 (the last match is what we want)
            pass
        if last is not None:
            return last.span("num")
    return None

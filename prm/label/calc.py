"""The `calc` labeler: decide what a calculator can decide, leave the rest unlabeled.

Per step, the verdict is `prm.checker.check_step`: False when any equation it finds (inline `a op b = c` or a GSM8K
annotation `<<a*b=c>>`) is wrong, True when it has at least one and all are right, None when it has none it can read.
A step stating a final answer is also compared with the trace's gold `answer`: a wrong answer makes it False, a right
one makes an undecided step True. The first False is the first error; the steps after it follow the convention.

What it cannot see: a wrong operation or operand computed right (`17 - 4 = 13` where the problem adds 4) is True
for calc, so its first error then lands later (often on the answer line). `prm label-report` measures how often.
No rollouts, no values (null everywhere).
"""

from __future__ import annotations

from prm.answers import answers_equal, extract_answer
from prm.checker import check_step
from prm.label.base import Labeled, apply_convention
from prm.records import StepRecord


def calc_verdict(step: str, gold_answer: str | None) -> bool | None:
    """True / False / None for one step (see the module doc).

    >>> calc_verdict("12 + 5 = 17 apples", None), calc_verdict("12 + 5 = 18", None), calc_verdict("So she has 17.", None)
    (True, False, None)
    >>> calc_verdict("The answer is 17.", "17"), calc_verdict("17 * 2 = 34, the answer is 34.", "35")
    (True, False)
    """
    verdict = check_step(step)
    answer = extract_answer(step) if gold_answer is not None else None
    if answer is not None and verdict is not False:
        verdict = answers_equal(answer, gold_answer)
    return verdict


def label_calc(trace: StepRecord, after_error: str = "null") -> Labeled:
    verdicts = [calc_verdict(s, trace.answer) for s in trace.steps]
    labels = apply_convention(verdicts, after_error)
    decided = sum(v is not None for v in verdicts)
    info = {"method": "calc", "rollouts": 0, "tokens": 0, "decided": decided}
    return Labeled(labels, [None] * len(labels), info)

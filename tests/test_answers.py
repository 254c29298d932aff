"""Final answers: extraction from traces, exact numeric comparison, math-verify fallback (also from worker threads)."""

from __future__ import annotations

import json
import signal
import threading
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import prm.answers as answers
from prm.answers import answers_equal, extract_answer, normalize_number

# ---------------------------------------------------------------------------------------------------------------------
# extract_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 18", "18"),
        ("the final answer is 18.", "18"),
        ("So the answer is $18$.", "18"),
        ("THE ANSWER IS: 7", "7"),
        ("Answer: 42", "42"),
        ("**Final Answer:** $\\boxed{42}$", "42"),
        ("The answer is $\\boxed{7}$.", "7"),
        ("The answer is 18. I checked it twice.", "18"),
        ("The answer is \\(5\\)", "5"),
        ("Answer: $18.", "$18"),  # a currency sign is not a math delimiter
        ("#### 72", "72"),
        ("#### 1,234", "1,234"),
        ("so x = \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}} is the value", "\\frac{\\sqrt{3}}{2}"),
        ("\\boxed{{1, 2}}", "{1, 2}"),
        ("The answer is -5", "-5"),
    ],
)
def test_extract_forms(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text", ["", "No answer here.", "\\boxed{3", "The answer is", "Answer:   .", "####"])
def test_extract_none(text):
    assert extract_answer(text) is None


def test_extract_last_occurrence_wins():
    trace = (
        "Step 1: 16 - 3 = 13 eggs.\n"
        "The answer is 13.\n"
        "Wait, she also bakes with 4 of them: 13 - 4 = 9.\n"
        "The answer is 9.\n"
        "Then she sells them at $2 each: 9 * 2 = 18.\n"
        "The final answer is $18."
    )
    assert extract_answer(trace) == "$18"
    assert extract_answer("\\boxed{3} ... on reflection #### 4") == "4"
    assert extract_answer("#### 4\nThe answer is \\boxed{5}") == "5"


def test_extract_gsm8k_solution():
    solution = (
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
    )
    assert extract_answer(solution) == "72"


def test_extract_on_real_gsm8k(gsm8k_dir):
    with open(gsm8k_dir / "test.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(300), f, strict=False)]
    for row in rows:
        gold = row["answer"].rsplit("####", 1)[1].strip()
        assert extract_answer(row["answer"]) == gold
        assert normalize_number(gold) is not None, gold
        assert answers_equal(extract_answer(row["answer"]), gold)


# ---------------------------------------------------------------------------------------------------------------------
# normalize_number


@pytest.mark.parametrize(
    "text, value",
    [
        ("18", 18),
        ("1,234", 1234),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("2.50", Fraction(5, 2)),
        (".5", Fraction(1, 2)),
        ("-5", -5),
        ("−5", -5),
        ("+5", 5),
        ("3/4", Fraction(3, 4)),
        ("-3/4", Fraction(-3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{-1}{2}", Fraction(-1, 2)),
        ("-\\frac{1}{2}", Fraction(-1, 2)),
        ("$18", 18),
        ("\\$18.00", 18),
        ("-$5", -5),
        ("$-5", -5),
        ("$5$", 5),
        ("12 apples", 12),
        ("5 dollars", 5),
        ("7 cm", 7),
        ("5 km/h", 5),
        ("10 cm^2", 10),
        ("12\\text{ apples}", 12),
        ("30^\\circ", 30),
        ("50%", 50),  # a percent keeps its number: GSM8K writes percent answers without the sign
        ("50\\%", 50),
        ("1{,}000", 1000),
        ("18.", 18),
    ],
)
def test_normalize_number(text, value):
    assert normalize_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "x + 1", "\\sqrt{2}", "1,2", "1,2345", "3/0", "5 million", "2 i", "2 + 3", "1 1/2", "(1, 2)", "abc", "1e5",
     "12 apples and 3 pears", "9" * 500],
)  # fmt: skip
def test_normalize_not_a_number(text):
    assert normalize_number(text) is None


# ---------------------------------------------------------------------------------------------------------------------
# answers_equal


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("3/4", "0.75"),
        ("\\frac{1}{2}", "0.5"),
        ("2.50", "2.5"),
        ("1,000", "1000"),
        ("$18", "18"),
        ("18 dollars", "18"),
        ("−5", "-5"),
        ("-0.5", "-\\frac{1}{2}"),
        ("50%", "50"),
        ("\\sqrt{2}", "2^{1/2}"),  # not numbers: math-verify decides
        ("x+1", "1+x"),
        ("$\\frac{\\sqrt{3}}{2}$", "\\frac{\\sqrt 3}{2}"),
    ],
)
def test_equal(pred, gold):
    assert answers_equal(pred, gold)


@pytest.mark.parametrize(
    "pred, gold",
    [("18", "19"), ("1,000", "100"), ("-5", "5"), ("0.75", "3/5"), ("2.5", "25"), ("x+1", "x+2"), ("\\sqrt{2}", "2")],
)
def test_unequal(pred, gold):
    assert not answers_equal(pred, gold)


@pytest.mark.parametrize("pred, gold", [(None, "1"), ("1", None), (None, None), ("", "1"), ("  ", "  ")])
def test_none_and_empty(pred, gold):
    assert answers_equal(pred, gold) is False


def test_numeric_path_never_calls_math_verify(monkeypatch):
    def boom(*args):
        raise AssertionError("math-verify called for plain numbers")

    monkeypatch.setattr(answers, "_math_verify_equal", boom)
    assert answers_equal("3/4", "0.75") and answers_equal("$1,000", "1000 dollars")
    assert not answers_equal("18", "19")


def test_costly_input_is_refused_fast():
    t0 = time.perf_counter()
    assert not answers_equal("9^{9^{9}}", "1")
    assert not answers_equal("2^{10000000}", "1")
    assert not answers_equal("(10^9)!", "1")
    assert not answers_equal("1" * 40, "x")
    # Unrefused, the first three run for minutes; the bound is loose so that a busy machine cannot fail it.
    assert time.perf_counter() - t0 < 2.0


def test_math_verify_from_a_worker_thread():
    # math-verify's signal timeouts raise ValueError outside the main thread; answers_equal must still work there.
    results: list = []
    errors: list = []

    def work():
        try:
            results.append(answers_equal("\\sqrt{8}", "2\\sqrt{2}"))
            results.append(answers_equal("y+1", "1+x"))
            results.append(answers_equal("9^{9^{9}}", "1"))
            results.append(answers_equal("0.5", "\\frac{1}{2}"))
        except BaseException as e:  # noqa: BLE001 - the test reports any escape
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=60)
    assert not errors and results == [True, False, False, True]


def test_caller_alarm_survives_math_verify():
    # math-verify's signal.alarm() cancels whatever timer the caller had; answers_equal puts it back.
    old_handler = signal.signal(signal.SIGALRM, lambda *a: None)
    old_timer = signal.setitimer(signal.ITIMER_REAL, 50)
    try:
        assert answers_equal("x^2 + 2x + 1", "(x+1)^2")
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 40 < remaining <= 50
    finally:
        signal.setitimer(signal.ITIMER_REAL, *old_timer)
        signal.signal(signal.SIGALRM, old_handler)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_extract_and_normalize_never_raise(text):
    extract_answer(text)
    normalize_number(text)


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="0123456789x+-*/^{}()\\frac $.,%", max_size=20), st.text(max_size=10))
def test_fuzz_answers_equal_never_raises(pred, gold):
    assert answers_equal(pred, gold) in (True, False)

"""The config of `prm synth`: how many problems, which split, how many steps and how large the numbers are."""

from __future__ import annotations

from typing import Literal

from prm.config import config, option
from prm.synth.corrupt import ERROR_KINDS, KNOWN_KINDS
from prm.synth.phrasings import PHRASINGS

MAX_STEPS = 8  # the templates and the 135M policy model both stay readable up to here


@config("synth")
class SynthConfig:
    """`prm synth` writes verifiable arithmetic word problems with their gold step-by-step solutions.

    >>> SynthConfig(n=10, split="test").split
    'test'
    >>> SynthConfig(min_steps=3, max_steps=2)
    Traceback (most recent call last):
    ...
    ValueError: min_steps (3) must be <= max_steps (2)
    """

    n: int = option(1000, "number of problems to write (with pairs, each is written twice)")
    seed: int = option(0, "random seed; the same config always writes the same file, byte for byte")
    split: Literal["train", "test"] = option(
        "train", "which split to write; a problem belongs to exactly one split whatever the seed (see prm.synth)"
    )
    min_steps: int = option(2, f"fewest operations (solution steps) in a problem, 1..{MAX_STEPS}")
    max_steps: int = option(4, f"most operations in a problem, 1..{MAX_STEPS}; each problem draws its count uniformly")
    min_value: int = option(2, "smallest number written in a problem's text (start value, amounts, factors, divisors)")
    max_value: int = option(50, "largest number written in a problem's text")
    max_result: int = option(1000, "cap on every intermediate value; at least 2 * max_value")
    test_fraction: float = option(0.2, "share of the problem space reserved for the test split")
    corrupt: float = option(
        0.0,
        "fraction of the written solutions that carry one injected error (0 = all gold, 0.5 = half); "
        "the error is labeled false, the steps before it true",
    )
    pairs: bool = option(
        False,
        "write every problem twice, solved right (id .../ok) and with an injected error (.../err), so that neither "
        "the problem nor its position can explain a label; corrupt must then be 0 or 0.5",
    )
    wrong_per_problem: int = option(
        1,
        "with pairs: wrong solutions written per problem beside the right one (ids .../err, .../err2, ...), "
        "e.g. 3 for best-of-4 sets of one right and three wrong candidates",
    )
    styles: bool = option(
        True,
        "vary the style within a family: * × x and / ÷, numbers up to ten in words, a distractor sentence, the "
        "question first; false writes plain text (with phrasing story: the texts written before the families)",
    )
    pair_phrasing: Literal["same", "mixed"] = option(
        "same",
        "with pairs: wrong solutions in the right one's words (matched pairs that differ only in the error), or "
        "mixed: each written anew in another family of the phrasing, so wording can't tell right from wrong",
    )
    error_kinds: tuple[str, ...] = option(
        ERROR_KINDS,
        f"kinds of injected errors ({', '.join(KNOWN_KINDS)}; the default leaves out the last two, which add or drop a "
        "line); each error takes one uniformly among those that fit its step",
    )
    phrasing: str = option(
        "train",
        "sentence families to draw from: train (story, chat, ledger), heldout (report: sentences no training "
        "family uses, for testing a PRM on unseen phrasings), or one family by name",
    )
    arithmetic: Literal["plain", "worked", "digits"] = option(
        "plain",
        "how solutions write their equations: plain (26 * 23 = 598), worked by place value "
        "(26 * 23 = 26 * 20 + 26 * 3 = 520 + 78 = 598), which a small policy learns to compute far more reliably, "
        "or digits, worked down to one-digit facts, divisions in chunks (504 / 9 = 450 / 9 + 54 / 9 = 50 + 6 = 56)",
    )
    after_error: Literal["null", "false"] = option(
        "null", "label of the steps after the first error: null (unlabeled, as PRM800K and ProcessBench) or false"
    )
    output: str = option("data/out/problems.jsonl", "where to write the step records (.jsonl or .parquet)")

    def __post_init__(self) -> None:
        # Pure checks only: the config loader turns a ValueError into a ConfigError naming the command.
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if not 1 <= self.min_steps <= MAX_STEPS:
            raise ValueError(f"min_steps must be in 1..{MAX_STEPS}, got {self.min_steps}")
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise ValueError(f"max_steps must be in 1..{MAX_STEPS}, got {self.max_steps}")
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must be <= max_steps ({self.max_steps})")
        if self.min_value <= 0:
            raise ValueError(f"min_value must be > 0, got {self.min_value}")
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({self.min_value}) must be <= max_value ({self.max_value})")
        # With this margin every running value admits an addition or a subtraction, so a problem never dead-ends.
        if self.max_result < 2 * self.max_value:
            raise ValueError(
                f"max_result ({self.max_result}) must be >= 2 * max_value ({2 * self.max_value}) "
                "so that every step has a valid operation"
            )
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be strictly between 0 and 1, got {self.test_fraction}")
        if not 0.0 <= self.corrupt <= 1.0:
            raise ValueError(f"corrupt must be a fraction in [0, 1], got {self.corrupt}")
        if self.pairs and self.corrupt not in (0.0, 0.5):
            raise ValueError(
                f"with pairs, half the records are corrupted: leave corrupt at 0 or 0.5, got {self.corrupt}"
            )
        if self.wrong_per_problem < 1:
            raise ValueError(f"wrong_per_problem must be >= 1, got {self.wrong_per_problem}")
        if self.wrong_per_problem > 1 and not self.pairs:
            raise ValueError("wrong_per_problem > 1 needs pairs: true (it writes sets of one right and m wrong)")
        if not self.error_kinds:
            raise ValueError(f"error_kinds must name at least one of {', '.join(KNOWN_KINDS)}")
        for kind in self.error_kinds:
            if kind not in KNOWN_KINDS:
                raise ValueError(f"error_kinds: unknown kind {kind!r} (known: {', '.join(KNOWN_KINDS)})")
        if len(set(self.error_kinds)) != len(self.error_kinds):
            raise ValueError(f"error_kinds lists a kind twice: {', '.join(self.error_kinds)}")
        if self.phrasing not in PHRASINGS:
            raise ValueError(f"phrasing: unknown {self.phrasing!r} (known: {', '.join(PHRASINGS)})")
        if not self.output:
            raise ValueError("output must be a non-empty path")

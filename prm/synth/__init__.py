"""`prm synth`: verifiable multi-step arithmetic word problems with gold step-by-step solutions.

Each problem applies 1 to 8 operations (+ - * /) to a running count of things a person has; every intermediate
value is a positive integer no larger than `max_result`, and every division is exact. The gold solution has one line
per operation with its equation in ASCII (`17 - 4 = 13`) and ends with `The answer is N.`

    >>> from prm.synth import SynthConfig, generate
    >>> rec = next(generate(SynthConfig(n=1)))
    >>> rec.meta["chain"][-1] == int(rec.answer), all(rec.labels)
    (True, True)

Train and test are disjoint by construction: see `prm.synth.problems` for the split rule.

With `corrupt` (a fraction) or `pairs`, some solutions carry one injected error of a named kind, labeled exactly:
steps before it true, the error false, later steps (computed from the wrong value) null or false; see
`prm.synth.corrupt`. `meta["error"]` holds the kind and the step.
"""

from prm.synth.command import run
from prm.synth.config import SynthConfig
from prm.synth.corrupt import ERROR_KINDS, inject
from prm.synth.problems import draw_skeleton, generate, skeleton_key, split_of
from prm.synth.words import render

__all__ = [
    "ERROR_KINDS",
    "SynthConfig",
    "draw_skeleton",
    "generate",
    "inject",
    "render",
    "run",
    "skeleton_key",
    "split_of",
]

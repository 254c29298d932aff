"""`prm synth`: verifiable multi-step arithmetic word problems with gold step-by-step solutions.

Each problem applies 1 to 8 operations (+ - * /) to a running count of things a person has; every intermediate
value is a positive integer no larger than `max_result`, and every division is exact. The gold solution has one line
per operation with its equation in ASCII (`17 - 4 = 13`) and ends with `The answer is N.`

    >>> from prm.synth import SynthConfig, generate
    >>> rec = next(generate(SynthConfig(n=1)))
    >>> rec.meta["chain"][-1] == int(rec.answer), all(rec.labels)
    (True, True)

Train and test are disjoint by construction: see `prm.synth.problems` for the split rule.
"""

from prm.synth.command import run
from prm.synth.config import SynthConfig
from prm.synth.problems import draw_skeleton, generate, render, skeleton_key, split_of

__all__ = ["SynthConfig", "draw_skeleton", "generate", "render", "run", "skeleton_key", "split_of"]

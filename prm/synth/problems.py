"""Draw verifiable multi-step arithmetic word problems and their gold solutions.

A problem is first drawn as a *skeleton*: a start value and one (operation, number) pair per step, e.g.
`17 +4 *3 -5`. Only the skeleton decides the split and the duplicates, so the words (names, things, phrasings) are drawn
afterwards and only for skeletons that are kept; this is what makes the test split cheap to fill.

Split rule: blake2b of the skeleton's canonical text ("17+4*3-5"), read as a number u in [0, 1): the problem belongs
to `test` if u < test_fraction, else to `train`. The rule depends on nothing but the skeleton (not the seed, the
size, the index or the wording), so train and test files never share a problem, nor even the same arithmetic under
other words, whatever seeds and sizes produced them. Changing the key format reshuffles the splits: don't.

    >>> split_of(17, ("+", "*"), (4, 3), 0.2)
    'train'
    >>> rec = next(generate(SynthConfig(n=1, seed=3)))
    >>> rec.id, rec.steps[-1], rec.answer  # the answer line's wording is the phrasing family's
    ('synth-train-3-0', 'Answer: 504', '504')
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from prm.config import ConfigError
from prm.records import StepRecord
from prm.synth.config import SynthConfig
from prm.synth.corrupt import equation, error_labels, gold_steps, inject
from prm.synth.phrasings import families
from prm.synth.words import render_plan, write_solution

_HASH_PERSON = b"prm-synth-split"  # blake2b personalisation: these digests mean nothing outside this rule
_TWO64 = 1 << 64


def skeleton_key(start: int, ops: tuple[str, ...] | list[str], operands: tuple[int, ...] | list[int]) -> str:
    """Canonical text of a skeleton: `skeleton_key(17, "+*", (4, 3)) == "17+4*3"`."""
    return str(start) + "".join(f"{op}{k}" for op, k in zip(ops, operands, strict=True))


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("ascii"), digest_size=16, person=_HASH_PERSON).digest()


def split_of(start: int, ops, operands, test_fraction: float) -> str:
    """The split a skeleton belongs to ('train' or 'test'); see the module docstring."""
    u = int.from_bytes(_digest(skeleton_key(start, ops, operands))[:8], "big")
    return "test" if u < int(test_fraction * _TWO64) else "train"


def draw_skeleton(rng: random.Random, steps: int, lo: int, hi: int, cap: int, divisors: dict[int, list[int]]):
    """Draw a start value in [lo, hi] and `steps` operations whose numbers lie in [lo, hi] (factors and divisors
    at least 2) and whose results stay in [1, cap]. Returns (chain, ops, operands), len(chain) == steps + 1.

    `divisors` caches, per value, its divisors usable here. SynthConfig guarantees cap >= 2 * hi, so an addition
    or a subtraction is always possible and the loop never dead-ends.
    """
    lo2 = lo if lo > 2 else 2
    v = rng.randint(lo, hi)
    chain, ops, operands = [v], [], []
    for _ in range(steps):
        choices = []
        if v + lo <= cap:
            choices.append("+")
        if v - 1 >= lo:
            choices.append("-")
        if v * lo2 <= cap and lo2 <= hi:
            choices.append("*")
        divs = divisors.get(v)
        if divs is None:
            # Divisors below v only, so a result is at least 2 and "keeps one pile" never leaves 1 thing.
            divs = divisors[v] = [d for d in range(lo2, min(hi, v - 1) + 1) if v % d == 0]
        if divs:
            choices.append("/")
        op = rng.choice(choices)
        if op == "+":
            k = rng.randint(lo, min(hi, cap - v))
            v += k
        elif op == "-":
            k = rng.randint(lo, min(hi, v - 1))
            v -= k
        elif op == "*":
            k = rng.randint(lo2, min(hi, cap // v))
            v *= k
        else:
            k = rng.choice(divs)
            v //= k
        chain.append(v)
        ops.append(op)
        operands.append(k)
    return chain, ops, operands


def _draw_wrongs(rng: random.Random, cfg: SynthConfig, chain, ops, operands, right, fams) -> list:
    """The wrong solutions of one problem, [(problem text, plan, Injected)], or [] when they can't all be drawn:
    one (or with pairs, `wrong_per_problem` distinct ones), each with the right solution's words, or with
    `pair_phrasing: mixed` with words of its own from another family."""
    want = cfg.wrong_per_problem if cfg.pairs else 1
    out: list = []
    for _ in range(want):
        text, plan = right
        if cfg.pairs and cfg.pair_phrasing == "mixed":
            others = tuple(f for f in fams if f.name != plan[0]["family"]) or fams
            text, plan = render_plan(rng, chain, ops, operands, others, cfg.styles)
        k_first = [s[1] for s in plan[1]]
        avoid = () if plan[0]["distractor"] is None else (plan[0]["distractor"],)
        # A few tries for each further wrong solution to differ from the ones drawn before it.
        for _ in range(8):
            wrong = inject(
                rng, cfg.error_kinds, chain, ops, operands, k_first, cfg.min_value, cfg.max_value, cfg.max_result, avoid
            )
            if wrong is None or all(w.written != wrong.written for _, _, w in out):
                break
        if wrong is None or any(w.written == wrong.written for _, _, w in out):
            return []
        out.append((text, plan, wrong))
    return out


def generate(cfg: SynthConfig) -> Iterator[StepRecord]:
    """Yield `cfg.n` distinct problems of `cfg.split` as step records: gold steps (all labels true), or with
    `cfg.corrupt` / `cfg.pairs` some solutions carrying one injected error (see `prm.synth.corrupt`).

    Record i tries candidates j = 0, 1, ... drawn from `random.Random(f"prm-synth/{seed}/{split}/{i}/{j}")`:
    deterministic across runs and Python versions (string seeds are hashed with SHA-512, not the salted `hash()`),
    and independent of `n`, so a smaller file is a prefix of a larger one. Candidates of the other split and
    repeated skeletons are skipped. The step count is drawn once per record, not per candidate: duplicates are
    commoner among short problems, and redrawing it would skew the difficulty histogram towards long ones. Only a
    step count whose problems run out (`limit` misses in a row) is dropped from the draw.

    Corruption draws from the same generator after the words, so the problems (and the gold records) are the same
    whatever `corrupt` is, except that a problem into which no error of `error_kinds` fits is skipped when it was
    to be corrupted. With `pairs`, each problem is written twice, ids `.../ok` then `.../err` (2 * n records), or
    with `wrong_per_problem` m > 1, m + 1 times (`.../err2`, ...: distinct wrong solutions, each drawn like the first).
    Raises ConfigError when the config's problem space cannot supply `n` distinct problems.
    """
    want_test = cfg.split == "test"
    threshold = int(cfg.test_fraction * _TWO64)
    # Give up after this many candidates for one record were skipped: far beyond chance for a live space (the miss
    # probability per candidate is about 1 - share, so share * limit >= 2000 expected hits were missed).
    share = cfg.test_fraction if want_test else 1.0 - cfg.test_fraction
    limit = int(2000 / share) + 1000
    lo, hi, cap = cfg.min_value, cfg.max_value, cfg.max_result
    prefix = f"prm-synth/{cfg.seed}/{cfg.split}/"
    id_prefix = f"synth-{cfg.split}-{cfg.seed}-"
    rng = random.Random()
    divisors: dict[int, list[int]] = {}
    seen: set[bytes] = set()
    labels_of = {k: [True] * (k + 1) for k in range(cfg.min_steps, cfg.max_steps + 1)}
    values_of = {k: [1.0] * (k + 1) for k in range(cfg.min_steps, cfg.max_steps + 1)}
    counts = list(range(cfg.min_steps, cfg.max_steps + 1))  # step counts not yet exhausted
    corrupting = cfg.corrupt > 0 or cfg.pairs
    fams = families(cfg.phrasing)
    index = tries = misses = steps = 0
    while index < cfg.n:
        rng.seed(f"{prefix}{index}/{tries}")
        if tries == 0 or steps not in counts:
            steps = rng.choice(counts)
        tries += 1
        chain, ops, operands = draw_skeleton(rng, steps, lo, hi, cap, divisors)
        digest = _digest(skeleton_key(chain[0], ops, operands))
        wrongs: list = []
        fits = (int.from_bytes(digest[:8], "big") < threshold) is want_test and digest not in seen
        if fits:
            problem, plan = render_plan(rng, chain, ops, operands, fams, cfg.styles)
            # Drawn for every problem, so a problem gets the same error whichever `corrupt` selects it.
            if corrupting and (rng.random() < cfg.corrupt or cfg.pairs):
                wrongs = _draw_wrongs(rng, cfg, chain, ops, operands, (problem, plan), fams)
                fits = bool(wrongs)
        if not fits:
            misses += 1
            if misses > limit:
                counts.remove(steps)
                misses = 0
                if not counts:
                    kinds = f", or error_kinds ({', '.join(cfg.error_kinds)})" if corrupting else ""
                    raise ConfigError(
                        f"'prm synth': found only {index} distinct {cfg.split} problems; lower n or widen "
                        f"min_value..max_value, min_steps..max_steps or max_result{kinds}"
                    )
            continue
        tries = misses = 0
        seen.add(digest)
        meta = {
            "chain": chain,
            "ops": ops,
            "operands": operands,
            "difficulty": steps,
            "magnitude": max(chain),
            "split": cfg.split,
            "seed": cfg.seed,
            "phrasing": plan[0]["family"],
        }
        rid = id_prefix + str(index)
        answer = str(chain[-1])
        gold = gold_steps(chain, ops, operands)
        if not wrongs or cfg.pairs:
            yield StepRecord(
                id=rid + "/ok" if cfg.pairs else rid,
                problem=problem,
                steps=write_solution(plan, gold, chain[-1], cfg.arithmetic),
                labels=list(labels_of[steps]),
                values=list(values_of[steps]),
                answer=answer,
                source="synth",
                meta=meta,
            )
        for j, (text, words, wrong) in enumerate(wrongs):
            e, line = wrong.step, wrong.line
            labels, values = error_labels(len(wrong.written) + 1, line, cfg.after_error)
            shown = {"*": words[0]["times"], "/": words[0]["divide"]}  # as the text writes the operators
            sentences = [words[1][i] for i in wrong.sentences]
            # The wrong line's equation as written, or the answer's value where the answer line is the error.
            written = (
                equation(wrong.written[line], sentences[line][1], symbols=shown)
                if line < len(wrong.written)
                else str(wrong.final)
            )
            error = {
                "kind": wrong.kind,
                "step": line,
                "gold": equation(gold[e], words[1][e][1], symbols=shown),
                "written": written,
            }
            yield StepRecord(
                id=(rid + "/err" + (str(j + 1) if j else "")) if cfg.pairs else rid,
                problem=text,
                steps=write_solution((words[0], sentences), wrong.written, wrong.final, cfg.arithmetic),
                labels=labels,
                values=values,
                answer=answer,
                source="synth",
                # The chain the solution carries, beside the gold one: [start, result of step 0, ...].
                meta=dict(
                    meta,
                    phrasing=words[0]["family"],
                    error=error,
                    written_chain=[chain[0]] + [s[3] for s in wrong.written],
                ),
            )
        index += 1

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
    >>> rec.id, rec.steps[-1] == f"The answer is {rec.answer}."
    ('synth-train-3-0', True)
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from prm.config import ConfigError
from prm.records import StepRecord
from prm.synth import templates as T
from prm.synth.config import SynthConfig

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


# Prebuilt once: per person the fixed placeholder values and the subject variants, per thing its nouns and pools.
_PEOPLE = tuple(
    (
        {"n": n, "p": p, "P": p.capitalize(), "pp": pp, "self": obj + "self"},
        tuple(c.format(p=p, P=p.capitalize()) if c else n for c in T.CONNECTORS),
    )
    for n, p, obj, pp in T.PEOPLE
)
_NAMES = tuple(p[0] for p in T.PEOPLE)
_SUB = (T.SUB, T.SUB + T.SUB_EDIBLE)
_MUL = {k: T.MUL + extra for k, extra in T.MUL_BY.items()}
_DIV = {k: T.DIV + extra for k, extra in T.DIV_BY.items()}
_DIV_LAST = {k: T.DIV + extra + T.DIV_LAST for k, extra in T.DIV_BY.items()}
_DIV_LAST_DEFAULT = T.DIV + T.DIV_LAST


def render(rng: random.Random, chain: list[int], ops: list[str], operands: list[int]) -> tuple[str, list[str]]:
    """Words for a skeleton: (problem text, gold solution lines ending with "The answer is N.").

    >>> text, solution = render(random.Random(0), [17, 13], ["-"], [4])
    >>> text
    'Tariq keeps 17 beads in a bag. He gives 4 beads to Theo. In the end, how many beads does Tariq have?'
    >>> solution
    ['Tariq gives 4 beads to Theo, so he has 17 - 4 = 13 beads left.', 'The answer is 13.']
    """
    pi = rng.randrange(len(_PEOPLE))
    base, subjects = _PEOPLE[pi]
    one, many, box, boxes, edible = rng.choice(T.THINGS)
    d = dict(base, o=_NAMES[(pi + rng.randrange(1, len(_NAMES))) % len(_NAMES)], it=many, box=box, boxes=boxes)
    text: list[str] = []
    solution: list[str] = []
    question = None
    last = len(ops) - 1
    start = 0
    a = chain[0]
    d["ita"] = one if a == 1 else many
    if ops[0] == "*" and rng.random() < 0.5:
        sentence, said = rng.choice(T.MUL_INTRO)
        c = chain[1]
        d.update(a=a, k=operands[0], c=c, itc=one if c == 1 else many)
        text.append(sentence.format_map(d))
        solution.append(said.format_map(d))
        start = 1
    else:
        d["a"] = a
        text.append(rng.choice(T.INTROS).format_map(d))
    for i in range(start, len(ops)):
        op, k, a, c = ops[i], operands[i], chain[i], chain[i + 1]
        if op == "+":
            pool = T.ADD
        elif op == "-":
            pool = _SUB[edible]
        elif op == "*":
            pool = _MUL.get(k, T.MUL)
        elif i == last:
            pool = _DIV_LAST.get(k, _DIV_LAST_DEFAULT)
        else:
            pool = _DIV.get(k, T.DIV)
        tpl = rng.choice(pool)
        d.update(
            S=rng.choice(subjects),
            a=a,
            k=k,
            c=c,
            ita=one if a == 1 else many,
            itk=one if k == 1 else many,
            itc=one if c == 1 else many,
            boxc=box if c == 1 else boxes,
        )
        text.append(tpl[0].format_map(d))
        solution.append(tpl[1].format_map(d))
        if len(tpl) == 3:
            question = tpl[2]
    text.append((question or rng.choice(T.QUESTIONS)).format_map(d))
    solution.append(T.ANSWER.format(c=chain[-1]))
    return " ".join(text), solution


def generate(cfg: SynthConfig) -> Iterator[StepRecord]:
    """Yield `cfg.n` distinct problems of `cfg.split` as step records with gold steps (all labels true).

    Record i tries candidates j = 0, 1, ... drawn from `random.Random(f"prm-synth/{seed}/{split}/{i}/{j}")`:
    deterministic across runs and Python versions (string seeds are hashed with SHA-512, not the salted `hash()`),
    and independent of `n`, so a smaller file is a prefix of a larger one. Candidates of the other split and
    repeated skeletons are skipped. The step count is drawn once per record, not per candidate: duplicates are
    commoner among short problems, and redrawing it would skew the difficulty histogram towards long ones. Only a
    step count whose problems run out (`limit` misses in a row) is dropped from the draw.
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
    index = tries = misses = steps = 0
    while index < cfg.n:
        rng.seed(f"{prefix}{index}/{tries}")
        if tries == 0 or steps not in counts:
            steps = rng.choice(counts)
        tries += 1
        chain, ops, operands = draw_skeleton(rng, steps, lo, hi, cap, divisors)
        digest = _digest(skeleton_key(chain[0], ops, operands))
        if (int.from_bytes(digest[:8], "big") < threshold) is not want_test or digest in seen:
            misses += 1
            if misses > limit:
                counts.remove(steps)
                misses = 0
                if not counts:
                    raise ConfigError(
                        f"'prm synth': found only {index} distinct {cfg.split} problems; lower n or widen "
                        "min_value..max_value, min_steps..max_steps or max_result"
                    )
            continue
        tries = misses = 0
        seen.add(digest)
        problem, solution = render(rng, chain, ops, operands)
        yield StepRecord(
            id=id_prefix + str(index),
            problem=problem,
            steps=solution,
            labels=list(labels_of[steps]),
            values=list(values_of[steps]),
            answer=str(chain[-1]),
            source="synth",
            meta={
                "chain": chain,
                "ops": ops,
                "operands": operands,
                "difficulty": steps,
                "magnitude": max(chain),
                "split": cfg.split,
                "seed": cfg.seed,
            },
        )
        index += 1

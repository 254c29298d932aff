"""`prm synth`: determinism, split disjointness, arithmetic of the gold chains, config checks, the command, and the
injected errors of --corrupt / --pairs (each kind exactly at its labeled step, propagation, pairs, fractions)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from prm.checker import check_step
from prm.config import ConfigError, config_path_for, load_config
from prm.label.gold import label_gold
from prm.records import read_records, validate
from prm.synth import ERROR_KINDS, SynthConfig, draw_skeleton, generate, inject, render, run, skeleton_key, split_of
from prm.synth.corrupt import SHAPE_KINDS, apply, error_labels
from prm.synth.phrasings import FAMILIES, families
from prm.synth.words import spell

EQUATION = re.compile(r"(\d+) ([-+*/×x÷]) (\d+) = (\d+)")
ASCII = {"×": "*", "x": "*", "÷": "/"}
APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def gen(**kw) -> list:
    return list(generate(SynthConfig(**kw)))


def check_record(rec, cfg: SynthConfig) -> None:
    """Every claim a record makes, checked from its text: equations, chain, answer, labels, meta."""
    validate(rec.to_dict())
    meta = rec.meta
    chain, ops, operands, k = meta["chain"], meta["ops"], meta["operands"], meta["difficulty"]
    assert cfg.min_steps <= k <= cfg.max_steps
    assert len(chain) == k + 1 and len(ops) == k and len(operands) == k and len(rec.steps) == k + 1
    assert all(type(v) is int and 1 <= v <= cfg.max_result for v in chain)
    assert cfg.min_value <= chain[0] <= cfg.max_value
    assert all(cfg.min_value <= n <= cfg.max_value for n in operands)
    for i, line in enumerate(rec.steps[:-1]):
        found = EQUATION.findall(line)
        assert len(found) == 1, line
        a, op, b, c = found[0]
        a, op, b, c = int(a), ASCII.get(op, op), int(b), int(c)
        assert op == ops[i], line
        if op == "/":
            assert a % b == 0, f"inexact division in {line!r}"
            assert a // b == c, line
        else:
            assert APPLY[op](a, b) == c, line
        assert c == chain[i + 1], line
        # + and * may be written in either order ("4 packs of 6": 4 * 6); - and / never.
        if op in "+*":
            assert sorted((a, b)) == sorted((chain[i], operands[i])), line
        else:
            assert (a, b) == (chain[i], operands[i]), line
    assert rec.steps[-1] == FAMILIES[meta["phrasing"]].answer.format(c=chain[-1])
    assert FAMILIES[meta["phrasing"]].split == "train"  # the default phrasing
    assert rec.answer == str(chain[-1])
    assert rec.labels == [True] * (k + 1) and rec.values == [1.0] * (k + 1)
    assert rec.source == "synth" and meta["split"] == cfg.split and meta["seed"] == cfg.seed
    words = re.findall(r"\w+", rec.problem.lower())
    assert rec.problem.endswith(("?", ".")) and (str(chain[0]) in words or str(spell(chain[0], True)) in words)
    assert split_of(chain[0], ops, operands, cfg.test_fraction) == cfg.split


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_record_is_arithmetically_right(split):
    cfg = SynthConfig(n=2000, seed=5, split=split, min_steps=1, max_steps=8)
    records = list(generate(cfg))
    assert len(records) == 2000
    for rec in records:
        check_record(rec, cfg)
    used = {op for r in records for op in r.meta["ops"]}
    assert used == {"+", "-", "*", "/"}


def test_ids_and_uniqueness():
    records = gen(n=3000, seed=7)
    assert [r.id for r in records] == [f"synth-train-7-{i}" for i in range(3000)]
    keys = {skeleton_key(r.meta["chain"][0], r.meta["ops"], r.meta["operands"]) for r in records}
    assert len(keys) == 3000
    assert len({r.problem for r in records}) == 3000


def test_deterministic_and_seed_dependent():
    a = [r.to_dict() for r in gen(n=300, seed=1)]
    assert a == [r.to_dict() for r in gen(n=300, seed=1)]
    b = [r.to_dict() for r in gen(n=300, seed=2)]
    assert [r["problem"] for r in a] != [r["problem"] for r in b]
    # A smaller file is a prefix of a larger one: the candidates do not depend on n.
    assert [r.to_dict() for r in gen(n=100, seed=1)] == a[:100]


def test_run_is_byte_identical(tmp_path, capsys):
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        run(SynthConfig(n=200, seed=3, output=str(tmp_path / name)))
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert "wrote 200 train problems" in capsys.readouterr().out


def test_train_and_test_never_share_a_problem():
    train, test = set(), set()
    train_keys, test_keys = set(), set()
    for seed in range(4):
        for n, split, texts, keys in ((800, "train", train, train_keys), (300, "test", test, test_keys)):
            for r in gen(n=n, seed=seed, split=split, min_steps=1, max_steps=3):
                assert r.meta["split"] == split
                texts.add(r.problem)
                keys.add(skeleton_key(r.meta["chain"][0], r.meta["ops"], r.meta["operands"]))
    assert train and test
    assert not train & test
    assert not train_keys & test_keys


def test_test_share_matches_test_fraction():
    rng = random.Random(0)
    hits = 0
    for _ in range(4000):
        chain, ops, operands = draw_skeleton(rng, 3, 2, 50, 1000, {})
        hits += split_of(chain[0], ops, operands, 0.3) == "test"
    assert 0.26 < hits / 4000 < 0.34


@pytest.mark.parametrize("steps", [1, 8])
def test_extreme_step_counts(steps):
    cfg = SynthConfig(n=300, seed=0, min_steps=steps, max_steps=steps)
    for rec in generate(cfg):
        assert rec.meta["difficulty"] == steps and len(rec.steps) == steps + 1
        check_record(rec, cfg)


def test_divisions_are_exact_and_keep_values_above_one():
    divisors: dict[int, list[int]] = {}
    rng = random.Random(1)
    seen = 0
    for _ in range(3000):
        chain, ops, operands = draw_skeleton(rng, 6, 2, 50, 1000, divisors)
        for i, op in enumerate(ops):
            if op == "/":
                seen += 1
                assert chain[i] % operands[i] == 0 and chain[i + 1] == chain[i] // operands[i] >= 2
    assert seen > 500


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_template_renders_with_one_equation(family):
    fam = FAMILIES[family]
    d = dict(S="She", n="Mia", p="she", P="She", pp="her", self="herself", o="Leo", it="marbles", box="jar", x=7)
    d.update(boxes="jars", a=12, k=3, c=4, ita="marbles", itk="marbles", itc="marbles", boxc="jars")
    for pool in fam.pools():
        for tpl in pool:
            tpl[0].format_map(d), tpl[-1].format_map(d)
            assert len(EQUATION.findall(tpl[1].format_map(d))) == 1, tpl[1]
    for text in fam.intros + fam.questions + fam.distractors + fam.connectors:
        text.format_map(d | {"P": "She"})
    for many in (fam.add, fam.sub, fam.mul, fam.div, fam.intros, fam.questions):
        assert len(many) >= 3  # several phrasings per operation, so the text isn't monotone


def test_three_times_the_phrasings_of_one_family_and_none_shared_with_the_held_out_one():
    story = FAMILIES["story"]
    for pool in ("add", "sub", "mul", "div", "intros", "questions"):
        assert sum(len(getattr(f, pool)) for f in FAMILIES.values()) >= 3 * len(getattr(story, pool)), pool

    def sentences(fams):
        out = set()
        for f in fams:
            out |= {s for pool in f.pools() for tpl in pool for s in tpl}
            out |= {*f.intros, *f.questions, *f.distractors, f.answer} | set(f.connectors) - {"", "{P}"}
        return out

    held, train = families("heldout"), families("train")
    assert [f.name for f in held] == ["report"] and len(train) == 3
    assert not sentences(held) & sentences(train)


def test_phrasing_split_and_styles():
    held = gen(n=300, seed=2, phrasing="heldout", pairs=True, corrupt=0.5)
    train = gen(n=300, seed=2)
    assert {r.meta["phrasing"] for r in held} == {"report"}
    assert {r.meta["phrasing"] for r in train} == {"story", "chat", "ledger"}
    # The same skeletons whatever the phrasing: only the words differ.
    assert [r.meta["chain"] for r in held[::2]] == [r.meta["chain"] for r in train]
    text = " ".join(r.problem + " " + " ".join(r.steps) for r in train)
    for style in (" × ", " x ", " * ", " ÷ ", " / ", " three ", "The answer is", "Answer: "):
        assert style in text, style
    # The question comes first in some problems, and a distractor adds a sentence to others.
    first = [re.split(r"(?<=[.?]) ", r.problem)[0] for r in train]
    assert 20 < sum(f.endswith("?") for f in first) < 100
    assert sum(len(re.findall(r"\d+", r.problem)) > len(r.meta["ops"]) + 1 for r in train) > 30


def test_unknown_phrasing_is_a_config_error():
    with pytest.raises(ValueError, match="phrasing: unknown 'poetry'"):
        SynthConfig(phrasing="poetry")


def test_render_is_a_pure_function_of_rng():
    args = ([12, 4, 9], ["/", "+"], [3, 5])
    assert render(random.Random(4), *args) == render(random.Random(4), *args)


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"min_steps": 3, "max_steps": 2}, "min_steps"),
        ({"min_steps": 0}, "min_steps"),
        ({"max_steps": 9}, "max_steps"),
        ({"min_value": 0}, "min_value"),
        ({"min_value": 60, "max_value": 50}, "min_value"),
        ({"max_result": 99}, "max_result"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"n": -1}, "n must"),
        ({"output": ""}, "output"),
    ],
)
def test_config_validation(kw, key):
    with pytest.raises(ValueError, match=key):
        SynthConfig(**kw)


def test_config_loader_reports_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="min_steps"):
        load_config(SynthConfig, overrides={"min_steps": "5", "max_steps": "3"})
    with pytest.raises(ConfigError, match="split"):
        load_config(SynthConfig, overrides={"split": "dev"})


def test_shipped_yaml_gives_the_defaults():
    path = Path(__file__).resolve().parents[1] / "configs" / "synth.yaml"
    assert path.read_text().startswith("# prm synth --config configs/synth.yaml")
    assert load_config(SynthConfig, path) == SynthConfig()


def test_exhausted_space_is_an_error():
    # 2 +2 and 2 *2 are the only one-step problems here: 5 distinct ones cannot exist.
    cfg = SynthConfig(n=5, min_steps=1, max_steps=1, min_value=2, max_value=2, max_result=4)
    with pytest.raises(ConfigError, match="distinct"):
        list(generate(cfg))


def test_parquet_output(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    out = tmp_path / "p.parquet"
    run(SynthConfig(n=20, output=str(out)))
    assert [r.to_dict() for r in read_records(out)] == [r.to_dict() for r in gen(n=20)]


def test_cli_writes_records_and_config(tmp_path, capsys):
    import prm.cli

    try:
        prm.cli.build_parser()
    except (ImportError, AttributeError) as e:  # another command's module is not written yet
        if "synth" in str(e):
            raise
        pytest.skip(f"prm.cli cannot build its parser yet: {e}")
    out = tmp_path / "p.jsonl"
    assert prm.cli.main(["synth", "--n", "50", "--output", str(out), "--min-steps", "1"]) == 0
    records = read_records(out)
    assert len(records) == 50
    cfg = SynthConfig(n=50, output=str(out), min_steps=1)
    for rec in records:
        check_record(rec, cfg)
    assert load_config(SynthConfig, config_path_for(out)) == cfg


def all_skeletons(lo: int, hi: int, cap: int, max_steps: int) -> set[str]:
    """Every skeleton the rules allow, by brute force: values in [1, cap], numbers in [lo, hi] (factors and divisors
    from 2), exact divisions by a divisor below the value."""
    found: set[str] = set()

    def walk(v: int, key: str, depth: int) -> None:
        if depth:
            found.add(key)
        if depth == max_steps:
            return
        for k in range(lo, hi + 1):
            if v + k <= cap:
                walk(v + k, f"{key}+{k}", depth + 1)
            if v - k >= 1:
                walk(v - k, f"{key}-{k}", depth + 1)
            if k >= 2 and v * k <= cap:
                walk(v * k, f"{key}*{k}", depth + 1)
            if k >= 2 and k < v and v % k == 0:
                walk(v // k, f"{key}/{k}", depth + 1)

    for start in range(lo, hi + 1):
        walk(start, str(start), 0)
    return found


def key_split(key: str, test_fraction: float) -> str:
    parts = re.findall(r"([-+*/])(\d+)", key)
    return split_of(
        int(re.match(r"\d+", key).group()), [p[0] for p in parts], [int(p[1]) for p in parts], test_fraction
    )


@pytest.mark.parametrize("split", ["train", "test"])
def test_small_space_is_filled_exactly_then_exhausted(split):
    kw = dict(min_value=2, max_value=4, max_result=8, min_steps=1, max_steps=2, split=split, test_fraction=0.3)
    space = {k for k in all_skeletons(2, 4, 8, 2) if key_split(k, 0.3) == split}
    records = gen(n=len(space), **kw)
    keys = {skeleton_key(r.meta["chain"][0], r.meta["ops"], r.meta["operands"]) for r in records}
    assert keys == space
    with pytest.raises(ConfigError, match="distinct"):
        gen(n=len(space) + 1, **kw)


# ---------------------------------------------------------------------------------------------------------------------
# Injected errors (--corrupt, --pairs)


def parse(line: str) -> tuple[int, str, int, int]:
    found = EQUATION.findall(line)
    assert len(found) == 1, line
    x, op, y, c = found[0]
    return int(x), ASCII.get(op, op), int(y), int(c)


def split_operands(op: str, x: int, y: int, value: int, operand: int) -> tuple[int, int]:
    """(running value, operand) of a written equation: a sentence may write `k * a` or `k + a` ("4 packs of 6");
    the order that matches more of the gold step's two numbers (a wrong step changes one of them)."""
    if op in "+*" and (y == value) + (x == operand) > (x == value) + (y == operand):
        return y, x
    return x, y


def check_corrupted(rec, cfg: SynthConfig) -> tuple[int, list[tuple[int, str, int, int]]]:
    """What every corrupted record must satisfy whatever its kind; returns (error step, parsed equations)."""
    validate(rec.to_dict())
    meta = rec.meta
    chain, ops, operands, k = meta["chain"], meta["ops"], meta["operands"], meta["difficulty"]
    err = meta["error"]
    e = err["step"]
    assert err["kind"] in cfg.error_kinds and 0 <= e < k
    assert rec.labels == error_labels(k + 1, e, cfg.after_error)[0]
    assert rec.values == [1.0] * e + [0.0] * (k + 1 - e)
    eqs = [parse(line) for line in rec.steps[:-1]]
    written = meta["written_chain"]
    assert written[0] == chain[0] and [q[3] for q in eqs] == written[1:]
    # Before the error the solution is the gold one; at the error its result leaves the gold chain for good.
    assert written[: e + 1] == chain[: e + 1]
    assert all(w != g for w, g in zip(written[e + 1 :], chain[e + 1 :], strict=True))
    assert rec.steps[-1] == FAMILIES[meta["phrasing"]].answer.format(c=written[-1])
    assert rec.answer == str(chain[-1]) != str(written[-1])
    assert all(1 <= v <= cfg.max_result for v in written)
    # Propagation: every later step starts from the previous (wrong) result and computes right, with the gold
    # operation and operand.
    for j in range(e + 1, k):
        x, op, y, c = eqs[j]
        x, y = split_operands(op, x, y, written[j], operands[j])
        assert (x, op, y) == (written[j], ops[j], operands[j]), rec.steps[j]
        assert apply(op, x, y) == c and check_step(rec.steps[j]) is True
    for i in range(e):
        assert check_step(rec.steps[i]) is True
    assert err["written"] in rec.steps[e]
    assert split_of(chain[0], ops, operands, cfg.test_fraction) == cfg.split
    return e, eqs


@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_each_kind_errs_exactly_at_the_labeled_step(kind):
    cfg = SynthConfig(n=400, seed=11, corrupt=1.0, error_kinds=(kind,), min_steps=1, max_steps=6)
    records = list(generate(cfg))
    assert len(records) == 400
    for rec in records:
        e, eqs = check_corrupted(rec, cfg)
        chain, ops, operands = rec.meta["chain"], rec.meta["ops"], rec.meta["operands"]
        x, op, y, c = eqs[e]
        gx, _, gy, _ = parse(rec.meta["error"]["gold"])  # the gold step in the sentence's order
        k_first = (gx, gy) == (operands[e], chain[e]) != (chain[e], operands[e])
        a, k = (y, x) if k_first else (x, y)
        if chain[e] == operands[e] and op in "+*" and x != y:
            # `a + a`: the order can't tell. A stale value keeps the operand, a wrong operand keeps the value.
            shared, other = (x, y) if x == chain[e] else (y, x)
            a, k = (other, shared) if kind == "stale_value" else (shared, other)
        gold = chain[e + 1]
        if kind in ("off_by_k", "digit_swap"):
            # A wrong equation at the error step, and only there.
            assert check_step(rec.steps[e]) is False, rec.steps[e]
            assert (a, op, k) == (chain[e], ops[e], operands[e]) and c != gold
            if kind == "off_by_k":
                assert 1 <= abs(c - gold) <= 10
            else:
                s, t = str(gold), str(c)
                diff = [p for p in range(len(s)) if s[p] != t[p]] if len(s) == len(t) else None
                assert diff is not None and len(diff) == 2 and diff[1] == diff[0] + 1
                assert s[diff[0]] == t[diff[1]] and s[diff[1]] == t[diff[0]]
            continue
        # The other kinds compute right: every equation is true, only the route leaves the gold chain.
        assert check_step(rec.steps[e]) is True, rec.steps[e]
        assert apply(op, x, y) == c != gold
        if kind == "wrong_operation":
            assert op != ops[e] and sorted((x, y)) == sorted((chain[e], operands[e]))
        elif kind == "wrong_operand":
            in_problem = {int(t) for t in re.findall(r"\d+", rec.problem)}
            assert op == ops[e] and a == chain[e] and k != operands[e]
            assert k not in in_problem and k not in chain[: e + 1]
        else:
            assert (op, k) == (ops[e], operands[e]) and a in chain[:e] and a != chain[e]
            assert e >= 1


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_shape_kinds_drop_or_repeat_one_operation_and_err_where_gold_sees_it(kind):
    assert kind not in SynthConfig().error_kinds  # opt-in: the README's benchmarks were drawn without them
    cfg = SynthConfig(n=300, seed=12, corrupt=1.0, error_kinds=(kind,), min_steps=1, max_steps=5, min_value=1)
    records = list(generate(cfg))
    assert len(records) == 300
    early = 0
    for rec in records:
        validate(rec.to_dict())
        chain, ops, operands, k = (rec.meta[f] for f in ("chain", "ops", "operands", "difficulty"))
        err, written = rec.meta["error"], rec.meta["written_chain"]
        line = err["step"]
        assert err["kind"] == kind
        assert len(rec.steps) == (k if kind == "skipped_step" else k + 2)
        assert rec.labels == error_labels(len(rec.steps), line, "null")[0]
        # The exact gold labeler, which follows the values and knows nothing of the injection, finds the same line.
        verdicts = label_gold(rec).labels
        assert verdicts.index(False) == line, (rec.steps, verdicts)
        # Every equation is true: only the route is wrong, so a calculator sees nothing.
        eqs = [parse(s) for s in rec.steps[:-1]]
        assert all(check_step(s) is True for s in rec.steps[:-1])
        assert [q[3] for q in eqs] == written[1:] and written[0] == chain[0]
        assert rec.steps[-1] == FAMILIES[rec.meta["phrasing"]].answer.format(c=written[-1])
        assert rec.answer == str(chain[-1]) != str(written[-1])
        assert written[: line + 1] == chain[: line + 1]
        if kind == "skipped_step":
            early += line == k - 1  # the last operation left out: the answer line is the error
            assert err["written"] in rec.steps[line]
        else:
            x, op, y, c = eqs[line]
            assert op == ops[line - 1] and operands[line - 1] in (x, y) and written[line] in (x, y)
    # Both forms of a skip occur: a middle line off the chain, and an early answer.
    assert (0 < early < len(records)) if kind == "skipped_step" else early == 0


def test_error_step_is_uniform_and_every_kind_occurs():
    records = gen(n=3000, seed=1, corrupt=1.0, min_steps=3, max_steps=3)
    steps = [r.meta["error"]["step"] for r in records]
    for i in range(3):
        assert 0.28 < steps.count(i) / len(steps) < 0.39
    kinds = {r.meta["error"]["kind"] for r in records}
    assert kinds == set(ERROR_KINDS)


def test_after_error_false():
    cfg = SynthConfig(n=200, seed=2, corrupt=1.0, after_error="false")
    for rec in generate(cfg):
        e, _ = check_corrupted(rec, cfg)
        assert rec.labels == [True] * e + [False] * (len(rec.steps) - e)


def test_fraction_corrupted():
    for frac in (0.0, 0.3, 1.0):
        records = gen(n=2000, seed=3, corrupt=frac)
        share = sum("error" in r.meta for r in records) / len(records)
        assert abs(share - frac) < 0.04, (frac, share)
        assert [r.id for r in records] == [f"synth-train-3-{i}" for i in range(2000)]
    cfg = SynthConfig(n=2000, seed=3, corrupt=0.3)
    for rec in generate(cfg):
        if "error" in rec.meta:
            check_corrupted(rec, cfg)
        else:
            check_record(rec, cfg)


def test_pairs_share_the_problem_and_differ_in_steps_and_labels():
    cfg = SynthConfig(n=300, seed=4, pairs=True, min_steps=1, max_steps=5)
    records = list(generate(cfg))
    assert len(records) == 600
    gold = gen(n=300, seed=4, min_steps=1, max_steps=5)
    for i, (ok, err) in enumerate(zip(records[::2], records[1::2], strict=True)):
        assert (ok.id, err.id) == (f"synth-train-4-{i}/ok", f"synth-train-4-{i}/err")
        # The right solution is the plain gold record; the wrong one shares its problem and words.
        assert ok.to_dict() | {"id": gold[i].id} == gold[i].to_dict()
        assert (err.problem, err.answer, err.source) == (ok.problem, ok.answer, ok.source)
        assert {k: v for k, v in err.meta.items() if k not in ("error", "written_chain")} == ok.meta
        e, _ = check_corrupted(err, cfg)
        assert len(err.steps) == len(ok.steps)
        assert err.steps[:e] == ok.steps[:e] and err.steps[e] != ok.steps[e]
        assert ok.labels != err.labels


def test_corruption_is_deterministic(tmp_path, capsys):
    kw = dict(n=300, seed=5, corrupt=0.5, min_steps=1, max_steps=8)
    a = [r.to_dict() for r in gen(**kw)]
    assert a == [r.to_dict() for r in gen(**kw)]
    assert [r.to_dict() for r in gen(**(kw | {"n": 100}))] == a[:100]
    # A problem gets the same error whichever fraction selects it.
    b = {r["id"]: r for r in (x.to_dict() for x in gen(**(kw | {"corrupt": 1.0})))}
    assert all(r == b[r["id"]] for r in a if "error" in r["meta"])
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        run(SynthConfig(n=200, seed=3, pairs=True, output=str(tmp_path / name)))
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert "wrote 400 train records" in capsys.readouterr().out
    assert load_config(SynthConfig, config_path_for(tmp_path / "a.jsonl")).pairs is True


def test_held_out_problems_stay_held_out_when_corrupted():
    keys = {}
    for split in ("train", "test"):
        records = gen(n=400, seed=6, split=split, pairs=True, min_steps=1, max_steps=2)
        keys[split] = {skeleton_key(r.meta["chain"][0], r.meta["ops"], r.meta["operands"]) for r in records}
        assert all(r.meta["split"] == split for r in records)
    assert not keys["train"] & keys["test"]


def test_a_kind_that_does_not_fit_skips_the_problem():
    # No older value exists in a one-step problem: stale values only fit the two-step ones.
    records = gen(n=100, seed=0, corrupt=1.0, error_kinds=("stale_value",), min_steps=1, max_steps=2)
    assert {r.meta["difficulty"] for r in records} == {2}
    with pytest.raises(ConfigError, match="error_kinds"):
        gen(n=5, corrupt=1.0, error_kinds=("stale_value",), min_steps=1, max_steps=1)


def test_inject_keeps_the_written_order_of_operands():
    # "4 packs of 6" is written `4 * 6`: a wrong operation computes on the operands as written (4 - 6 is no count).
    rng = random.Random(0)
    for _ in range(50):
        w = inject(rng, ("wrong_operation",), [6, 24], ["*"], [4], [True], 2, 50, 1000)
        a, op, k, c = w.written[0]
        assert (a, k) == (6, 4) and op != "*" and c == apply(op, 4, 6) and c != 24
    assert inject(rng, ("stale_value",), [6, 24], ["*"], [4], [False], 2, 50, 1000) is None


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"corrupt": -0.1}, "corrupt"),
        ({"corrupt": 1.5}, "corrupt"),
        ({"pairs": True, "corrupt": 0.3}, "pairs"),
        ({"error_kinds": ()}, "error_kinds"),
        ({"error_kinds": ("off_by_one",)}, "unknown kind"),
        ({"error_kinds": ("off_by_k", "off_by_k")}, "twice"),
    ],
)
def test_corrupt_config_validation(kw, key):
    with pytest.raises(ValueError, match=key):
        SynthConfig(**kw)


def test_corrupt_options_from_the_command_line():
    cfg = load_config(SynthConfig, overrides={"error_kinds": "off_by_k,digit_swap", "after_error": "false"})
    assert cfg.error_kinds == ("off_by_k", "digit_swap") and cfg.after_error == "false"
    with pytest.raises(ConfigError, match="after_error"):
        load_config(SynthConfig, overrides={"after_error": "true"})


@pytest.mark.parametrize("arithmetic", ["worked", "digits"])
def test_worked_solutions_are_chains_that_check_link_by_link(arithmetic):
    from prm.checker import find_equations, find_links
    from prm.label.gold import route

    records = gen(n=400, seed=6, min_steps=1, max_steps=6, arithmetic=arithmetic)
    chains = 0
    for rec in records:
        meta = rec.meta
        for i, step in enumerate(rec.steps[:-1]):
            assert check_step(step) is True, step
            (eq,) = find_equations(step)
            assert int(eq.claimed) == meta["chain"][i + 1]
            literals, ops = route(eq.route)  # the chain's first expression is the gold operation
            assert set(ops) == {meta["ops"][i]} and meta["operands"][i] in literals
            chains += bool(find_links(step))
    assert chains > 300  # most multi-digit steps are worked
    # A slip shows in the last link only; the other kinds keep every link true.
    for rec in gen(n=300, seed=7, corrupt=1.0, min_steps=1, max_steps=5, arithmetic=arithmetic):
        e, kind = rec.meta["error"]["step"], rec.meta["error"]["kind"]
        slip = kind in ("off_by_k", "digit_swap")
        assert check_step(rec.steps[e]) is (not slip), (kind, rec.steps[e])
        assert all(check_step(s) is True for s in rec.steps[:e] + rec.steps[e + 1 : -1])


def test_digits_links_are_one_digit_facts():
    """Every product in a `digits` chain is of two place-value parts (one nonzero digit each), every division's
    quotient is one, and the chain's values add up link by link."""
    import re

    from prm.synth.corrupt import digits_chain, place_parts

    assert place_parts(504) == [500, 4] and place_parts(7) == [7] and place_parts(1000) == [1000]
    for x in range(2, 120):
        for y in range(2, 60):
            for op, res in (("*", x * y), ("/", x // y if x % y == 0 else None), ("+", x + y), ("-", x - y)):
                if res is None or res < 0:
                    continue
                links = digits_chain(x, op, y)
                text = " = ".join([f"{x} {op} {y}", *links, str(res)])
                assert check_step(text) is True, text
                for a, o, b in re.findall(r"(\d+) ([*/]) (\d+)", " ".join(links)):
                    a, b = int(a), int(b)
                    if o == "/":
                        assert len(place_parts(a // b)) == 1, text
                    else:  # a part times a part, or a one-digit product times its power of ten
                        power_of_ten = str(b).strip("0") == "1"
                        assert power_of_ten or len(place_parts(a)) == len(place_parts(b)) == 1, text


def test_wrong_per_problem_writes_sets_of_one_right_and_m_distinct_wrong():
    cfg = SynthConfig(n=60, seed=4, pairs=True, corrupt=0.5, wrong_per_problem=3, min_steps=2, max_steps=4)
    recs = gen(**{k: getattr(cfg, k) for k in ("n", "seed", "pairs", "corrupt", "wrong_per_problem", "max_steps")})
    assert len(recs) == 240
    for i in range(0, 240, 4):
        group = recs[i : i + 4]
        assert [r.id.rsplit("/", 1)[1] for r in group] == ["ok", "err", "err2", "err3"]
        assert len({r.problem for r in group}) == 1 and all(group[0].labels)
        assert len({tuple(r.steps) for r in group}) == 4
        for r in group[1:]:
            check_corrupted(r, cfg)
    # The first wrong solution is the one a plain pairs file has.
    plain = gen(n=60, seed=4, pairs=True, corrupt=0.5)
    assert [r.steps for r in recs[1::4]] == [r.steps for r in plain[1::2]]
    with pytest.raises(ValueError, match="needs pairs"):
        SynthConfig(wrong_per_problem=3)


def test_mixed_pair_phrasing_writes_the_wrong_solution_in_another_family():
    recs = gen(n=80, seed=6, pairs=True, corrupt=0.5, pair_phrasing="mixed", wrong_per_problem=2)
    cfg = SynthConfig(n=80, seed=6, pairs=True, corrupt=0.5)
    for i in range(0, len(recs), 3):
        right, *wrong = recs[i : i + 3]
        assert all(right.labels) and right.meta["chain"] == wrong[0].meta["chain"] == wrong[1].meta["chain"]
        for w in wrong:
            assert w.meta["phrasing"] != right.meta["phrasing"] and w.problem != right.problem
            check_corrupted(w, cfg)
    same = gen(n=80, seed=6, pairs=True, corrupt=0.5)
    assert all(a.problem == b.problem for a, b in zip(same[::2], same[1::2], strict=True))


def test_story_without_styles_is_plain_and_styles_vary_it():
    plain = gen(n=200, seed=8, phrasing="story", styles=False, pairs=True, corrupt=0.5)
    text = " ".join(r.problem + " " + " ".join(r.steps) for r in plain)
    assert not any(s in text for s in (" × ", " x ", " ÷ ", "Answer:"))
    assert all(r.problem.endswith("?") and r.steps[-1].startswith("The answer is") for r in plain)
    styled = gen(n=200, seed=8, phrasing="story", pairs=True, corrupt=0.5)
    assert {r.meta["phrasing"] for r in styled} == {"story"} and any(" × " in " ".join(r.steps) for r in styled)

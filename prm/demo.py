"""`make demo`: the pipeline end to end on a small set, printing what each stage measured.

Stages so far: synth (train and held-out test problems) -> validate -> check every gold step with the safe checker
and every gold answer line with the answer extractor -> export the test problems to every format and read them back
-> generate: the embedded policy samples N solutions per held-out problem (small numbers, 2-3 steps: the regime
where it solves some) -> accuracy and pass@N. Later stages (label, train, score, best-of-N) join here as they land.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from prm.answers import answers_equal, extract_answer
from prm.checker import check_step
from prm.config import config, option, save_config
from prm.formats import FORMATS
from prm.generate import GenerateConfig
from prm.generate import run as generate_run
from prm.records import StepRecord, read_records
from prm.synth import SynthConfig
from prm.synth import run as synth_run
from prm.validate import stats


@config("demo")
class DemoConfig:
    out_dir: str = option("data/out/demo", "folder for every file the demo writes (git-ignored)")
    seed: int = option(0, "seed of the synthetic problems")
    train_n: int = option(2000, "synthetic training problems")
    test_n: int = option(200, "synthetic held-out problems (never shared with training)")
    min_steps: int = option(2, "fewest operations per problem")
    max_steps: int = option(4, "most operations per problem")
    model: str = option("smollm2-135m", "policy: a local folder, a hub id, or smollm2-135m (the embedded model)")
    policy_problems: int = option(16, "held-out problems the policy solves (2-3 steps, small numbers)")
    policy_max_value: int = option(12, "largest number in the policy's problems")
    policy_max_result: int = option(60, "largest intermediate value in the policy's problems")
    samples: int = option(8, "solutions sampled per problem (pass@N uses all of them)")
    max_new_tokens: int = option(256, "tokens per sampled solution at most")


def check_gold(records: list[StepRecord]) -> tuple[int, int, int]:
    """(equations checked true, steps with an equation, answer lines that match the gold answer)."""
    ok = decided = answers = 0
    for r in records:
        for step in r.steps:
            verdict = check_step(step)
            decided += verdict is not None
            ok += verdict is True
        answers += answers_equal(extract_answer(r.steps[-1]), r.answer)
    return ok, decided, answers


def run(cfg: DemoConfig) -> None:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    rows: list[tuple[str, str, float]] = []

    t0 = time.perf_counter()
    base = SynthConfig(seed=cfg.seed, min_steps=cfg.min_steps, max_steps=cfg.max_steps, n=cfg.train_n)
    synth_run(replace(base, split="train", output=str(out / "problems-train.jsonl")))
    synth_run(replace(base, split="test", n=cfg.test_n, output=str(out / "problems-test.jsonl")))
    rows.append(("synth", f"{cfg.train_n} train + {cfg.test_n} test problems", time.perf_counter() - t0))

    t0 = time.perf_counter()
    train = read_records(out / "problems-train.jsonl")
    test = read_records(out / "problems-test.jsonl")
    shared = {r.problem for r in train} & {r.problem for r in test}
    s = stats(train + test)
    rows.append(
        ("validate", f"{s.records} records, {s.steps} steps, {len(shared)} problems shared", time.perf_counter() - t0)
    )

    t0 = time.perf_counter()
    ok, decided, answers = check_gold(test)
    rows.append(
        (
            "check gold",
            f"{ok}/{decided} equations verified, {answers}/{len(test)} answers match",
            time.perf_counter() - t0,
        )
    )

    t0 = time.perf_counter()
    kept = []
    for name, fmt in FORMATS.items():
        path = out / f"problems-test.{name}.jsonl"
        written = fmt.write(test, path).written
        back = list(fmt.read(path))
        same = sum(a.steps == b.steps and a.problem == b.problem for a, b in zip(test, back, strict=False))
        kept.append(f"{name} {same}/{written}")
    rows.append(("convert", "round trips: " + ", ".join(kept), time.perf_counter() - t0))

    t0 = time.perf_counter()
    policy = out / "policy-problems.jsonl"
    synth_run(
        replace(
            base,
            split="test",
            n=cfg.policy_problems,
            min_steps=2,
            max_steps=3,
            max_value=cfg.policy_max_value,
            max_result=cfg.policy_max_result,
            output=str(policy),
        )
    )
    g = generate_run(
        GenerateConfig(
            input=str(policy),
            output=str(out / "traces.jsonl"),
            model=cfg.model,
            n=cfg.samples,
            max_new_tokens=cfg.max_new_tokens,
            seed=cfg.seed,
        )
    )
    rows.append(
        (
            "generate",
            f"{g['traces']} traces, accuracy {g['accuracy']:.1%}, pass@{cfg.samples} "
            f"{g[f'pass@{cfg.samples}']:.1%}, {g['tokens']} tokens",
            time.perf_counter() - t0,
        )
    )

    width = max(len(r[0]) for r in rows)
    print("\nprm demo: what each stage did")
    for stage, what, secs in rows:
        print(f"  {stage:<{width}}  {secs:6.2f} s  {what}")
    print(f"\nfiles in {out}/")

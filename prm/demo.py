"""`make demo`: the whole pipeline on the embedded model, printing what each stage measured.

synth (training and held-out problems) -> validate -> check every gold step and answer -> convert round trips ->
sft (fine-tune the embedded base model on synthetic gold solutions: the policy) -> generate (the policy samples a
pool of N solutions per held-out problem, and a few solutions of training problems to label) -> label (`binary`
first-error search with the policy's rollouts; agreement with the exact gold labels reported) -> train (a LoRA PRM on
synthetic right/wrong pairs plus the labelled policy traces; the outcome-only model on the same data) -> bon (PRM
best-of-N against majority vote, the calculator, the perfect step judge, the oracle and the baselines, with the plot
and the HTML report) -> search (optional: PRM beam search against best-of-N at equal tokens).

The embedded SmolLM2-135M solves 3-5% of these problems two-shot, and its right answers mostly come through wrong
steps: nothing for a step judge to find. A few CPU-minutes of fine-tuning on synthetic gold solutions give a policy
whose right answers mostly have right steps (177 of 185 in the demo's pool) and whose errors sit in one step a
judge can point at: wrong operations and operands, arithmetic slips. Held-out problems come from
the test split (disjoint from every training problem by construction, see prm.synth).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from prm.answers import answers_equal, extract_answer
from prm.checker import check_step
from prm.config import config, option, save_config
from prm.formats import FORMATS
from prm.records import StepRecord, read_records, write_records
from prm.synth import SynthConfig
from prm.synth import run as synth_run
from prm.train.config import FeatureSet
from prm.validate import stats


@config("demo")
class DemoConfig:
    out_dir: str = option("data/out/demo", "folder for every file the demo writes (git-ignored)")
    seed: int = option(0, "seed of the synthetic problems, of sampling and of training")
    train_n: int = option(2000, "synthetic problems of the format checks (validate, gold check, convert)")
    test_n: int = option(200, "held-out problems of the format checks")
    min_steps: int = option(2, "fewest operations per problem of the format checks")
    max_steps: int = option(4, "most operations per problem of the format checks")
    model: str = option(
        "smollm2-135m", "base model of the policy (and of the PRM): a local folder, a hub id, or smollm2-135m"
    )
    sft_problems: int = option(3000, "synthetic gold solutions the policy is fine-tuned on (policy range, train split)")
    sft_tokens: int = option(60_000, "fine-tuning budget of the policy in tokens (prompt and solution)")
    sft_lr: float = option(1e-3, "peak learning rate of the policy's LoRA fine-tuning")
    prm_backbone: Literal["policy", "base"] = option(
        "policy",
        "backbone of the PRM, the outcome model and the likelihood baseline: the fine-tuned policy or its base",
    )
    arithmetic: Literal["plain", "worked", "digits"] = option(
        "plain",
        "how the synthetic solutions the policy and the PRM learn from write equations (prm synth --arithmetic)",
    )
    # One family in plain style: the regime the demo's figures were measured in. The policy learns one voice in
    # 60,000 tokens; on the three training families with their styles its pass@1 fell from 36% to 16%.
    phrasing: str = option("story", "phrasing family of the policy's problems (prm synth --phrasing)")
    styles: bool = option(False, "vary the style within the family (prm synth --styles)")
    policy_min_steps: int = option(
        2, "fewest operations in the policy's problems (held-out, label, pair and sft problems)"
    )
    policy_max_steps: int = option(3, "most operations in the policy's problems")
    policy_max_value: int = option(12, "largest number in the policy's problems")
    policy_max_result: int = option(60, "largest intermediate value in the policy's problems")
    policy_problems: int = option(32, "held-out problems of the best-of-N evaluation")
    samples: int = option(16, "solutions sampled per held-out problem: the pool, N_max of best-of-N")
    max_new_tokens: int = option(128, "tokens per sampled solution at most (a 3-step solution takes about 60)")
    batch_size: int = option(64, "sequences decoded together (sampling and rollouts): 64 ran 30% faster than 32 here")
    label_problems: int = option(16, "training problems the policy solves for the labeler")
    label_samples: int = option(4, "solutions sampled per labeler problem")
    label_method: str = option("binary", "labeler of the policy's solutions: binary, mc, calc or gold")
    label_k: int = option(4, "rollouts per probed prefix (binary, mc)")
    pairs: int = option(400, "synthetic training problems written twice, solved right and with one error")
    train_tokens: int = option(40_000, "PRM training budget in tokens (each trained model)")
    # "step": over three training seeds the weighted vote at N = 16 was 53.1% each time against 46.9-50.0% with
    # "operation", and step AUROC 0.77-0.79 against 0.70-0.78 (README, Benchmarks -> best-of-N).
    feature_set: FeatureSet = option(
        "step", "likelihood features of the PRM and the outcome model (prm train --feature_set)"
    )
    outcome_baseline: bool = option(True, "also train the outcome-only model (last step's label) on the same data")
    likelihood_baseline: bool = option(True, "also rank by the backbone's own likelihood of each step's result")
    trials: int = option(200, "random draws of N candidates per problem at each N")
    search_problems: int = option(0, "held-out problems also solved by PRM beam search (0 = skip the search stage)")
    search_width: int = option(4, "beam search: beams kept per problem")
    search_expand: int = option(4, "beam search: next steps sampled per beam")
    progress: bool = option(False, "progress bars of every stage on stderr")


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


class Stages:
    """Runs the stages in order, timing each and keeping its one-line summary for the final table."""

    def __init__(self):
        self.rows: list[tuple[str, str, float]] = []

    def __call__(self, name: str, fn, describe):
        t0 = time.perf_counter()
        result = fn()
        self.rows.append((name, describe(result), time.perf_counter() - t0))
        return result

    def print(self) -> None:
        width = max(len(r[0]) for r in self.rows)
        print("\nprm demo: what each stage did")
        for stage, what, secs in self.rows:
            print(f"  {stage:<{width}}  {secs:7.1f} s  {what}")
        print(f"  {'total':<{width}}  {sum(r[2] for r in self.rows):7.1f} s")


def format_checks(cfg: DemoConfig, out: Path, stage: Stages) -> None:
    """synth -> validate -> check gold -> convert: the data layer on the general problem range."""
    base = SynthConfig(seed=cfg.seed, min_steps=cfg.min_steps, max_steps=cfg.max_steps, n=cfg.train_n)

    def synth():
        synth_run(replace(base, split="train", output=str(out / "problems-train.jsonl")))
        synth_run(replace(base, split="test", n=cfg.test_n, output=str(out / "problems-test.jsonl")))

    stage("synth", synth, lambda _: f"{cfg.train_n} train + {cfg.test_n} test problems")
    train = read_records(out / "problems-train.jsonl")
    test = read_records(out / "problems-test.jsonl")

    def validate():
        shared = {r.problem for r in train} & {r.problem for r in test}
        return stats(train + test), len(shared)

    stage("validate", validate, lambda r: f"{r[0].records} records, {r[0].steps} steps, {r[1]} problems shared")
    stage(
        "check gold",
        lambda: check_gold(test),
        lambda r: f"{r[0]}/{r[1]} equations verified, {r[2]}/{len(test)} answers match",
    )

    def convert():
        kept = []
        for name, fmt in FORMATS.items():
            path = out / f"problems-test.{name}.jsonl"
            written = fmt.write(test, path).written
            back = list(fmt.read(path))
            same = sum(a.steps == b.steps and a.problem == b.problem for a, b in zip(test, back, strict=False))
            kept.append(f"{name} {same}/{written}")
        return kept

    stage("convert", convert, lambda kept: "round trips: " + ", ".join(kept))


def run(cfg: DemoConfig) -> dict:
    from prm.bon import BonConfig
    from prm.bon import run as bon_run
    from prm.generate import GenerateConfig, Sampling
    from prm.generate import run as generate_run
    from prm.label import LabelConfig
    from prm.label import run as label_run
    from prm.sft import SFTConfig
    from prm.sft import run as sft_run
    from prm.train import TrainConfig
    from prm.train import run as train_run

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    stage = Stages()
    format_checks(cfg, out, stage)

    # The policy's range. Held-out pool from the test split; everything trained on comes from the train split.
    small = SynthConfig(
        seed=cfg.seed,
        min_steps=cfg.policy_min_steps,
        max_steps=cfg.policy_max_steps,
        max_value=cfg.policy_max_value,
        max_result=cfg.policy_max_result,
        arithmetic=cfg.arithmetic,
        phrasing=cfg.phrasing,
        styles=cfg.styles,
    )
    synth_run(replace(small, split="test", n=cfg.policy_problems, output=str(out / "heldout-problems.jsonl")))
    synth_run(replace(small, split="train", n=cfg.sft_problems, seed=cfg.seed + 3, output=str(out / "sft.jsonl")))
    synth_run(
        replace(small, split="train", n=cfg.label_problems, seed=cfg.seed + 1, output=str(out / "label-problems.jsonl"))
    )
    synth_run(
        replace(small, split="train", n=cfg.pairs, pairs=True, seed=cfg.seed + 2, output=str(out / "pairs.jsonl"))
    )
    policy = str(out / "policy")
    stage(
        "sft",
        lambda: sft_run(
            SFTConfig(
                train=str(out / "sft.jsonl"),
                output=policy,
                base=cfg.model,
                lr=cfg.sft_lr,
                max_tokens=cfg.sft_tokens,
                epochs=100.0,
                batch_tokens=2048,
                eval_every=0,
                save_every=0,
                seed=cfg.seed,
                progress=cfg.progress,
            )
        ),
        lambda r: (
            f"policy: LoRA on {cfg.model}, {r['steps']} steps on {r['data']['kept']} synthetic gold solutions, "
            f"{r['tokens']} tokens, {r['tokens_per_s']:.0f} tok/s"
        ),
    )
    backbone = policy if cfg.prm_backbone == "policy" else cfg.model
    gen = GenerateConfig(
        input="",
        output="",
        model=policy,
        n=cfg.samples,
        sampling=Sampling(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size),
        seed=cfg.seed,
        progress=cfg.progress,
    )
    g = stage(
        "generate",
        lambda: generate_run(replace(gen, input=str(out / "heldout-problems.jsonl"), output=str(out / "pool.jsonl"))),
        lambda g: (
            f"pool: {g['problems']} held-out problems x {cfg.samples}, accuracy {g['accuracy']:.1%}, "
            f"pass@{cfg.samples} {g[f'pass@{cfg.samples}']:.1%}, {g['tokens']} tokens"
        ),
    )
    g["gold"] = stage(
        "gold check",
        lambda: gold_check(out / "pool.jsonl", out / "pool.gold.jsonl"),
        lambda d: (
            f"of {d['answer_right']} pool samples with the right answer, {d['steps_right']} have every step right "
            f"by the exact gold labeler ({d['problems_steps_right']} problems have such a sample)"
        ),
    )
    stage(
        "generate",
        lambda: generate_run(
            replace(
                gen,
                input=str(out / "label-problems.jsonl"),
                n=cfg.label_samples,
                output=str(out / "label-traces.jsonl"),
            )
        ),
        lambda g: f"to label: {g['problems']} training problems x {cfg.label_samples}, accuracy {g['accuracy']:.1%}",
    )
    consensus = "gold" if cfg.label_method != "gold" else "none"
    stage(
        "label",
        lambda: label_run(
            LabelConfig(
                input=str(out / "label-traces.jsonl"),
                output=str(out / "labeled.jsonl"),
                method=cfg.label_method,
                k=cfg.label_k,
                mode="hard",
                consensus=consensus,
                model=policy,
                sampling=Sampling(batch_size=cfg.batch_size),
                seed=cfg.seed,
                progress=cfg.progress,
            )
        ),
        lambda s: (
            f"{cfg.label_method}: {s['records']} traces, {s['rollouts_per_trace']:.1f} rollouts per trace, "
            f"{s['with_error']:.0%} with an error"
            + (f"; agrees with gold on {s['consensus']['retention']:.0%}" if "consensus" in s else "")
        ),
    )
    train_records = read_records(out / "pairs.jsonl") + read_records(out / "labeled.jsonl")
    write_records(train_records, out / "train.jsonl")
    tcfg = TrainConfig(
        train=str(out / "train.jsonl"),
        output=str(out / "prm"),
        base=backbone,
        max_tokens=cfg.train_tokens,
        feature_set=cfg.feature_set,
        epochs=10.0,
        eval_every=0,
        save_every=0,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    stage(
        "train",
        lambda: train_run(tcfg),
        lambda r: (
            f"PRM on {len(train_records)} records ({2 * cfg.pairs} synthetic, "
            f"{len(train_records) - 2 * cfg.pairs} labelled policy traces): {r['steps']} steps, {r['tokens']} tokens, "
            f"{r['tokens_per_s']:.0f} tok/s"
        ),
    )
    baselines = []
    if cfg.outcome_baseline:
        stage(
            "train",
            lambda: train_run(replace(tcfg, output=str(out / "orm"), last_step_only=True)),
            lambda r: f"outcome-only baseline (last step's label), same data: {r['steps']} steps, {r['tokens']} tokens",
        )
        stage(
            "score",
            lambda: _score(out / "orm", out / "pool.jsonl", out / "pool.orm.jsonl"),
            lambda n: f"{n} pool traces by the outcome model",
        )
        baselines.append(f"orm={out / 'pool.orm.jsonl'}")
    if cfg.likelihood_baseline:
        stage(
            "score",
            lambda: _likelihood(backbone, out / "pool.jsonl", out / "pool.loglik.jsonl"),
            lambda n: f"{n} pool traces by the backbone's result likelihood (training-free)",
        )
        baselines.append(f"loglik={out / 'pool.loglik.jsonl'}")
    bon = stage(
        "bon",
        lambda: bon_run(
            BonConfig(
                output=str(out / "bon"),
                traces=str(out / "pool.jsonl"),
                prm=str(out / "prm"),
                baselines=tuple(baselines),
                labels=str(out / "pool.gold.jsonl"),
                trials=cfg.trials,
                seed=cfg.seed,
                progress=cfg.progress,
            )
        ),
        lambda b: f"{b['problems']} problems x {b['n_max']}, {b['trials']} draws per N",
    )
    search = None
    if cfg.search_problems:
        from prm.search import SearchConfig
        from prm.search import run as search_run

        search = stage(
            "search",
            lambda: search_run(
                SearchConfig(
                    problems=str(out / "heldout-problems.jsonl"),
                    prm=str(out / "prm"),
                    output=str(out / "search"),
                    width=cfg.search_width,
                    expand=cfg.search_expand,
                    limit=cfg.search_problems,
                    pool=str(out / "bon" / "pool.scored.jsonl"),
                    policy=policy,
                    seed=cfg.seed,
                    progress=cfg.progress,
                )
            ),
            lambda s: (
                f"beam {cfg.search_width}x{cfg.search_expand} on {s['problems']} problems: accuracy "
                f"{s['accuracy']:.1%} at {s['tokens_per_problem']:.0f} tokens per problem"
            ),
        )
    stage.print()
    summary = demo_table(bon, search, g)
    print(summary)
    print(f"plot:   {out / 'bon' / 'bon.png'}\nreport: {out / 'bon' / 'report.html'}\nfiles:  {out}/")
    with open(out / "demo.md", "w", encoding="utf-8") as f:
        f.write(summary)
    return {"bon": bon, "search": search, "generate": g}


def gold_check(pool: Path, output: Path) -> dict:
    """How many right answers come with right steps: the exact `gold` labeler on the pool (no model, instant).
    A PRM can only prefer a right answer whose steps it can judge right; a right answer reached through wrong
    steps (a lucky guess) is, correctly, what a PRM rejects."""
    from prm.label import LabelConfig
    from prm.label import run as label_run

    label_run(LabelConfig(input=str(pool), output=str(output), method="gold", progress=False))
    right = [r for r in read_records(output) if r.meta["correct"]]
    clean = [r for r in right if all(x is not False for x in r.labels)]
    return {
        "answer_right": len(right),
        "steps_right": len(clean),
        "problems_steps_right": len({r.meta["problem_id"] for r in clean}),
    }


def _score(model: Path, traces: Path, output: Path) -> int:
    from prm.score.prm_scorer import ScoreConfig
    from prm.score.prm_scorer import run as score_run

    score_run(ScoreConfig(model=str(model), input=str(traces), output=str(output), bf16=True, progress=False))
    return len(read_records(output))


def _likelihood(model: str, traces: Path, output: Path) -> int:
    from prm.score.baseline import BaselineConfig
    from prm.score.baseline import run as baseline_run

    baseline_run(BaselineConfig(input=str(traces), output=str(output), model=model, progress=False))
    return len(read_records(output))


def demo_table(bon: dict, search: dict | None, g: dict) -> str:
    """The closing table: policy accuracy, then PRM best-of-N, majority and oracle (and baselines) at each N."""
    from prm.bon.command import errors_line, problem_spread, ranking_line
    from prm.bon.report import markdown_table

    sel = bon["selectors"]
    order = (
        "prm-min", "prm-last", "prm-vote", "prm-calc-vote", "orm-last", "loglik-min", "calc", "majority", "judge-vote",
        "oracle",
    )  # fmt: skip
    cols = [c for c in order if c in sel]
    lines = [
        f"\npolicy accuracy {100 * bon['policy_accuracy']:.1f}% ({g['problems']} held-out problems x {bon['n_max']} "
        f"samples); accuracy in %, mean ± std over {bon['trials']} random draws of N from each pool",
        f"samples with the right answer: {g['gold']['answer_right']}, of which every step is right by the gold "
        f"labeler: {g['gold']['steps_right']}",
        "calc: vote among the samples whose equations all check; prm-calc-vote: the PRM-weighted vote among those; "
        "judge-vote: vote among the samples whose every step is right by the gold labeler (a perfect step judge)",
        "",
        markdown_table(bon["ns"], sel, cols),
        problem_spread(
            bon["ns"],
            sel,
            ("prm-min", "prm-vote", "prm-calc-vote", "orm-last", "calc", "majority", "judge-vote", "oracle"),
        ),
    ]
    if "ranking" in bon:
        lines += ["", ranking_line(bon["ranking"]), errors_line(bon["first_errors"])]
    if search:
        b = search["bon_equal_tokens"]
        lines += [
            "",
            f"beam search ({search['width']}x{search['expand']}, {search['problems']} problems): "
            f"{100 * search['accuracy']:.1f}% at {search['tokens_per_problem']:.0f} tokens per problem; "
            f"best-of-{b['n']} at {b['tokens_per_problem']:.0f} tokens: PRM {100 * b['prm-min']['mean']:.1f} "
            f"± {100 * b['prm-min']['std']:.1f}, majority {100 * b['majority']['mean']:.1f}",
        ]
    return "\n".join(lines) + "\n"

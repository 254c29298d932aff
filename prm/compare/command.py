"""`prm compare`: accuracy against generated tokens for PRM-weighted best-of-N, beam search, DVTS, A* and MCTS on the
same held-out problems, at budgets of k samples' tokens, easy and hard problems apart.

    prm compare --config configs/compare.yaml --problems heldout.jsonl --policy POLICY --prm PRM --value QMODEL \
        --output runs/compare

First the best-of-N pool (max(budgets) full samples per problem, `prm generate`) and its PRM scores (`prm score`):
they give best-of-N and majority vote at every N, and the mean tokens of one sample that turns a budget into
tokens. Then one unit per (search strategy, budget), every problem searched together. Every unit is written
atomically into `units/` when it ends and a rerun skips the finished ones (the pool resumes like `prm generate`),
so an interrupted run continues where it stopped; rerunning with other settings on the same output is refused.

Writes compare.json (every figure), compare.md (the tables), compare.png (accuracy against tokens) and config.yaml.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from prm.compare.config import CompareConfig
from prm.compare.core import bon_summaries, search_summary, unit_rows, unit_strategy
from prm.compare.report import NAMES, markdown, match_line, plot, rows_order
from prm.config import ConfigError, check_resumable, save_config
from prm.fileio import atomic_write
from prm.records import read_records, write_records

# Fields a rerun may change and still resume: they change no finished output. A unit's results depend only on its
# own strategy and budget and on the other settings, so a rerun may add or leave out strategies and budgets (the
# summary covers those asked for; finished units are read, missing ones searched); hard_steps only regroups the
# problems in the summary. The pool is sampled once, with max(budgets) samples: a larger budget later is capped.
FREE = {
    "sampling.batch_size",
    "progress",
    "hard_steps",
    "strategies",
    "budgets",
    "output",
}  # output: a moved folder resumes


def _log(cfg: CompareConfig, msg: str) -> None:
    if cfg.progress:
        print(f"prm compare: {msg}", file=sys.stderr, flush=True)


def _pool(cfg: CompareConfig, out: Path, problems: list) -> Path:
    """The best-of-N pool, sampled and scored (each step skipped when its file is complete). With `only`, the pool
    samples the chosen problems alone, from their own file beside the outputs."""
    from prm.generate.command import GenerateConfig
    from prm.generate.command import run as generate
    from prm.score.prm_scorer import ScoreConfig
    from prm.score.prm_scorer import run as score

    pool, scored = out / "pool.jsonl", out / "pool.scored.jsonl"
    if not scored.exists():
        source, limit = cfg.problems, cfg.limit
        if cfg.only != "all":
            source, limit = str(out / "problems.jsonl"), None
            write_records(problems, source)
        generate(
            GenerateConfig(
                input=source,
                output=str(pool),
                model=cfg.policy,
                n=max(cfg.budgets),
                limit=limit,
                seed=cfg.seed,
                bf16=cfg.bf16,
                sampling=cfg.sampling,
                progress=cfg.progress,
            )
        )
        score(ScoreConfig(model=cfg.prm, input=str(pool), output=str(scored), bf16=cfg.bf16, progress=cfg.progress))
    return scored


def run(cfg: CompareConfig) -> dict:
    from prm.bon.command import build_pools

    out = Path(cfg.output)
    # with `only`, hard_steps chooses the problems searched, so it no longer just regroups them
    check_resumable(cfg, out, free=FREE if cfg.only == "all" else FREE - {"hard_steps"})
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    problems = read_records(cfg.problems)[: cfg.limit]
    if not problems:
        raise ConfigError(f"{cfg.problems}: no problems")
    for p in problems:
        if p.answer is None:
            raise ConfigError(f"{cfg.problems}: problem '{p.id}' has no gold answer")
    if cfg.only != "all":
        problems = [p for p in problems if (len(p.steps) >= cfg.hard_steps) == (cfg.only == "hard")]
        if not problems:
            raise ConfigError(f"{cfg.problems}: no {cfg.only} problems (hard: >= {cfg.hard_steps} steps)")
    hard = [len(p.steps) >= cfg.hard_steps for p in problems]
    t0 = time.perf_counter()

    ids, pools, _ = build_pools(_pool(cfg, out, problems))
    where = dict(zip(ids, pools, strict=True))
    pools = [where[p.id] for p in problems]
    tokens_per_sample = statistics.fmean(c.tokens for pool in pools for c in pool)
    units: dict[str, dict[str, dict]] = {}
    if "bon" in cfg.strategies:
        for name, by_budget in bon_summaries(
            pools, hard, cfg.budgets, cfg.bon_trials, cfg.seed, cfg.beam_rank_by
        ).items():
            units[name] = {str(b): s for b, s in by_budget.items()}

    searches = [s for s in cfg.strategies if s != "bon"]
    todo = [(s, b) for s in searches for b in cfg.budgets if not (out / "units" / f"{s}-{b}.jsonl").exists()]
    engine, fns = _search_fns(cfg, problems) if todo else (None, None)
    try:
        for strategy in searches:
            units[strategy] = {}
            for budget in cfg.budgets:
                path = out / "units" / f"{strategy}-{budget}.jsonl"
                if not path.exists():
                    rows = _run_unit(cfg, strategy, budget, tokens_per_sample, problems, fns)
                    path.parent.mkdir(exist_ok=True)
                    with atomic_write(path) as f:
                        for row in rows:
                            f.write(json.dumps(row) + "\n")
                rows = [json.loads(line) for line in path.read_text().splitlines()]
                units[strategy][str(budget)] = search_summary(rows, hard, cfg.seed) | {"samples": budget}
    finally:
        if engine is not None:
            engine.close()

    summary = {
        "problems": len(problems),
        "easy": hard.count(False),
        "hard": hard.count(True),
        "hard_steps": cfg.hard_steps,
        "tokens_per_sample": tokens_per_sample,
        "budgets": list(cfg.budgets),
        "bon_rank_by": cfg.beam_rank_by,
        "units": {name: units[name] for name in rows_order(list(units))},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    summary["matches"] = match_line(summary)
    with atomic_write(out / "compare.json") as f:
        json.dump(summary, f, indent=2)
    table = markdown(summary)
    with atomic_write(out / "compare.md") as f:
        f.write(table)
    plot(
        summary, out / "compare.png", f"{len(problems)} problems, budgets in samples of {tokens_per_sample:.0f} tokens"
    )
    print(
        f"prm compare: {len(problems)} problems ({summary['easy']} easy, {summary['hard']} hard: >= {cfg.hard_steps} "
        f"steps), one full sample = {tokens_per_sample:.0f} tokens"
    )
    print(table)
    for line in summary["matches"]:
        print(line)
    timed = {n: sum(u[str(b)].get("timed_out", 0) for b in cfg.budgets) for n, u in units.items()}
    if any(timed.values()):
        print("timed out (counted as they ended): " + ", ".join(f"{NAMES[n]} {k}" for n, k in timed.items() if k))
    print(f"files: {out}/compare.json, compare.md, compare.png")
    return summary


def _search_fns(cfg: CompareConfig, problems):
    """(the policy's engine, to close when done; the sample, score and value functions of the searches)"""
    from prm.generate.engine import open_engine
    from prm.score.prm_scorer import PRMScorer
    from prm.search.steps import model_sampler, prm_scorer_fn

    texts = [p.problem for p in problems]
    engine = open_engine(cfg.policy, cfg.sampling, bf16=cfg.bf16)
    system, shots = cfg.sampling.prompt(cfg.policy)
    params = cfg.sampling.params(seed=cfg.seed, bf16=cfg.bf16, max_new_tokens=cfg.max_step_tokens)
    prm = prm_scorer_fn(PRMScorer.from_pretrained(cfg.prm, bf16=cfg.bf16), texts)
    # Without a Q-value model (None) the PRM's score of the newest step stands in for the value.
    value = prm_scorer_fn(PRMScorer.from_pretrained(cfg.value, bf16=cfg.bf16), texts) if cfg.value else None
    return engine, (model_sampler(engine, texts, params, shots, system), prm, value)


def _run_unit(cfg: CompareConfig, strategy: str, budget: int, tokens_per_sample: float, problems, fns) -> list[dict]:
    sample_fn, score_fn, value_fn = fns
    start = time.perf_counter()

    def expired(_: int) -> bool:
        return cfg.timeout_s is not None and time.perf_counter() - start > cfg.timeout_s

    def on_round(k: int, live: int) -> None:
        _log(
            cfg, f"{NAMES[strategy]} at {budget} samples: round {k}, {live} live ({time.perf_counter() - start:.0f} s)"
        )

    from prm.search.strategies import run_strategy

    s = unit_strategy(strategy, budget, tokens_per_sample, cfg)
    results = run_strategy(s, sample_fn, score_fn, value_fn, len(problems), expired=expired, on_round=on_round)
    rows = unit_rows(results, problems)
    acc = sum(r["correct"] for r in rows) / len(rows)
    tokens = statistics.fmean(r["tokens"] for r in rows)
    _log(cfg, f"{NAMES[strategy]} at {budget} samples: {acc:.1%}, {tokens:.0f} tokens per problem")
    return rows

"""`prm search`: PRM-guided search over the policy's steps (beam, DVTS, A*, MCTS), against best-of-N at equal tokens.

    prm search --problems problems.jsonl --prm runs/prm --strategy beam --width 4 --expand 4 --output runs/search
    prm search ... --strategy astar --value runs/qvalue --budget 1000   # best-first, f = g + lambda * Q
    prm search ... --strategy mcts --value runs/qvalue --budget 1000    # PUCT, the Q-value model at the leaves
    prm search ... --pool runs/bon/pool.scored.jsonl     # also best-of-N from that pool at the same token budget

Writes into `output`: search.jsonl (the chosen solution per problem as a trace record, with its step scores,
tokens spent, and whether it is correct), search.json (accuracy, tokens per problem, and with `--pool` the
best-of-N accuracy of PRM selection and majority vote at the N whose mean generated tokens match the search's),
and config.yaml.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from prm.answers import answers_equal
from prm.bon.command import build_pools
from prm.bon.select import AGGREGATES, accuracy_curve, majority, select_by_score
from prm.config import ConfigError, config, option, save_config
from prm.fileio import atomic_write
from prm.generate.engine import Sampling
from prm.records import StepRecord, read_records, write_records
from prm.score import attach_scores


@config("search")
class SearchConfig:
    problems: str = option(help="problems with a gold answer (e.g. from prm synth)")
    prm: str = option(help="a PRM folder written by prm train")
    output: str = option(help="folder for search.jsonl, search.json and config.yaml")
    strategy: str = option(
        "beam",
        "beam (keep the best `width` overall), dvts (`width` subtrees of one beam), astar (best-first on "
        "g + lambda * Q) or mcts (PUCT with the Q-value model at the leaves)",
    )
    width: int = option(4, "beams kept per problem (beam) or independent subtrees (dvts)")
    expand: int = option(
        4, "next steps sampled per live beam (beam, dvts), popped node (astar) or expanded node (mcts)"
    )
    max_steps: int = option(8, "depth limit: steps per solution at most")
    rank_by: str = option(
        "last", "PRM aggregate that ranks partial solutions (beam, dvts) or A*'s g: last, min, prod or mean"
    )
    value: str | None = option(
        None, "the Q-value model (prm train --loss soft on mc values) for astar's h and mcts's leaves; null: the PRM"
    )
    budget: int = option(1000, "astar, mcts: sampled tokens per problem at which the search stops")
    lam: float = option(1.0, "astar: weight of the Q-value, f = g + lam * h")
    n_solutions: int = option(16, "astar: stop once this many solutions are complete")
    grow: str = option(
        "step", "astar: step (a popped node grows by `expand` next steps) or path (by `expand` rollouts to the end)"
    )
    answer: str | None = option(
        None,
        "beam, dvts, astar: best (default: the complete solution ranked first) or vote (the PRM-weighted vote over the "
        "complete ones); mcts: visits (default, the most visited path), best or vote",
    )
    c_puct: float = option(1.0, "mcts: exploration constant")
    prior: str = option("policy", "mcts: policy (each step's mean token log-probability) or uniform (UCT)")
    rollout: float = option(
        0.0,
        "mcts: weight w of a rollout check in each leaf's value, (1 - w) * Q + w * the value of the policy's finished "
        "solution's answer line; 0: the Q-value alone, no rollout",
    )
    timeout_s: float | None = option(
        None, "seconds a problem may stay in search (all are searched together); one that hits it counts as it ended"
    )
    pool: str | None = option(None, "a scored best-of-N pool of the same problems (prm bon's pool.scored.jsonl)")
    bon_trials: int = option(200, "random draws for the best-of-N comparison")
    limit: int | None = option(None, "search only the first `limit` problems")
    policy: str = option("smollm2-135m", "policy: a local folder, a hub id, or smollm2-135m (the embedded model)")
    seed: int = option(0, "seed of sampling")
    bf16: bool = option(True, "bf16 autocast for the policy and the PRM")
    sampling: Sampling = option(
        Sampling(max_new_tokens=96),
        "how the policy samples (prm.generate.engine); search samples a step at a time, so max_new_tokens caps a step",
    )
    progress: bool = option(True, "a line per depth on stderr")

    def __post_init__(self):
        if self.strategy not in ("beam", "dvts", "astar", "mcts"):
            raise ValueError("strategy must be beam, dvts, astar or mcts")
        if self.rank_by not in AGGREGATES:
            raise ValueError(f"rank_by must be one of {', '.join(AGGREGATES)}")
        if min(self.width, self.expand, self.max_steps, self.bon_trials) < 1:
            raise ValueError("width, expand, max_steps and bon_trials must be >= 1")
        if min(self.budget, self.n_solutions) < 1 or self.c_puct < 0:
            raise ValueError("budget and n_solutions must be >= 1 and c_puct >= 0")
        answers = ("visits", "best", "vote") if self.strategy == "mcts" else ("best", "vote")
        if self.answer is not None and self.answer not in answers:
            raise ValueError(f"answer of {self.strategy} must be one of {', '.join(answers)}")
        if self.grow not in ("step", "path"):
            raise ValueError("grow must be step or path")
        if self.prior not in ("policy", "uniform"):
            raise ValueError("prior must be policy or uniform")
        if not 0.0 <= self.rollout <= 1.0:
            raise ValueError("rollout must be within [0, 1]")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0 (or null)")


def bon_at_tokens(pool_path: str, problem_ids: list[str], tokens_per_problem: float, trials: int, seed: int) -> dict:
    """Best-of-N from a scored pool at the N whose mean generated tokens are closest to `tokens_per_problem`."""
    ids, pools, _ = build_pools(pool_path)
    where = dict(zip(ids, pools, strict=True))
    missing = [p for p in problem_ids if p not in where]
    if missing:
        raise ConfigError(f"{pool_path}: no traces of problem {missing[0]!r} (the pool must cover every problem)")
    pools = [where[p] for p in problem_ids]
    size = min(len(p) for p in pools)
    per_candidate = sum(c.tokens for p in pools for c in p) / sum(len(p) for p in pools)
    n = max(1, min(size, round(tokens_per_problem / per_candidate)))
    selectors = {"prm-min": lambda cs: select_by_score(cs, "min"), "majority": majority}
    curve = accuracy_curve(pools, [n], selectors, trials=trials, seed=seed)
    return {
        "n": n,
        "pool_size": size,
        "capped": round(tokens_per_problem / per_candidate) > size,
        "tokens_per_problem": n * per_candidate,
        **{name: {"mean": c["mean"][0], "std": c["std"][0]} for name, c in curve.items()},
    }


def run(cfg: SearchConfig) -> dict:
    import sys

    from prm.generate.engine import open_engine
    from prm.score.prm_scorer import PRMScorer
    from prm.search.steps import model_sampler, prm_scorer_fn
    from prm.search.strategies import Strategy, run_strategy

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    problems = read_records(cfg.problems)[: cfg.limit]
    for p in problems:
        if p.answer is None:
            raise ConfigError(f"{cfg.problems}: problem '{p.id}' has no gold answer")
    t0 = time.perf_counter()
    engine = open_engine(cfg.policy, cfg.sampling, bf16=cfg.bf16)
    scorer = PRMScorer.from_pretrained(cfg.prm, bf16=cfg.bf16)
    params = cfg.sampling.params(seed=cfg.seed, bf16=cfg.bf16)
    texts = [p.problem for p in problems]
    system, shots = cfg.sampling.prompt(cfg.policy)

    value = prm_scorer_fn(PRMScorer.from_pretrained(cfg.value, bf16=cfg.bf16), texts) if cfg.value else None
    what = "depth" if cfg.strategy in ("beam", "dvts") else "round"

    def on_round(k: int, live: int) -> None:
        if cfg.progress:
            print(f"prm search: {what} {k}: {live} live ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    start = time.perf_counter()

    def expired(_: int) -> bool:
        return cfg.timeout_s is not None and time.perf_counter() - start > cfg.timeout_s

    strategy = Strategy(
        cfg.strategy,
        width=cfg.width,
        expand=cfg.expand,
        budget=cfg.budget,
        max_steps=cfg.max_steps,
        rank_by=cfg.rank_by,
        lam=cfg.lam,
        n_solutions=cfg.n_solutions,
        answer=cfg.answer or "",
        c_puct=cfg.c_puct,
        prior=cfg.prior,
        rollout=cfg.rollout,
        grow=cfg.grow,
    )
    try:
        results = run_strategy(
            strategy,
            model_sampler(engine, texts, params, shots, system),
            prm_scorer_fn(scorer, texts),
            value,
            len(problems),
            expired=expired,
            on_round=on_round,
        )
    finally:
        engine.close()
    records = []
    for p, res in zip(problems, results, strict=True):
        correct = answers_equal(res.prediction, p.answer)
        meta = {
            "problem_id": p.id,
            "prediction": res.prediction,
            "correct": correct,
            "tokens": res.tokens,
            "completed": res.completed,
            "expansions": res.expansions,
            "timed_out": res.timed_out,
            "strategy": cfg.strategy,
            "finished": res.completions(),
        }
        steps = res.steps or ["(no complete solution)"]
        r = StepRecord(
            id=f"{p.id}/{cfg.strategy}", problem=p.problem, steps=steps, answer=p.answer, source="search", meta=meta
        )
        attach_scores(r, res.scores or [0.0], f"prm:{Path(cfg.prm).name}")
        records.append(r)
    write_records(records, out / "search.jsonl")
    tokens = sum(r.tokens for r in results) / len(results)
    summary = {
        "strategy": cfg.strategy,
        "problems": len(problems),
        "width": cfg.width,
        "expand": cfg.expand,
        "accuracy": sum(r.meta["correct"] for r in records) / len(records),
        "tokens_per_problem": tokens,
        "completed_per_problem": sum(r.completed for r in results) / len(results),
        "timed_out": sum(r.timed_out for r in results),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if cfg.pool:
        summary["bon_equal_tokens"] = bon_at_tokens(
            cfg.pool, [p.id for p in problems], tokens, cfg.bon_trials, cfg.seed
        )
    with atomic_write(out / "search.json") as f:
        json.dump(summary, f, indent=2)
    shape = (
        f"width {cfg.width} x expand {cfg.expand}"
        if cfg.strategy in ("beam", "dvts")
        else f"budget {cfg.budget} tokens, expand {cfg.expand}"
    )
    line = (
        f"prm search ({cfg.strategy}, {shape}): accuracy "
        f"{summary['accuracy']:.1%} on {len(problems)} problems, {tokens:.0f} tokens per problem"
    )
    if cfg.pool:
        b = summary["bon_equal_tokens"]
        line += (
            f"; best-of-{b['n']} at {b['tokens_per_problem']:.0f} tokens: PRM {b['prm-min']['mean']:.1%} "
            f"± {b['prm-min']['std']:.1%}, majority {b['majority']['mean']:.1%}"
        )
    print(line)
    return summary

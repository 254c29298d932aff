"""`prm search`: PRM-guided beam search (or DVTS) over the policy's steps, against best-of-N at equal tokens.

    prm search --problems problems.jsonl --prm runs/prm --strategy beam --width 4 --expand 4 --output runs/search
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
from prm.generate.prompt import Shot, policy_prompt
from prm.records import StepRecord, read_records, write_records
from prm.score import attach_scores


@config("search")
class SearchConfig:
    problems: str = option(help="problems with a gold answer (e.g. from prm synth)")
    prm: str = option(help="a PRM folder written by prm train")
    output: str = option(help="folder for search.jsonl, search.json and config.yaml")
    strategy: str = option("beam", "beam (keep the best `width` overall) or dvts (`width` subtrees of one beam)")
    width: int = option(4, "beams kept per problem (beam) or independent subtrees (dvts)")
    expand: int = option(4, "next steps sampled per live beam at each depth")
    max_steps: int = option(8, "depth limit: steps per solution at most")
    rank_by: str = option("last", "PRM aggregate that ranks partial solutions: last, min, prod or mean")
    pool: str | None = option(None, "a scored best-of-N pool of the same problems (prm bon's pool.scored.jsonl)")
    bon_trials: int = option(200, "random draws for the best-of-N comparison")
    limit: int | None = option(None, "search only the first `limit` problems")
    policy: str = option("smollm2-135m", "policy: a local folder, a hub id, or smollm2-135m (the embedded model)")
    max_step_tokens: int = option(96, "tokens per sampled step at most")
    temperature: float = option(0.8, "sampling temperature of the policy")
    top_p: float = option(1.0, "nucleus sampling mass (1 = off)")
    batch_size: int = option(32, "sequences decoded together")
    seed: int = option(0, "seed of sampling")
    bf16: bool = option(True, "bf16 autocast for the policy and the PRM")
    system: str | None = option(
        None, "system message; null: the policy's own (a prm sft folder's), else the built-in line; \"\" for none"
    )
    shots: tuple[Shot, ...] | None = option(
        None,
        "worked examples (problem, solution); null: the policy's own (zero-shot for a prm sft folder), else two built-in ones; [] for none",
    )
    progress: bool = option(True, "a line per depth on stderr")

    def __post_init__(self):
        if self.strategy not in ("beam", "dvts"):
            raise ValueError("strategy must be beam or dvts")
        if self.rank_by not in AGGREGATES:
            raise ValueError(f"rank_by must be one of {', '.join(AGGREGATES)}")
        if min(self.width, self.expand, self.max_steps, self.max_step_tokens, self.bon_trials) < 1:
            raise ValueError("width, expand, max_steps, max_step_tokens and bon_trials must be >= 1")


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

    from prm.generate.sampler import SamplingParams, weights_dtype
    from prm.models import load
    from prm.score.prm_scorer import PRMScorer
    from prm.search.beam import model_sampler, prm_scorer_fn, search

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    problems = read_records(cfg.problems)[: cfg.limit]
    for p in problems:
        if p.answer is None:
            raise ConfigError(f"{cfg.problems}: problem '{p.id}' has no gold answer")
    t0 = time.perf_counter()
    model, tok = load(cfg.policy, dtype=weights_dtype(cfg.bf16))
    scorer = PRMScorer.from_pretrained(cfg.prm, bf16=cfg.bf16)
    params = SamplingParams(cfg.max_step_tokens, cfg.temperature, cfg.top_p, cfg.batch_size, cfg.bf16, cfg.seed)
    texts = [p.problem for p in problems]
    system, shots = policy_prompt(cfg.policy, cfg.system, cfg.shots)

    def on_depth(depth: int, live: int) -> None:
        if cfg.progress:
            print(f"prm search: depth {depth}: {live} live beams ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    results = search(
        model_sampler(model, tok, texts, params, shots, system),
        prm_scorer_fn(scorer, texts),
        len(problems),
        strategy=cfg.strategy,
        width=cfg.width,
        expand=cfg.expand,
        max_steps=cfg.max_steps,
        how=cfg.rank_by,
        on_depth=on_depth,
    )
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
            "strategy": cfg.strategy,
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
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if cfg.pool:
        summary["bon_equal_tokens"] = bon_at_tokens(
            cfg.pool, [p.id for p in problems], tokens, cfg.bon_trials, cfg.seed
        )
    with atomic_write(out / "search.json") as f:
        json.dump(summary, f, indent=2)
    line = (
        f"prm search ({cfg.strategy}, width {cfg.width} x expand {cfg.expand}): accuracy "
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

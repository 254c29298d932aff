"""`prm bon`: best-of-N accuracy of every selector against N, with the reports.

    prm bon --traces traces.jsonl --prm runs/prm --output runs/bon          # score the pool with a PRM, then select
    prm bon --traces scored.jsonl --output runs/bon                          # a pool already scored (prm score)
    prm bon --problems problems.jsonl --policy smollm2-135m --n_max 16 --prm runs/prm --output runs/bon

The pool of a problem is every trace with its `meta.problem_id` (as `prm generate` writes them; with `--problems`,
the policy samples `n_max` per problem first). Selectors: the PRM aggregates min, prod, last and mean, the
PRM-weighted vote, majority vote, random (pass@1) and oracle (pass@N), plus min and last of each `--baselines`
scorer (`name=scored.jsonl` of the same traces, e.g. an outcome model or `prm score-baseline`).

Writes into `output`: bon.json (every figure), bon.md (the table), bon.png (accuracy against N, log2 axis),
report.html (problems and candidates, steps coloured by PRM score), the scored pool, and config.yaml.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from prm.answers import answers_equal, extract_answer
from prm.bon.report import html_report, markdown_table, plot_curve
from prm.bon.select import (
    AGGREGATES,
    Candidate,
    accuracy_curve,
    aggregate,
    answer_key,
    powers_of_two,
    standard_selectors,
)
from prm.checker import calc_passes
from prm.config import ConfigError, config, option, save_config
from prm.fileio import atomic_write
from prm.records import RecordError, StepRecord, iter_json_objects
from prm.score import read_scores


@config("bon")
class BonConfig:
    output: str = option(help="folder for bon.json, bon.md, bon.png, report.html and the scored pool")
    traces: str | None = option(None, "the candidate pool: traces from prm generate (scored, or scored here by --prm)")
    problems: str | None = option(None, "instead of --traces: problems the policy samples n_max solutions for")
    policy: str = option("smollm2-135m", "with --problems: the policy (a folder, a hub id or smollm2-135m)")
    prm: str | None = option(None, "a PRM folder (prm train) to score the pool with; null: the pool is scored")
    baselines: tuple[str, ...] = option((), "other scorers of the same traces: name=scored.jsonl,name2=other.jsonl")
    n_max: int | None = option(None, "candidates per problem used (null: the smallest pool)")
    trials: int = option(200, "random draws of N candidates per problem at each N")
    seed: int = option(0, "seed of the draws (and of sampling, with --problems)")
    labels: str | None = option(
        None, "step labels of the same traces (e.g. prm label --method gold): also rank solutions with every step right"
    )
    mark: str = option("min", "the PRM aggregate whose choice report.html marks (min, prod, last or mean)")
    html_problems: int = option(40, "problems shown in report.html")
    batch_tokens: int = option(0, "padded tokens per PRM forward pass (0: 1024 on a CPU, 8192 on a GPU)")
    bf16: bool = option(True, "bf16 autocast for sampling and scoring")
    progress: bool = option(True, "progress bars on stderr")

    def __post_init__(self):
        if (self.traces is None) == (self.problems is None):
            raise ValueError("give exactly one of traces and problems")
        if self.problems is not None and (self.prm is None or self.n_max is None):
            raise ValueError("with problems, give prm (to score the samples) and n_max (samples per problem)")
        if self.trials < 1:
            raise ValueError("trials must be >= 1")
        if self.mark not in AGGREGATES:
            raise ValueError(f"mark must be one of {', '.join(AGGREGATES)}")
        for b in self.baselines:
            if "=" not in b:
                raise ValueError(f"a baseline is name=scored.jsonl, got {b!r}")


def candidate(r: StepRecord, scores: list[float], extra: dict | None = None) -> Candidate:
    """A trace as a candidate: the answer and correctness `prm generate` recorded (or, when absent, extracted from
    the last step and compared with the gold answer), and whether the calculator finds a wrong equation in it."""
    pred = r.meta["prediction"] if "prediction" in r.meta else extract_answer(r.steps[-1])
    correct = r.meta["correct"] if "correct" in r.meta else answers_equal(pred, r.answer)
    calc_ok = calc_passes(r.steps)
    return Candidate(
        answer_key(pred), bool(correct), tuple(scores), int(r.meta.get("tokens", 0)), extra or {}, calc_ok=calc_ok
    )


# First errors by the gold labeler's reason (prm.label.gold), as what a calculator can and cannot see.
ERROR_KINDS = {
    "wrong arithmetic": "arithmetic slip (the calculator sees it)",
    "wrong final answer": "wrong answer line",
    "off the gold chain": "wrong operation or operand",
    "no progress": "wrong operation or operand",
    "wrong route": "right value by a wrong route",
    "back to an earlier value": "stale value",
    "unsupported number": "unsupported number",
    "empty trace": "empty",
}


def read_labels(path: str) -> dict[str, StepRecord]:
    """id -> labelled record of a file from `prm label` (every record must carry labels)."""
    out = {}
    for line, obj in iter_json_objects(path):
        r = StepRecord.from_dict(obj, path=path, line=line)
        if all(x is None for x in r.labels):
            raise RecordError(path, line, "labels", "no step is labelled: a labelled file is needed (prm label)")
        out[r.id] = r
    return out


def error_kind(record: StepRecord) -> str:
    """The kind of a labelled record's first error, by the gold labeler's reason ("unknown" for other labelers)."""
    reason = str(record.meta.get("label", {}).get("reason", ""))
    return next((v for k, v in ERROR_KINDS.items() if reason.startswith(k)), "unknown")


def first_error_kinds(records: list[StepRecord]) -> dict[str, int]:
    """How many first errors of each kind the labelled records have (the gold labeler's reasons; other labelers'
    records count as "unknown")."""
    kinds = Counter(error_kind(r) for r in records if r.first_error() is not None)
    return dict(kinds.most_common())


def read_scored(path: str | Path) -> dict[str, list[float]]:
    """id -> scores of a scored file, each checked (RecordError names the file and line)."""
    out = {}
    for line, obj in iter_json_objects(path):
        out[obj["id"]] = read_scores(obj, path=path, line=line)
    return out


def build_pools(
    path: str | Path, baselines: dict[str, dict[str, list[float]]] | None = None
) -> tuple[list[str], list[list[Candidate]], list[list[StepRecord]]]:
    """(problem ids, candidate pools, their records) of a scored trace file, pools in file order."""
    baselines = baselines or {}
    pools: dict[str, list[Candidate]] = {}
    records: dict[str, list[StepRecord]] = {}
    for line, obj in iter_json_objects(path):
        r = StepRecord.from_dict(obj, path=path, line=line)
        pid = r.meta.get("problem_id")
        if not isinstance(pid, str):
            raise RecordError(path, line, "meta.problem_id", "missing: a trace needs the id of its problem")
        extra = {}
        for name, table in baselines.items():
            if r.id not in table:
                raise RecordError(path, line, "id", f"trace {r.id!r} is not scored by baseline {name!r}")
            extra[name] = tuple(table[r.id])
        pools.setdefault(pid, []).append(candidate(r, read_scores(obj, path=path, line=line), extra))
        records.setdefault(pid, []).append(r)
    ids = list(pools)
    return ids, [pools[i] for i in ids], [records[i] for i in ids]


def _score_pool(cfg: BonConfig, traces: str, out: Path) -> str:
    from prm.score.prm_scorer import ScoreConfig
    from prm.score.prm_scorer import run as score_run

    path = out / "pool.scored.jsonl"
    score_run(
        ScoreConfig(
            model=cfg.prm,
            input=traces,
            output=str(path),
            batch_tokens=cfg.batch_tokens,
            bf16=cfg.bf16,
            progress=cfg.progress,
        )
    )
    return str(path)


def run(cfg: BonConfig) -> dict:
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    t0 = time.perf_counter()
    traces = cfg.traces
    if cfg.problems is not None:
        from prm.generate import GenerateConfig
        from prm.generate import run as generate

        traces = str(out / "pool.jsonl")
        generate(
            GenerateConfig(
                input=cfg.problems,
                output=traces,
                model=cfg.policy,
                n=cfg.n_max,
                seed=cfg.seed,
                bf16=cfg.bf16,
                progress=cfg.progress,
            )
        )
    if cfg.prm is not None:
        traces = _score_pool(cfg, traces, out)
    baselines = {}
    for spec in cfg.baselines:
        name, path = spec.split("=", 1)
        baselines[name] = read_scored(path)
    ids, pools, records = build_pools(traces, baselines)
    size = min(len(p) for p in pools)
    n_max = cfg.n_max or size
    if n_max > size:
        raise ConfigError(f"n_max {n_max} is larger than the smallest pool ({size} traces) in {traces}")
    pools = [p[:n_max] for p in pools]
    records = [r[:n_max] for r in records]
    labelled = read_labels(cfg.labels) if cfg.labels else None
    if labelled is not None:
        missing = [r.id for recs in records for r in recs if r.id not in labelled]
        if missing:
            raise ConfigError(f"{cfg.labels}: no labels for trace {missing[0]!r}")
        pools = [
            [replace(c, steps_right=False not in labelled[r.id].labels) for c, r in zip(pool, recs, strict=True)]
            for pool, recs in zip(pools, records, strict=True)
        ]
    selectors = standard_selectors(extra=list(baselines), judge=labelled is not None)
    ns = powers_of_two(n_max)
    curve = accuracy_curve(pools, ns, selectors, trials=cfg.trials, seed=cfg.seed)
    policy_acc = sum(c.correct for p in pools for c in p) / sum(len(p) for p in pools)
    tokens = [c.tokens for p in pools for c in p]
    result = {
        "problems": len(pools),
        "n_max": n_max,
        "trials": cfg.trials,
        "ns": ns,
        "policy_accuracy": policy_acc,
        "mean_tokens_per_candidate": sum(tokens) / len(tokens),
        "selectors": curve,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if labelled is not None:
        result["ranking"] = ranking(records, pools, labelled)
        result["first_errors"] = first_error_kinds([labelled[r.id] for recs in records for r in recs])
    table = markdown_table(ns, curve)
    with atomic_write(out / "bon.json") as f:
        json.dump(result, f, indent=2)
    with atomic_write(out / "bon.md") as f:
        f.write(
            f"Best-of-N accuracy (%), mean ± std over {cfg.trials} draws, {len(pools)} problems; "
            f"policy accuracy {100 * policy_acc:.1f}%\n\n{table}\n{problem_spread(ns, curve)}\n"
        )
    title = f"Best-of-N on {len(pools)} problems (pool {n_max})"
    plot_curve(ns, curve, out / "bon.png", title)
    html_report(
        out / "report.html",
        title=title,
        summary=f"Policy accuracy {100 * policy_acc:.1f}%. Marked: the choice of prm-{cfg.mark} among all "
        f"{n_max} candidates. Accuracy in %, mean ± std over {cfg.trials} random draws of N candidates.",
        table_md=table,
        plot=out / "bon.png",
        problems=_html_problems(pools, records, cfg.mark, cfg.html_problems),
    )
    print(f"prm bon: {len(pools)} problems x {n_max} candidates, {cfg.trials} trials -> {out}/")
    print(table, end="")
    print(problem_spread(ns, curve))
    if "ranking" in result:
        print(ranking_line(result["ranking"]))
        print(errors_line(result["first_errors"]))
        print(kinds_line(result["ranking"]["step_auroc_by_kind"]))
    return result


def errors_line(kinds: dict[str, int]) -> str:
    """The pool's first errors by kind, in one line."""
    total = sum(kinds.values())
    parts = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return f"first errors in the pool by kind (gold labeler): {total} in all" + (f": {parts}" if parts else "")


def problem_spread(ns: list[int], curve: dict, names=("prm-min", "majority", "oracle")) -> str:
    """One line: how far the largest N's figures would move on another set of problems (bootstrap std)."""
    parts = [f"{n} ± {100 * curve[n]['problem_std'][-1]:.1f}" for n in names if n in curve]
    return f"spread over problems at N = {ns[-1]} (bootstrap std, points): " + ", ".join(parts)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def kinds_line(by_kind: dict) -> str:
    """The step AUROC against each kind of first error, in one line."""
    parts = ", ".join(f"{k} {_fmt(v['auroc'])} ({v['count']})" for k, v in by_kind.items())
    return "step AUROC, right steps against the first errors of each kind: " + (parts or "no first errors")


def ranking_line(rk: dict) -> str:
    """The `ranking` figures in one line (printed by prm bon and by the demo)."""
    return (
        f"ranking of all {rk['solutions']} pool solutions by the PRM's min: AUROC {_fmt(rk['steps_right']['auroc']['min'])} "
        f"for the {rk['steps_right']['count']} with no wrong step (some stop before an answer), "
        f"{_fmt(rk['answer_right']['auroc']['min'])} for the {rk['answer_right']['count']} with the right answer; "
        f"step AUROC against the labels {_fmt(rk['step_auroc'])}, calibration error (ECE) {_fmt(rk.get('step_ece'))}"
    )


def ranking(records: list[list[StepRecord]], pools: list[list[Candidate]], labelled: dict[str, StepRecord]) -> dict:
    """How well each PRM aggregate ranks the pool's solutions (all problems together, AUROC): against "no wrong
    step" by the step labels in `labels_path`, and against "right answer"; and the step AUROC of the PRM's scores
    against every labelled step, with their expected calibration error (so the report's colours can be read as
    chances). A best-of-N selector can only be as good as the first ranking, and on a policy
    whose right answers are lucky guesses the two part ways."""
    from prm.eval.calibration import are_probabilities, ece
    from prm.eval.metrics import auroc

    flat = [(r, c) for recs, pool in zip(records, pools, strict=True) for r, c in zip(recs, pool, strict=True)]
    out: dict = {"solutions": len(flat)}
    steps = [(s, y) for r, c in flat for s, y in zip(c.scores, labelled[r.id].labels, strict=True) if y is not None]
    try:
        out["step_auroc"] = auroc([s for s, _ in steps], [y for _, y in steps])
    except ValueError:  # one class only
        out["step_auroc"] = None
    # A calibration error only for probabilities: a training-free likelihood's log-probabilities rank, they do not
    # calibrate.
    probs = bool(steps) and are_probabilities(s for s, _ in steps)
    out["step_ece"] = ece([s for s, _ in steps], [y for _, y in steps]) if probs else None
    # Every right step against each kind's first errors: which mistakes the PRM sees and which it scores as right.
    right = [s for s, y in steps if y]
    wrong: dict[str, list[float]] = {}
    for r, c in flat:
        first = labelled[r.id].first_error()
        if first is not None:
            wrong.setdefault(error_kind(labelled[r.id]), []).append(c.scores[first])
    out["step_auroc_by_kind"] = {
        k: {"auroc": auroc(right + v, [True] * len(right) + [False] * len(v)) if right else None, "count": len(v)}
        for k, v in sorted(wrong.items(), key=lambda kv: -len(kv[1]))
    }
    for name, truth in (
        ("steps_right", [bool(c.steps_right) for _, c in flat]),
        ("answer_right", [c.correct for _, c in flat]),
    ):
        aucs = {}
        for how in AGGREGATES:
            try:
                aucs[how] = auroc([aggregate(c.scores, how) for _, c in flat], truth)
            except ValueError:  # one class only
                aucs[how] = None
        out[name] = {"count": sum(truth), "auroc": aucs}
    return out


def _html_problems(pools, records, how: str, limit: int) -> list[dict]:
    """What report.html shows: per problem its candidates ordered by the marked PRM aggregate."""
    shown = []
    for pool, recs in list(zip(pools, records, strict=True))[:limit]:
        values = [aggregate(c.scores, how) for c in pool]
        best = max(range(len(pool)), key=values.__getitem__)
        votes = Counter(c.answer for c in pool if c.answer is not None)
        order = sorted(range(len(pool)), key=lambda i: -values[i])
        shown.append(
            {
                "problem": recs[0].problem,
                "answer": recs[0].answer,
                "majority": votes.most_common(1)[0][0] if votes else None,
                "candidates": [
                    {
                        "steps": recs[i].steps,
                        "scores": list(pool[i].scores),
                        "score": values[i],
                        "answer": pool[i].answer,
                        "correct": pool[i].correct,
                        "selected": i == best,
                    }
                    for i in order
                ],
            }
        )
    return shown

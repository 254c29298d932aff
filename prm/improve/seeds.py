"""`prm improve-report`: several `prm improve` runs of one recipe with other seeds, summarised as one verdict.

    prm improve-report --runs "[data/out/improve/rounds, data/out/improve/rounds-seed1]" --output data/out/improve/seeds

One run of 48 held-out problems moves by several points with its seed (the samples, the labels, the PRM and every
round's fine-tuning change with it), so a filter's lead in one run says little. This reads each run's improve.json
and its held-out samples and writes, per filter and round, pass@1 per seed and its mean, and the share of right
answers reached through a wrong step with every seed's answers pooled; then, after the last round, each filter
against the baseline filter (outcome): the difference per seed, its mean, and an interval of that mean with the
held-out problems resampled (each problem's difference averaged over the seeds first, so the pairing by problem is
kept). The interval says how far the mean would move on other problems; the per-seed differences say how far it
moves with the seed, which the interval does not cover. Runs must share every setting but the seed (and the output,
progress bars and batch size), and their held-out problems.

Writes seeds.json, seeds.md (also printed) and seeds.png into `output`, with the resolved config beside them.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from prm.config import ConfigError, flat, load_config, save_config, to_dict
from prm.fileio import atomic_write
from prm.improve.config import ImproveConfig, ImproveReportConfig
from prm.improve.report import pct, write_reports
from prm.improve.rounds import by_problem
from prm.records import read_records
from prm.stats import bootstrap_interval

# Settings that change no figure of a run, besides the seed that the runs are meant to differ in.
FREE = {"seed", "output", "progress", "sampling.batch_size"}

__all__ = ["ImproveReportConfig", "load_run", "per_problem", "run", "summarize"]


def load_run(folder: str | Path) -> dict:
    """One finished `prm improve` run: its config, rows (improve.json) and per (filter, round) the held-out
    accuracy of each problem. A folder that is not a finished run stops with a one-line error naming the file."""
    out = Path(folder)
    for name in ("config.yaml", "improve.json"):
        if not (out / name).exists():
            raise ConfigError(f"{out / name}: not found; runs must be finished prm improve outputs")
    cfg = load_config(ImproveConfig, out / "config.yaml")
    rows = json.loads((out / "improve.json").read_text())["rows"]
    accuracy = {}
    for r in rows:
        folder = out / "round0" if r["round"] == 0 else out / r["filter"] / f"round{r['round']}"
        path = folder / "heldout.jsonl"
        if not path.exists():
            raise ConfigError(f"{path}: not found; the run's held-out samples of {r['filter']} round {r['round']}")
        accuracy[(r["filter"], r["round"])] = per_problem(read_records(path))
    return {"folder": str(out), "config": cfg, "rows": rows, "accuracy": accuracy}


def per_problem(traces) -> dict[str, float]:
    """problem id -> the share of its samples with the right answer."""
    return {pid: sum(t.meta["correct"] for t in g) / len(g) for pid, g in by_problem(traces).items()}


def check_same_recipe(runs: Sequence[dict]) -> None:
    """The runs must differ in the seed only (and in what changes no figure) and evaluate the same problems."""
    first = runs[0]
    base = flat(to_dict(first["config"]))
    for other in runs[1:]:
        new = flat(to_dict(other["config"]))
        changed = sorted(k for k in base if k not in FREE and base[k] != new.get(k))
        if changed:
            k = changed[0]
            raise ConfigError(
                f"{other['folder']}: {k} is {new.get(k)!r}, {first['folder']} has {base[k]!r}; "
                "a summary compares runs of one recipe that differ in the seed"
            )
        if set(other["accuracy"]) != set(first["accuracy"]) or set(other["accuracy"][("start", 0)]) != set(
            first["accuracy"][("start", 0)]
        ):
            raise ConfigError(f"{other['folder']}: other rounds or held-out problems than {first['folder']}")
    seeds = [r["config"].seed for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"runs: seeds {seeds} repeat; each seed once")


def summarize(runs: Sequence[dict], baseline: str, margin: float, level: float, boot: int, seed: int) -> dict:
    """Rows per (filter, round) over the seeds, and each filter against `baseline` after the last round (`margin`:
    the lead in points it is meant to reach)."""
    check_same_recipe(runs)
    keys = list(dict.fromkeys((r["filter"], r["round"]) for r in runs[0]["rows"]))
    filters = list(dict.fromkeys(f for f, rnd in keys if rnd > 0))
    if baseline not in filters:
        raise ConfigError(f"baseline: {baseline!r} is not a filter of these runs ({', '.join(filters)})")
    rows = []
    for f, rnd in keys:
        found = [next(r for r in run["rows"] if (r["filter"], r["round"]) == (f, rnd)) for run in runs]
        right = sum(r["right"] for r in found)
        lucky = [r.get("right_with_wrong_step") for r in found]
        rows.append(
            {
                "filter": f,
                "round": rnd,
                "pass@1": [r["pass@1"] for r in found],
                "mean_pass@1": statistics.fmean(r["pass@1"] for r in found),
                "right": right,
                "right_with_wrong_step": None if None in lucky else sum(lucky),
                "wrong_step_share": None if None in lucky or not right else sum(lucky) / right,
            }
        )
    last = max(rnd for _, rnd in keys)
    by_key = {(r["filter"], r["round"]): r for r in rows}
    versus = []
    for f in filters:
        if f == baseline:
            continue
        ours, theirs = by_key[(f, last)]["pass@1"], by_key[(baseline, last)]["pass@1"]
        per_seed = [a - b for a, b in zip(ours, theirs, strict=True)]
        problems = list(runs[0]["accuracy"][(f, last)])
        diffs = [
            statistics.fmean(run["accuracy"][(f, last)][p] - run["accuracy"][(baseline, last)][p] for run in runs)
            for p in problems
        ]
        lo, hi = bootstrap_interval(diffs, level=level, n=boot, seed=seed)
        share, base_share = by_key[(f, last)]["wrong_step_share"], by_key[(baseline, last)]["wrong_step_share"]
        versus.append(
            {
                "filter": f,
                "baseline": baseline,
                "round": last,
                "per_seed": per_seed,
                "mean": statistics.fmean(diffs),
                "interval": [lo, hi],
                "level": level,
                "seeds_at_margin": sum(100 * d >= margin - 1e-9 for d in per_seed),
                "wrong_step_share": share,
                "baseline_wrong_step_share": base_share,
            }
        )
    return {
        "runs": [r["folder"] for r in runs],
        "seeds": [r["config"].seed for r in runs],
        "problems": len(runs[0]["accuracy"][("start", 0)]),
        "eval_k": runs[0]["rows"][0]["k"],
        "margin": margin,
        "rows": rows,
        "versus": versus,
    }


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{pct(x)}%"


def _share_of(row: dict) -> str:
    if row["wrong_step_share"] is None:
        return "-"
    return f"{_share(row['wrong_step_share'])} ({row['right_with_wrong_step']} of {row['right']})"


def markdown(summary: dict) -> str:
    """The rounds table (pass@1 per seed and mean; wrong-step share of all seeds' right answers) and the verdict
    table (each filter minus the baseline after the last round)."""
    seeds = " / ".join(str(s) for s in summary["seeds"])
    lines = [
        f"{_runs(len(summary['seeds']))} (seeds {seeds}), {summary['problems']} held-out problems x "
        f"{summary['eval_k']} samples each; pass@1 in %",
        "",
        f"| filter | round | pass@1, seeds {seeds} | mean pass@1 | right answers with a wrong step (all seeds) |",
        "|---|---:|---|---:|---:|",
    ]
    for r in summary["rows"]:
        per = " / ".join(pct(x) for x in r["pass@1"])
        lines.append(f"| {r['filter']} | {r['round']} | {per} | {pct(r['mean_pass@1'])} | {_share_of(r)} |")
    for v in summary["versus"]:
        lo, hi = v["interval"]
        lines += [
            "",
            f"| after round {v['round']} | per seed | mean | {round(100 * v['level'])}% interval (problems "
            f"resampled) | seeds at {summary['margin']:+g} or more | right answers with a wrong step |",
            "|---|---|---:|---|---:|---|",
            f"| {v['filter']} − {v['baseline']} | {' / '.join(_pts(d) for d in v['per_seed'])} | {_pts(v['mean'])} "
            f"| [{_pts(lo)}, {_pts(hi)}] | {v['seeds_at_margin']} of {len(v['per_seed'])} "
            f"| {_share(v['wrong_step_share'])} against {_share(v['baseline_wrong_step_share'])} |",
        ]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: str | Path) -> None:
    """pass@1 against the round (each seed thin, the mean thick, one colour per filter) and the pooled share of
    right answers with a wrong step; written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = summary["rows"]
    start = [r for r in rows if r["round"] == 0]
    filters = list(dict.fromkeys(r["filter"] for r in rows if r["round"] > 0))
    fig = Figure(figsize=(10, 4), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, name in enumerate(filters):
        line = start + [r for r in rows if r["filter"] == name]
        xs, colour = [r["round"] for r in line], f"C{i}"
        for s in range(len(summary["seeds"])):
            left.plot(xs, [100 * r["pass@1"][s] for r in line], color=colour, alpha=0.35, linewidth=0.8)
        left.plot(xs, [100 * r["mean_pass@1"] for r in line], color=colour, marker="o", linewidth=2.2, label=name)
        shares = [(r["round"], 100 * r["wrong_step_share"]) for r in line if r["wrong_step_share"] is not None]
        if shares:
            right.plot([x for x, _ in shares], [y for _, y in shares], color=colour, marker="o", label=name)
    left.set(xlabel="round", ylabel="held-out pass@1 (%)", title="pass@1: each seed (thin) and the mean")
    right.set(xlabel="round", ylabel="%", title="right answers with a wrong step (all seeds)")
    for ax in (left, right):
        ax.set_xticks(sorted({r["round"] for r in rows}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"prm improve over seeds {', '.join(str(s) for s in summary['seeds'])}")
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png")


def run(cfg: ImproveReportConfig) -> dict:
    runs = [load_run(folder) for folder in cfg.runs]
    summary = summarize(runs, cfg.baseline, cfg.margin, cfg.level, cfg.boot, cfg.seed)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    headline = f"prm improve-report: {_runs(len(runs))} -> {out}/"
    write_reports(out, "seeds", summary, markdown(summary), lambda path: plot(summary, path), headline)
    return summary

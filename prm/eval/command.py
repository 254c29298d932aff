"""`prm eval`: every step-level figure of a scored file in one JSON report, with the position-only floor beside it.

    prm eval --input scored.jsonl --train train.jsonl --val val_scored.jsonl --output report.json

The input is a scored file (`prm.score`: `meta["scores"]`, one per step). The report holds:

- `step`: accuracy and F1 of the wrong-step class at a threshold, and AUROC, over every labeled step;
- `first_error`: AUROC of correct steps against first-error steps, overall and per error kind
  (`meta["error"]["kind"]`, "unknown" when absent), with the counts behind each figure;
- `processbench`: ProcessBench's first-error F1 at a threshold chosen on `--val` (or, without it, on the input
  itself: `in_sample` true, an optimistic figure);
- `calibration`: ECE and a reliability plot PNG beside the output, only when every score is a probability;
- `values`: where steps carry `values` (shares of rollouts that reached the answer, from `prm label --method mc`),
  the scores' calibration as values: ECE, mean absolute error and a `<name>.values.png` reliability plot, also
  for the rollout-valued steps alone (a Q-value model's check against fresh rollouts of held-out prefixes);
- `floor`: the same AUROC figures for the position-only score, fitted on `--train` (or, without it, on the input:
  `in_sample` true, a floor that is if anything too high).

A Markdown table of the main figures is printed. A figure that cannot be computed (e.g. AUROC with one class only) is
null, and `notes` says why.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prm.config import config, option, save_config
from prm.eval.calibration import are_probabilities
from prm.eval.metrics import (
    auroc,
    best_threshold,
    ece,
    f1_wrong,
    first_error_auroc,
    first_error_steps,
    first_error_steps_by_kind,
    labeled_steps,
    position_floor_scores,
    processbench,
    reliability_bins,
    reliability_plot,
    step_accuracy,
)
from prm.fileio import atomic_write
from prm.records import RecordError, StepRecord, iter_json_objects, iter_records, read_records
from prm.score import read_scores


@config("eval")
class EvalConfig:
    input: str = option(help="scored step records: meta.scores, one per step (e.g. from prm score-baseline)")
    output: str = option(help="report JSON; the reliability plot goes beside it as <name>.reliability.png")
    train: str | None = option(None, "labeled records to fit the position-only floor on (null: the input, flagged)")
    val: str | None = option(None, "scored records to choose the ProcessBench threshold on (null: the input, flagged)")
    threshold: float | None = option(
        None, "threshold of step accuracy and wrong-step F1 (null: 0.5 for probabilities, else ProcessBench's)"
    )
    bins: int = option(10, "equal-width bins of the ECE and the reliability plot")
    group_by: str | None = option(
        None,
        "a dotted field of the records (e.g. meta.problem.difficulty) to report the values' calibration by, "
        "over the steps valued by rollouts",
    )

    def __post_init__(self):
        if self.bins < 1:
            raise ValueError("bins must be >= 1")


def read_scored(path: str | os.PathLike) -> tuple[list[StepRecord], list[list[float]]]:
    """Records and their `meta["scores"]`; a missing or malformed score list raises RecordError naming the file, the
    line (the row for Parquet) and the field."""
    records, scores = [], []
    if Path(path).suffix == ".parquet":
        numbered = enumerate(iter_records(path), 1)
    else:
        numbered = ((n, StepRecord.from_dict(obj, path=path, line=n)) for n, obj in iter_json_objects(path))
    for line, r in numbered:
        scores.append(read_scores(r, path=path, line=line))
        records.append(r)
    if not records:
        raise RecordError(path, None, None, "no records")
    return records, scores


def _scorer(records: Sequence[StepRecord]) -> str | list[str] | None:
    names = sorted({r.meta["scorer"] for r in records if isinstance(r.meta.get("scorer"), str)})
    return names[0] if len(names) == 1 else (names or None)


def _maybe(fn, notes: list[str], what: str):
    """fn() or None, noting why (the metrics raise ValueError when a figure is undefined, e.g. one class only)."""
    try:
        return fn()
    except ValueError as e:
        notes.append(f"{what}: {e}")
        return None


def evaluate(
    records: Sequence[StepRecord],
    scores: Sequence[Sequence[float]],
    *,
    train: Sequence[StepRecord] | None = None,
    val: tuple[Sequence[StepRecord], Sequence[Sequence[float]]] | None = None,
    threshold: float | None = None,
    bins: int = 10,
    plot: str | os.PathLike | None = None,
    values_plot: str | os.PathLike | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    """The report of `prm eval` as a dict (see the module docstring). `val` is (records, scores) of a scored
    validation split; `plot` is where the reliability PNG goes, `values_plot` that of the values' calibration
    (None: no plot); `group_by` a dotted record field to break the values' calibration down by. Raises ValueError
    when no step of `records` is labeled."""
    notes: list[str] = []
    s, y = labeled_steps(records, scores)
    if not y.size:
        raise ValueError("no labeled step: nothing to evaluate")
    every = [x for xs in scores for x in xs]
    probabilities = are_probabilities(every)
    report: dict[str, Any] = {
        "scorer": _scorer(records),
        "records": len(records),
        "steps": len(every),
        "labeled_steps": int(y.size),
        "probabilities": probabilities,
    }

    # ProcessBench first: its threshold is also the step threshold of scores that are not probabilities.
    pb: dict[str, Any] | None = None
    source = "val" if val is not None else "input"
    fit_records, fit_scores = val if val is not None else (records, scores)
    chosen = _maybe(lambda: best_threshold(fit_scores, fit_records), notes, f"ProcessBench threshold ({source})")
    if chosen is not None:
        result = _maybe(lambda: processbench(scores, records, chosen[0]), notes, "ProcessBench F1")
        if result is not None:
            pb = {
                "threshold": result.threshold,
                "threshold_from": source,
                "in_sample": val is None,
                f"{source}_f1": chosen[1],
                "f1": result.f1,
                "acc_erroneous": result.acc_erroneous,
                "acc_correct": result.acc_correct,
                "n_erroneous": result.n_erroneous,
                "n_correct": result.n_correct,
                "skipped": result.skipped,
            }
    if val is not None and _scorer(val[0]) != report["scorer"]:
        notes.append(f"--val was scored by {_scorer(val[0])!r}, the input by {report['scorer']!r}")
    report["processbench"] = pb

    if threshold is not None:
        t, t_from = threshold, "--threshold"
    elif probabilities:
        t, t_from = 0.5, "0.5 (scores are probabilities)"
    elif pb is not None:
        t, t_from = pb["threshold"], f"the ProcessBench threshold (chosen on {source})"
    else:
        t, t_from = None, None
        notes.append("step accuracy and F1: scores are not probabilities and no threshold could be chosen; give one")
    n_wrong = int((~y).sum())
    report["step"] = {
        "threshold": t,
        "threshold_from": t_from,
        "accuracy": step_accuracy(s, y, t) if t is not None else None,
        "f1_wrong": f1_wrong(s, y, t) if t is not None and n_wrong else None,
        "auroc": _maybe(lambda: auroc(s, y), notes, "step AUROC"),
        "correct": int(y.sum()),
        "wrong": n_wrong,
    }

    _, fy = first_error_steps(records, scores)
    counts = {"correct": int(fy.sum()), "all": int((~fy).sum())}
    counts |= {kind: int((~ky).sum()) for kind, (_, ky) in first_error_steps_by_kind(records, scores).items()}
    report["first_error"] = {"auroc": first_error_auroc(records, scores), "counts": counts}
    if not report["first_error"]["auroc"]:
        notes.append("first-error AUROC: needs correct steps and first errors")

    if probabilities:
        bin_list = reliability_bins(s, y, bins)
        report["calibration"] = {
            "ece": ece(s, y, bins),
            "plot": None,
            "bins": [
                {"lo": b.lo, "hi": b.hi, "confidence": b.confidence, "accuracy": b.accuracy, "count": b.count}
                for b in bin_list
            ],
        }
        if plot is not None:
            reliability_plot(bin_list, plot, title=f"Reliability of {report['scorer'] or 'scores'}")
            report["calibration"]["plot"] = Path(plot).name
    else:
        report["calibration"] = None
        notes.append("calibration: skipped, scores are not probabilities in [0, 1]")

    # The floor scores the same labeled steps, so a figure undefined for it is undefined above and already noted.
    floor_scores = position_floor_scores(records, train)
    floor_s, floor_y = labeled_steps(records, floor_scores)
    report["floor"] = {
        "fit_on": "train" if train is not None else "input",
        "in_sample": train is None,
        "step_auroc": _maybe(lambda: auroc(floor_s, floor_y), [], "floor step AUROC"),
        "first_error_auroc": first_error_auroc(records, floor_scores),
    }
    report["values"] = (
        value_report(records, scores, bins, values_plot, report["scorer"], group_by) if probabilities else None
    )
    report["notes"] = notes
    return report


def value_report(
    records: Sequence[StepRecord],
    scores: Sequence[Sequence[float]],
    bins: int,
    plot: str | os.PathLike | None,
    scorer: Any = None,
    group_by: str | None = None,
) -> dict[str, Any] | None:
    """Calibration of the scores as values: against each step's `values` (the share of rollouts that reached the
    answer, e.g. `prm label --method mc` with fresh rollouts of held-out prefixes), the ECE, the mean absolute
    error and a reliability plot; separately for the steps whose value came from rollouts (not an answer line,
    whose value is exact), and with `group_by` (a dotted record field) for those steps by the field's value: how
    many, their mean score and mean value, and their ECE. None when no step has a value."""
    s, v, rolled, groups = [], [], [], []
    for r, xs in zip(records, scores, strict=True):
        group = field_at(r, group_by) if group_by else None
        outcomes = r.meta.get("label", {}).get("outcomes") if isinstance(r.meta.get("label"), dict) else None
        for i, (x, val) in enumerate(zip(xs, r.values, strict=False)):
            if val is None:
                continue
            s.append(x)
            v.append(val)
            rolled.append(outcomes[i] is not None if isinstance(outcomes, list) and i < len(outcomes) else True)
            groups.append(group)
    if not s:
        return None
    bin_list = reliability_bins(s, v, bins)
    rs = [x for x, k in zip(s, rolled, strict=True) if k]
    rv = [x for x, k in zip(v, rolled, strict=True) if k]
    out = {
        "steps": len(s),
        "ece": ece(s, v, bins),
        "mae": sum(abs(a - b) for a, b in zip(s, v, strict=True)) / len(s),
        "rollout_steps": len(rs),
        "ece_rollout_steps": ece(rs, rv, bins) if rs else None,
        "mae_rollout_steps": sum(abs(a - b) for a, b in zip(rs, rv, strict=True)) / len(rs) if rs else None,
        "plot": None,
        "group_by": group_by,
        "by_group": _by_group(s, v, rolled, groups, bins) if group_by else None,
        "bins": [
            {"lo": b.lo, "hi": b.hi, "confidence": b.confidence, "value": b.accuracy, "count": b.count}
            for b in bin_list
        ],
    }
    if plot is not None:
        reliability_plot(
            bin_list,
            plot,
            title=f"Values of {scorer or 'scores'} against rollouts",
            xlabel="predicted value (chance of reaching the answer)",
            ylabel="share of rollouts that reached it",
        )
        out["plot"] = Path(plot).name
    return out


def field_at(record: StepRecord, path: str) -> str:
    """The value at a dotted path of a record (`meta.problem.difficulty`), as text; "(missing)" where the path ends.

    >>> field_at(StepRecord("a", "p", ["s"], meta={"problem": {"difficulty": 3}}), "meta.problem.difficulty")
    '3'
    """
    node: Any = record.to_dict()
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return "(missing)"
        node = node[key]
    return str(node)


def _by_group(s, v, rolled, groups, bins: int) -> dict[str, dict[str, Any]]:
    """Count, mean score, mean value and ECE of the rollout-valued steps of each group; groups in numeric order
    where they are numbers of one width (shorter names first), "(missing)" after them."""
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    for x, val, k, g in zip(s, v, rolled, groups, strict=True):
        if k:
            gs, gv = pairs.setdefault(g, ([], []))
            gs.append(x)
            gv.append(val)
    return {
        g: {
            "steps": len(gs),
            "mean_score": sum(gs) / len(gs),
            "mean_value": sum(gv) / len(gv),
            "ece": ece(gs, gv, bins),
        }
        for g, (gs, gv) in sorted(pairs.items(), key=lambda item: (len(item[0]), item[0]))
    }


def _fmt(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def markdown(report: dict[str, Any]) -> str:
    """The main figures as a Markdown table: the scores against the position-only floor."""
    step, fe, floor, pb = report["step"], report["first_error"], report["floor"], report["processbench"]
    counts = fe["counts"]
    floor_from = "train" if not floor["in_sample"] else "the input itself (in-sample)"
    lines = [
        f"| {report['records']} records, {report['labeled_steps']} labeled steps | scores | position floor |",
        "|---|---:|---:|",
        f"| step AUROC | {_fmt(step['auroc'])} | {_fmt(floor['step_auroc'])} |",
    ]
    for kind, value in fe["auroc"].items():
        n = counts.get(kind, 0)
        label = "AUROC correct vs first error" if kind == "all" else f"… {kind}"
        lines.append(
            f"| {label} ({counts['correct']} vs {n}) | {_fmt(value)} | {_fmt(floor['first_error_auroc'].get(kind))} |"
        )
    if step["threshold"] is not None:
        lines.append(f"| step accuracy @ {step['threshold']:.4g} | {_fmt(step['accuracy'])} | – |")
        lines.append(f"| F1 of wrong steps @ {step['threshold']:.4g} | {_fmt(step['f1_wrong'])} | – |")
    if pb is not None:
        where = "val" if not pb["in_sample"] else "the input (in-sample)"
        lines.append(f"| ProcessBench F1 @ {pb['threshold']:.4g} (threshold on {where}) | {_fmt(pb['f1'])} | – |")
    if report["calibration"] is not None:
        lines.append(f"| ECE | {_fmt(report['calibration']['ece'])} | – |")
    if report.get("values"):
        v = report["values"]
        lines.append(f"| ECE against values ({v['steps']} steps) | {_fmt(v['ece'])} | – |")
        if v["rollout_steps"] and v["rollout_steps"] < v["steps"]:
            lines.append(f"| … steps valued by rollouts ({v['rollout_steps']}) | {_fmt(v['ece_rollout_steps'])} | – |")
        for g, row in (v.get("by_group") or {}).items():
            lines.append(
                f"| … {v['group_by']} = {g} ({row['steps']} rollout steps; mean score {row['mean_score']:.3f}, "
                f"rollouts {row['mean_value']:.3f}) | {_fmt(row['ece'])} | – |"
            )
    lines.append(f"\nPosition floor fitted on {floor_from}.")
    return "\n".join(lines)


def run(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate `cfg.input`, write the report JSON (and the reliability PNG) atomically, print the table."""
    records, scores = read_scored(cfg.input)
    train = None
    if cfg.train is not None:
        train = read_records(cfg.train)
        if not any(lab is not None for r in train for lab in r.labels):
            raise RecordError(cfg.train, None, "labels", "no labeled step to fit the position floor on")
    val = read_scored(cfg.val) if cfg.val is not None else None
    out = Path(cfg.output)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    plot = out.with_name(stem + ".reliability.png")
    values_plot = out.with_name(stem + ".values.png")
    try:
        report = evaluate(
            records,
            scores,
            train=train,
            val=val,
            threshold=cfg.threshold,
            bins=cfg.bins,
            plot=plot,
            values_plot=values_plot,
            group_by=cfg.group_by,
        )
    except ValueError as e:
        raise RecordError(cfg.input, None, "labels", str(e)) from None
    report = {"input": cfg.input, "train": cfg.train, "val": cfg.val} | report
    with atomic_write(out) as f:
        json.dump(report, f, indent=2, allow_nan=False)
        f.write("\n")
    save_config(cfg, out)
    print(markdown(report))
    for note in report["notes"]:
        print(f"note: {note}")
    plots = ([f"reliability plot in {plot}"] if report["calibration"] else []) + (
        [f"values plot in {values_plot}"] if report["values"] else []
    )
    print(f"prm eval: report in {out}" + "".join(f", {x}" for x in plots))
    return report

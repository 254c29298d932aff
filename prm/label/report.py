"""`prm label-report`: how good is each labeler? Every method against `gold` on synthetic traces.

    prm label-report --config configs/label-report.yaml --n 100 --methods calc,mc,binary

Per method: step accuracy and F1 of `false` steps (on the steps both it and gold label), coverage (the share of
gold-labeled steps it labels at all), first-error accuracy (same first error as gold, or both none), and the budget
per trace (rollouts, generated tokens). Per consensus pair a+b: the share of traces where b agrees with a on the first
error (retention) and a's first-error accuracy on those, beside a's on all. Traces made here (input null) are
`prm synth` solutions, `corrupt` of them with one injected error; the report then also checks gold against the
injected error's position.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from prm.answers import answers_equal, extract_answer
from prm.config import save_config
from prm.eval.metrics import f1_wrong, step_accuracy
from prm.fileio import atomic_write
from prm.label.base import ROLLOUT_METHODS, Labeled, LabelOptions, first_error
from prm.label.completer import Completer, close_completer, make_completer
from prm.label.config import LabelReportConfig
from prm.label.consensus import agree
from prm.label.gold import label_gold
from prm.label.methods import label_batch
from prm.records import StepRecord, read_records


def synth_traces(
    n: int,
    seed: int,
    min_steps: int,
    max_steps: int,
    corrupt: float,
    arithmetic: str = "plain",
    max_value: int | None = None,
    max_result: int | None = None,
) -> list[StepRecord]:
    """`prm synth` test-split solutions shaped as `prm generate` traces (id `<problem>/0`, meta.problem = the problem's
    meta); a corrupted one keeps its injected error in meta["error"] (kind, step). max_value/max_result None keep
    `prm synth`'s number range."""
    from prm.synth import SynthConfig, generate

    out = []
    numbers = {k: v for k, v in (("max_value", max_value), ("max_result", max_result)) if v is not None}
    cfg = SynthConfig(
        n=n,
        seed=seed,
        split="test",
        min_steps=min_steps,
        max_steps=max_steps,
        corrupt=corrupt,
        arithmetic=arithmetic,
        **numbers,
    )
    for r in generate(cfg):
        problem = {k: v for k, v in r.meta.items() if k not in ("error", "written_chain")}
        prediction = extract_answer(r.steps[-1])
        meta = {"problem_id": r.id, "sample": 0, "prediction": prediction}
        meta |= {"correct": answers_equal(prediction, r.answer), "tokens": 0, "stop": "answer", "problem": problem}
        if "error" in r.meta:
            meta["error"] = r.meta["error"]
        out.append(StepRecord(f"{r.id}/0", r.problem, list(r.steps), answer=r.answer, source="synth", meta=meta))
    return out


def label_all(
    method: str,
    traces: Sequence[StepRecord],
    completer: Completer | None,
    opts: LabelOptions,
    batch: int,
    progress: str | None = None,
) -> list[Labeled]:
    """Label `traces` `batch` at a time; `progress` names a bar on stderr (none when None)."""
    from tqdm import tqdm

    out: list[Labeled] = []
    with tqdm(total=len(traces), desc=progress, disable=progress is None, unit="trace", mininterval=5.0) as bar:
        for b in range(0, len(traces), batch):
            out += label_batch(method, traces[b : b + batch], completer, opts)
            bar.update(len(traces[b : b + batch]))
    return out


def compare(labeled: Sequence[Labeled], gold: Sequence[Labeled]) -> dict:
    """A labeler's figures against gold (see the module doc); NaN-free: empty sets give None."""
    pairs = [
        (m, g)
        for lab, ref in zip(labeled, gold, strict=True)
        for m, g in zip(lab.labels, ref.labels, strict=True)
        if g is not None
    ]
    both = [(m, g) for m, g in pairs if m is not None]
    scores, labels = [1.0 if m else 0.0 for m, _ in both], [g for _, g in both]
    n = len(labeled)
    return {
        "step_accuracy": step_accuracy(scores, labels, 0.5) if both else None,
        "coverage": len(both) / len(pairs) if pairs else None,
        "f1_false": f1_wrong(scores, labels, 0.5) if both else None,
        "first_error_accuracy": sum(
            first_error(a.labels) == first_error(g.labels) for a, g in zip(labeled, gold, strict=True)
        )
        / n,
        "rollouts_per_trace": sum(x.info.get("rollouts", 0) for x in labeled) / n,
        "tokens_per_trace": sum(x.info.get("tokens", 0) for x in labeled) / n,
    }


def consensus_row(a: Sequence[Labeled], b: Sequence[Labeled], gold: Sequence[Labeled]) -> dict:
    kept = [i for i in range(len(a)) if agree(a[i].labels, b[i].labels)]
    right = [first_error(a[i].labels) == first_error(gold[i].labels) for i in range(len(a))]
    return {
        "retention": len(kept) / len(a),
        "first_error_accuracy_kept": sum(right[i] for i in kept) / len(kept) if kept else None,
        "first_error_accuracy_all": sum(right) / len(a),
    }


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) and abs(x) < 10 else f"{x:,.1f}"


def table(report: dict) -> str:
    cols = ("step_accuracy", "coverage", "first_error_accuracy", "f1_false", "rollouts_per_trace", "tokens_per_trace")
    lines = [
        "| method | step acc | coverage | first-error acc | F1 false | rollouts/trace | tokens/trace | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, row in report["methods"].items():
        lines.append(f"| {m} | " + " | ".join(_fmt(row[c]) for c in cols) + f" | {row['seconds']:.1f} |")
    if report["consensus"]:
        lines += [
            "",
            "| consensus | retention | first-error acc (kept) | first-error acc (all) |",
            "|---|---:|---:|---:|",
        ]
        for pair, row in report["consensus"].items():
            lines.append(
                f"| {pair} | {_fmt(row['retention'])} | {_fmt(row['first_error_accuracy_kept'])} "
                f"| {_fmt(row['first_error_accuracy_all'])} |"
            )
    return "\n".join(lines)


def run(cfg: LabelReportConfig) -> dict:
    if cfg.input:
        traces = read_records(cfg.input)
    else:
        traces = synth_traces(cfg.n, cfg.seed, cfg.min_steps, cfg.max_steps, cfg.corrupt)
    opts = cfg.options()
    gold = [label_gold(t, cfg.after_error) for t in traces]
    needs = any(m in ROLLOUT_METHODS for m in cfg.methods)
    completer = make_completer(cfg, traces) if needs else None
    labeled, methods = {}, {}
    try:
        for m in cfg.methods:
            t0 = time.perf_counter()
            labeled[m] = label_all(m, traces, completer, opts, cfg.traces_per_batch, m if cfg.progress else None)
            methods[m] = compare(labeled[m], gold) | {"seconds": time.perf_counter() - t0}
    finally:
        close_completer(completer)
    consensus = {}
    for pair in cfg.consensus:
        a, _, b = pair.partition("+")
        consensus[pair] = consensus_row(labeled[a], gold if b == "gold" else labeled[b], gold)
    report = {"traces": len(traces), "input": cfg.input or "synthetic", "methods": methods, "consensus": consensus}
    injected = [t for t in traces if t.source == "synth"]
    if injected:
        hits = sum(
            first_error(g.labels) == (t.meta.get("error") or {}).get("step")
            for t, g in zip(traces, gold, strict=True)
            if t.source == "synth"
        )
        report["gold_matches_injected_error"] = hits / len(injected)
    text = table(report)
    with atomic_write(cfg.output) as f:
        json.dump(report, f, indent=2)
    with atomic_write(Path(cfg.output).with_suffix(".md")) as f:
        f.write(text + "\n")
    save_config(cfg, cfg.output)
    print(text)
    if "gold_matches_injected_error" in report:
        print(f"\ngold finds the injected error (or none) on {report['gold_matches_injected_error']:.1%} of traces")
    print(f"wrote {cfg.output}")
    return report

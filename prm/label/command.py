"""`prm label`: label traces batch by batch, appending each batch's records as it finishes.

Resumable and safe: records are appended with `prm.records.ResumableWriter` (one write and fsync per batch), a
killed run (SIGKILL included) leaves whole records only, and rerunning the same command skips the traces already
written and labels the rest in input order. Rollouts depend only on (seed, trace, prefix, rollout index), so the
final file is byte for byte the file of an uninterrupted run. Rerunning with settings that change labels (method, k,
seed, model, ...) on an existing output is refused; batch sizes, device, limit and progress may change.

Beside the output: the resolved config (`.config.yaml`), a summary (`.summary.json`: records, budget, label counts,
consensus retention) and, with `consensus`, the agreeing records (`.consensus.jsonl`).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from prm.config import check_resumable, save_config, to_dict
from prm.fileio import atomic_write
from prm.label.base import ROLLOUT_METHODS, to_record
from prm.label.completer import close_completer, make_completer
from prm.label.config import LabelConfig
from prm.label.consensus import consensus_info
from prm.label.methods import label_batch
from prm.records import ResumableWriter, iter_records, read_records, write_records

# Fields that do not change a single output byte: they may differ between a run and its resumption.
FREE_FIELDS = {"limit", "progress", "traces_per_batch", "sampling.batch_size", "device"}


def summarize(path: str | Path) -> dict:
    """Figures of a whole labeled file (so a resumed run reports the same as an uninterrupted one)."""
    n, rollouts, tokens, with_error, kept = 0, 0, 0, 0, 0
    labels: Counter = Counter()
    outcomes: Counter = Counter()
    consensus = None
    for r in iter_records(path):
        info = r.meta.get("label", {})
        n += 1
        second = info.get("consensus", {})
        rollouts += info.get("rollouts", 0) + second.get("rollouts", 0)
        tokens += info.get("tokens", 0) + second.get("tokens", 0)
        labels.update({True: "true", False: "false", None: "null"}[x] for x in r.labels)
        with_error += r.first_error() is not None
        outcomes.update("".join(o for o in info.get("outcomes", []) if o))
        if "consensus" in info:
            consensus = info["consensus"]["method"]
            kept += info["consensus"]["agree"]
    out = {
        "records": n,
        "rollouts": rollouts,
        "tokens": tokens,
        "rollouts_per_trace": rollouts / n if n else 0.0,
        "tokens_per_trace": tokens / n if n else 0.0,
        "labels": {k: labels[k] for k in ("true", "false", "null")},
        "with_error": with_error / n if n else 0.0,
        # shares among the primary method's rollouts: a completer that never answers shows up here first
        "rollouts_correct": outcomes["1"] / sum(outcomes.values()) if outcomes else None,
        "rollouts_without_answer": outcomes["-"] / sum(outcomes.values()) if outcomes else None,
    }
    if consensus is not None:
        out["consensus"] = {"method": consensus, "kept": kept, "retention": kept / n if n else 0.0}
    return out


def run(cfg: LabelConfig) -> dict:
    traces = read_records(cfg.input)[: cfg.limit]
    check_resumable(cfg, cfg.output, FREE_FIELDS)
    save_config(cfg, cfg.output)
    writer = ResumableWriter(cfg.output, unit=lambda d: d["id"])
    todo = [t for t in traces if t.id not in writer.done]
    needs_rollouts = cfg.method in ROLLOUT_METHODS or cfg.consensus in ROLLOUT_METHODS
    completer = make_completer(cfg, traces) if todo and needs_rollouts else None
    opts = cfg.options()
    t0 = last_line = time.perf_counter()
    new_rollouts = 0
    try:
        with writer:
            for b in range(0, len(todo), cfg.traces_per_batch):
                batch = todo[b : b + cfg.traces_per_batch]
                labeled = label_batch(cfg.method, batch, completer, opts)
                if cfg.consensus != "none":
                    second = label_batch(cfg.consensus, batch, completer, opts)
                    for lab, sec in zip(labeled, second, strict=True):
                        lab.info["consensus"] = consensus_info(cfg.consensus, lab.labels, sec.labels, sec.info)
                writer.write_unit([to_record(t, lab) for t, lab in zip(batch, labeled, strict=True)])
                new_rollouts += sum(
                    lab.info["rollouts"] + lab.info.get("consensus", {}).get("rollouts", 0) for lab in labeled
                )
                # Labelers without rollouts finish thousands of traces a second: a line per batch would flood the
                # log, so they report at most every 5 seconds.
                now = time.perf_counter()
                if cfg.progress and (needs_rollouts or now - last_line >= 5.0):
                    last_line = now
                    done = len(traces) - len(todo) + b + len(batch)
                    secs = now - t0
                    print(
                        f"prm label: {done}/{len(traces)} traces, {new_rollouts} rollouts, {secs:.0f} s",
                        file=sys.stderr,
                    )
    finally:
        close_completer(completer)
    secs = time.perf_counter() - t0
    summary = {"method": cfg.method, **summarize(cfg.output)}
    if cfg.consensus != "none":
        kept = [r for r in iter_records(cfg.output) if r.meta["label"]["consensus"]["agree"]]
        write_records(kept, Path(cfg.output).with_suffix(".consensus.jsonl"))
    summary["this_run"] = {"new_records": len(todo), "rollouts": new_rollouts, "seconds": round(secs, 2)}
    summary["config"] = to_dict(cfg)
    prompt = ("shots", "system")  # long, and in the saved config beside the output
    summary["config"]["sampling"] = {k: v for k, v in summary["config"]["sampling"].items() if k not in prompt}
    with atomic_write(Path(cfg.output).with_suffix(".summary.json")) as f:
        json.dump(summary, f, indent=2)
    print(_line(cfg, summary, len(traces) - len(todo)))
    return summary


def _line(cfg: LabelConfig, s: dict, resumed: int) -> str:
    lab = s["labels"]
    text = (
        f"prm label: {cfg.method} labeled {s['records']} traces to {cfg.output}"
        + (f" ({resumed} already there)" if resumed else "")
        + f" in {s['this_run']['seconds']:.1f} s: {s['rollouts']:,} rollouts ({s['rollouts_per_trace']:.1f} per trace), "
        f"{s['tokens']:,} tokens; labels {lab['true']} true / {lab['false']} false / {lab['null']} null; "
        f"{s['with_error']:.0%} with an error"
    )
    if s.get("rollouts_without_answer"):
        text += f"; {s['rollouts_without_answer']:.0%} of rollouts wrote no answer"
    if "consensus" in s:
        c = s["consensus"]
        text += f"; consensus with {c['method']} keeps {c['kept']}/{s['records']} ({c['retention']:.0%})"
    return text

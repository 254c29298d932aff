"""Labeler figures (issue 4): rollouts per trace of mc, mc with early stop and binary at two problem lengths, their
first-error agreement with gold, and mc's hard-label accuracy against gold at K = 1, 2, 4, 8.

    prm bench --config configs/bench.yaml --suites label      # sizes from configs/label-bench.yaml
    prm label-bench --config configs/label-bench.yaml --n 20  # this suite alone

Traces are `prm synth` test-split solutions, `corrupt` of them with one injected error, so gold is exact. Per length,
one mc run with K = max(ks) rollouts of every prefix draws all samples from the completer (the embedded model by
default). The other labelers REPLAY them: rollout i of prefix p of trace t is the same sample whichever labeler asks
for it. Their budgets are counted exactly as they request, their decisions are made on the same samples (a paired
comparison), and the model runs once. Accuracy at K = k reads the first k rollouts of each prefix.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from prm.bench import row, table
from prm.config import config, load_config, option, save_config
from prm.fileio import atomic_write
from prm.generate.engine import Sampling
from prm.label.base import Labeled, LabelOptions, apply_convention
from prm.label.completer import Rollout, close_completer, make_completer, parse_key
from prm.label.config import HELP, check_completer
from prm.label.gold import label_gold
from prm.label.report import compare, label_all, synth_traces

YAML = Path(__file__).resolve().parents[2] / "configs" / "label-bench.yaml"


@config("label-bench")
class LabelBenchConfig:
    n: int = option(200, "traces per length")
    lengths: tuple[str, ...] = option(("2-4", "6-8"), "problem lengths, 'min-max' operations each")
    corrupt: float = option(0.5, "share of traces with one injected error")
    max_value: int | None = option(None, "largest number in the problems (null: prm synth's default)")
    max_result: int | None = option(None, "largest intermediate value in the problems (null: prm synth's default)")
    ks: tuple[int, ...] = option((1, 2, 4, 8), "K values of the accuracy curve; the largest is every labeler's K")
    after_error: Literal["null", "false"] = option("null", HELP["after_error"])
    traces_per_batch: int = option(16, HELP["traces_per_batch"])
    completer: str = option("model", HELP["completer"])
    model: str = option("smollm2-135m", HELP["model"])
    device: str = option("auto", HELP["device"])
    seed: int = option(0, HELP["seed"] + "; also the seed of the problems")
    bf16: bool = option(True, HELP["bf16"])
    sampling: Sampling = option(Sampling(), HELP["sampling"])
    output: str = option("bench/out/label.json", "JSON results of `prm label-bench` (a table is printed too)")
    progress: bool = option(True, "progress bar of the rollouts on stderr")

    def __post_init__(self) -> None:
        check_completer(self)
        if self.n < 1 or not self.ks or min(self.ks) < 1:
            raise ValueError("n and every K must be >= 1")
        for length in self.lengths:
            lo, _, hi = length.partition("-")
            if not (lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 8):
                raise ValueError(f"lengths: {length!r} is not 'min-max' with 1 <= min <= max <= 8")
        LabelOptions(max(self.ks), "soft", False, self.after_error)


def _span(length: str) -> tuple[int, int]:
    lo, _, hi = length.partition("-")
    return int(lo), int(hi)


class Recorder:
    """Passes calls to a completer and keeps every rollout by (trace id, prefix length, rollout index)."""

    def __init__(self, completer):
        self.completer, self.store, self.seconds = completer, {}, 0.0

    def complete(self, requests, k, keys):
        t0 = time.perf_counter()
        out = self.completer.complete(requests, k, keys)
        self.seconds += time.perf_counter() - t0
        for key, row_ in zip(keys, out, strict=True):
            trace_id, prefix_len, start = parse_key(key)
            for j, r in enumerate(row_):
                self.store[(trace_id, prefix_len, start + j)] = r
        return out


class Replay:
    """A completer that answers from a Recorder's store (the same sample for the same rollout index)."""

    def __init__(self, store: dict[tuple[str, int, int], Rollout]):
        self.store = store

    def complete(self, requests, k, keys):
        out = []
        for key in keys:
            trace_id, prefix_len, start = parse_key(key)
            out.append([self.store[(trace_id, prefix_len, start + j)] for j in range(k)])
        return out


def labels_at(mc: Labeled, k: int, after_error: str) -> Labeled:
    """mc's hard labels had it drawn only the first k rollouts of each prefix (answer lines stay exact)."""
    reach = [v == 1.0 if o is None else "1" in o[:k] for o, v in zip(mc.info["outcomes"], mc.values, strict=True)]
    return Labeled(apply_convention(reach, after_error), [None] * len(reach), {"rollouts": 0})


def _length_rows(cfg: LabelBenchConfig, length: str, traces, completer, kmax: int) -> list[dict]:
    """The rows of one problem length: every labeler against gold on the same recorded rollouts."""
    rows = []
    lo, _ = _span(length)
    gold = [label_gold(t, cfg.after_error) for t in traces]
    recorder = Recorder(completer)
    opts = LabelOptions(kmax, "soft", False, cfg.after_error)
    bar = f"mc K={kmax}, {length} steps" if cfg.progress else None
    mc = label_all("mc", traces, recorder, opts, cfg.traces_per_batch, bar)
    replay = Replay(recorder.store)
    runs = {f"mc K={kmax}": mc}
    for name, method, mode, early in (
        ("mc + early stop", "mc", "hard", True),
        ("binary", "binary", "soft", False),
        ("binary + early stop", "binary", "hard", True),
    ):
        opts = LabelOptions(kmax, mode, early, cfg.after_error)
        runs[name] = label_all(method, traces, replay, opts, cfg.traces_per_batch)
    figures = {name: compare(labeled, gold) for name, labeled in runs.items()}
    tag = f"{length} steps, n={len(traces)}"
    full = figures[f"mc K={kmax}"]
    for name, f in figures.items():
        goal, met = "", None
        if name == "binary" and lo >= 6:
            goal, met = (
                f"<= {full['rollouts_per_trace'] / 2:.1f} (1/2 of mc)",
                f["rollouts_per_trace"] <= full["rollouts_per_trace"] / 2,
            )
        rows.append(row(f"label {tag}: {name} rollouts/trace", f["rollouts_per_trace"], "rollouts", goal, met))
    for name, f in figures.items():
        goal, met = "", None
        if name.startswith("binary"):
            floor = full["first_error_accuracy"] - 0.02
            goal, met = f">= {floor:.3f} (mc - 2 pts)", f["first_error_accuracy"] >= floor
        rows.append(
            row(
                f"label {tag}: {name} first-error agreement with gold",
                f["first_error_accuracy"],
                "share",
                goal,
                met,
            )
        )
    for k in sorted(cfg.ks):
        at_k = compare([labels_at(m, k, cfg.after_error) for m in mc], gold)
        rows.append(
            row(
                f"label {tag}: mc hard-label step accuracy vs gold, K={k}",
                at_k["step_accuracy"] or 0.0,
                "share",
            )
        )
    tokens = sum(r.tokens for r in recorder.store.values())
    rate = tokens / recorder.seconds if recorder.seconds > 0 else 0.0
    rows.append(row(f"label {tag}: completer throughput ({len(recorder.store):,} rollouts)", rate, "tokens/s"))
    return rows


def measure(cfg: LabelBenchConfig) -> list[dict]:
    rows, kmax = [], max(cfg.ks)
    sets = {
        length: synth_traces(
            cfg.n, cfg.seed, *_span(length), cfg.corrupt, max_value=cfg.max_value, max_result=cfg.max_result
        )
        for length in cfg.lengths
    }
    completer = make_completer(cfg, [t for traces in sets.values() for t in traces])
    try:
        for length, traces in sets.items():
            rows += _length_rows(cfg, length, traces, completer, kmax)
    finally:
        close_completer(completer)
    return rows


def load_bench_config() -> LabelBenchConfig:
    """configs/label-bench.yaml when the checkout has it, else the defaults."""
    return load_config(LabelBenchConfig, YAML) if YAML.exists() else LabelBenchConfig()


def run(cfg) -> list[dict]:
    """The `label` suite of `prm bench` (its own sizes come from configs/label-bench.yaml)."""
    return measure(load_bench_config())


def main(cfg: LabelBenchConfig) -> list[dict]:
    """`prm label-bench`: this suite alone, with its config from the command line."""
    rows = measure(cfg)
    with atomic_write(cfg.output) as f:
        json.dump({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}, f, indent=2)
    save_config(cfg, cfg.output)
    print(table(rows))
    print(f"\nwrote {cfg.output}")
    return rows

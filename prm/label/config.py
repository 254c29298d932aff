"""The configs of `prm label` and `prm label-report`. Both roll out with the same completer fields, documented once
in HELP; `prm.label.completer.make_completer` reads them."""

from __future__ import annotations

from typing import Literal

from prm.config import config, option
from prm.generate.engine import Sampling
from prm.label.base import METHODS, LabelOptions

HELP = {
    "k": "rollouts per prefix (mc) or per probed prefix (binary)",
    "mode": "soft: every rolled-out prefix gets all k rollouts and a value (fraction correct); "
    "hard: labels only (values only where exact), which allows early_stop",
    "early_stop": "mode hard only: a prefix stops at its first correct rollout (rounds of 1, 1, 2, 4, ... rollouts)",
    "after_error": "label of the steps after the first error: null (unlabeled) or false",
    "traces_per_batch": "traces labeled together: all their prefixes go to the completer in one call per round, "
    "and their records are appended (and flushed) together",
    "completer": "who writes rollouts: model (the causal LM `model`), or python:MODULE:FACTORY[:ARG] (FACTORY(ARG, "
    "traces) from your own code returns one: another engine's client, or the tests' scripted fake)",
    "model": "completer model: a local folder, a hub id, or smollm2-135m (the embedded model)",
    "device": "auto (cuda when available, else cpu), cpu or cuda",
    "seed": "seed; a rollout depends only on (seed, trace id, prefix length, rollout index), never on the batch",
    "bf16": "bf16 weights and autocast for the completer model (fp32 otherwise)",
    "sampling": "how the completer model samples rollouts (prm.generate.engine): engine, batch, prompt; a rollout "
    "stops at its answer line",
}


def check_completer(cfg) -> None:
    """Checks of the completer and batching fields shared by the configs that roll out (pure: no I/O)."""
    if cfg.traces_per_batch < 1:
        raise ValueError("traces_per_batch must be >= 1")
    if cfg.completer != "model" and not cfg.completer.startswith("python:"):
        raise ValueError(f"completer must be 'model' or 'python:MODULE:FACTORY[:ARG]', got {cfg.completer!r}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {cfg.device!r}")


@config("label")
class LabelConfig:
    """`prm label` turns traces into step records with per-step labels and values."""

    input: str = option(help="traces to label: step records from `prm generate` (or `prm synth` records)")
    output: str = option(help="labeled step records (JSONL); rerunning the same command resumes an interrupted run")
    method: Literal["gold", "calc", "mc", "binary", "outcome"] = option(
        "mc",
        "gold (synthetic traces: exact), calc (checks arithmetic), mc (Math-Shepherd rollouts), binary (first-error "
        "search), outcome (every prefix valued by its own trace's answer: a one-rollout Q estimate, no sampling)",
    )
    k: int = option(8, HELP["k"])
    mode: Literal["soft", "hard"] = option("soft", HELP["mode"])
    early_stop: bool = option(False, HELP["early_stop"])
    after_error: Literal["null", "false"] = option("null", HELP["after_error"])
    consensus: Literal["none", "gold", "calc", "mc", "binary"] = option(
        "none",
        "a second method; each record notes whether it agrees on the first error, and the agreeing records are "
        "also written to <output>.consensus.jsonl with the retention in the summary (mc and binary use the same "
        "rollout keys, so as a pair they decide on the same samples)",
    )
    limit: int | None = option(None, "label only the first `limit` traces")
    traces_per_batch: int = option(16, HELP["traces_per_batch"])
    completer: str = option("model", HELP["completer"])
    model: str = option("smollm2-135m", HELP["model"])
    device: str = option("auto", HELP["device"])
    seed: int = option(0, HELP["seed"])
    bf16: bool = option(True, HELP["bf16"])
    sampling: Sampling = option(Sampling(), HELP["sampling"])
    progress: bool = option(True, "print a progress line per batch on stderr")

    def __post_init__(self) -> None:
        check_completer(self)
        self.options()  # raises on a bad k / mode / early_stop / after_error
        if self.consensus == self.method:
            raise ValueError(f"consensus must name another method than {self.method}")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must be >= 0")

    def options(self) -> LabelOptions:
        return LabelOptions(self.k, self.mode, self.early_stop, self.after_error)


@config("label-report")
class LabelReportConfig:
    """`prm label-report` runs labelers on synthetic traces and measures each against `gold`."""

    input: str | None = option(
        None, "synthetic traces (meta.problem.chain, e.g. prm generate on prm synth problems); null = make them here"
    )
    output: str = option("data/out/label-report.json", "JSON report; the table is printed and written beside it (.md)")
    progress: bool = option(True, "a progress bar per method on stderr")
    n: int = option(200, "traces to make when input is null: prm synth solutions, `corrupt` of them with one error")
    min_steps: int = option(2, "fewest operations of the made problems")
    max_steps: int = option(4, "most operations of the made problems")
    corrupt: float = option(0.5, "share of made solutions with one injected error")
    methods: tuple[str, ...] = option(("calc", "mc", "binary"), f"methods measured against gold, from {METHODS}")
    consensus: tuple[str, ...] = option(
        ("mc+calc", "mc+binary"), "pairs 'a+b' (a, b in methods): retention and accuracy of a's records b agrees with"
    )
    k: int = option(8, HELP["k"])
    mode: Literal["soft", "hard"] = option("soft", HELP["mode"])
    early_stop: bool = option(False, HELP["early_stop"])
    after_error: Literal["null", "false"] = option("null", HELP["after_error"])
    traces_per_batch: int = option(16, HELP["traces_per_batch"])
    completer: str = option("model", HELP["completer"])
    model: str = option("smollm2-135m", HELP["model"])
    device: str = option("auto", HELP["device"])
    seed: int = option(0, HELP["seed"] + "; also the seed of the made problems")
    bf16: bool = option(True, HELP["bf16"])
    sampling: Sampling = option(Sampling(), HELP["sampling"])

    def __post_init__(self) -> None:
        check_completer(self)
        self.options()  # raises on a bad k / mode / early_stop / after_error
        unknown = [m for m in self.methods if m not in METHODS or m == "gold"]
        if unknown or not self.methods:
            raise ValueError(f"methods: {unknown or 'none'}; choose from calc, mc, binary (gold is the reference)")
        for pair in self.consensus:
            a, _, b = pair.partition("+")
            if a not in self.methods or b not in (*self.methods, "gold") or a == b:
                raise ValueError(f"consensus pair {pair!r} must be 'a+b' with a, b two of the methods")
        if self.n < 1 or not 1 <= self.min_steps <= self.max_steps or not 0 <= self.corrupt <= 1:
            raise ValueError("need n >= 1, 1 <= min_steps <= max_steps and corrupt in [0, 1]")

    def options(self) -> LabelOptions:
        return LabelOptions(self.k, self.mode, self.early_stop, self.after_error)

"""`prm bench`: speed and quality figures, measured side by side on this machine, written as JSON plus a table.

Benchmarks are never timed tests: a slow CI machine must not fail the test suite, and a figure only means something
next to its reference measured in the same run. Each suite returns rows {name, value, unit, goal, met}.

    prm bench --config configs/bench.yaml --suites data
"""

from __future__ import annotations

import importlib
import json
import platform
import time
from pathlib import Path

from prm.config import config, option, save_config
from prm.fileio import atomic_write

# suite name -> module under prm.bench exposing `run(cfg) -> list[dict]`
SUITES = {
    "data": "prm.bench.data",
    "generate": "prm.bench.generate",
    "label": "prm.bench.label",
    "prm": "prm.bench.prm_quality",
    "scoring": "prm.bench.scoring",
    "serve": "prm.bench.serve",
    "trl": "prm.bench.trl_compare",
    "vllm": "prm.bench.engines",
}


@config("bench")
class BenchConfig:
    suites: tuple[str, ...] = option(("data", "generate"), f"benchmark suites to run, from: {', '.join(SUITES)}")
    output: str = option("bench/out/results.json", "JSON file for the results (a table is printed too)")
    synth_n: int = option(50_000, "problems generated for the synth throughput figure")
    records_n: int = option(100_000, "records for the validation throughput figure")
    repeats: int = option(3, "timed repetitions; the best is reported (least disturbed by other processes)")
    generate_problems: int = option(100, "generate suite: synthetic 2-3 step test problems")
    generate_n: int = option(8, "generate suite: samples per problem")
    reference_problems: int = option(3, "generate suite: prompts for the model.generate reference (32 samples each)")
    prm_base: str = option("smollm2-135m", "prm suite: backbone")
    prm_train: int = option(2000, "prm suite: training traces (matched pairs: half correct)")
    prm_val: int = option(100, "prm suite: validation traces for the learning curve")
    prm_test: int = option(400, "prm suite: held-out test traces (half with one injected error)")
    prm_tokens: int | None = option(300_000, "prm suite: training-token budget (about 16 CPU-minutes here)")
    prm_epochs: float = option(2.0, "prm suite: passes over the training traces at most")
    prm_eval_every: int = option(25, "prm suite: optimizer steps between learning-curve points")
    prm_readout: str = option("head", "prm suite: head | tokens")
    prm_features: bool = option(True, "prm suite: likelihood features in the readout")
    prm_batch_tokens: int = option(512, "prm suite: tokens per optimizer step (fewer: more, smaller steps)")
    prm_feature_set: str = option("operation", "prm suite: likelihood features, equation | operation | calc | step")
    prm_features_from: str = option("adapted", "prm suite: likelihood features from the adapted pass or the base")
    prm_seed: int = option(0, "prm suite: seed of the synthetic data")
    prm_phrasing: str = option(
        "train", "prm suite: phrasing families of the training traces (train, or one family such as story)"
    )
    prm_best_of: int = option(100, "prm suite: held-out-family best-of-4 sets (1 right + 3 wrong solutions each)")
    scoring_traces: int = option(64, "scoring suite: traces per step count (and in the synthetic 16-trace pools)")
    scoring_pool: str | None = option(
        None, "scoring suite: also time this pool of traces, e.g. data/out/demo/pool.jsonl"
    )
    serve_model: str | None = option(None, "serve suite: PRM folder to serve; null: an untrained one on prm_base")
    serve_traces: int = option(128, "serve suite: synthetic 2-4-step traces, scored by prm score and sent as requests")
    serve_requests: int = option(128, "serve suite: one-trace requests per concurrency level")
    serve_bf16: bool = option(False, "serve suite: bf16 autocast on both sides")
    trl_batch: int = option(8, "trl suite: records per batch, both trainers")
    trl_max_length: int = option(512, "trl suite: tokens per record at most, both trainers")
    trl_lr: float = option(5e-4, "trl suite: peak learning rate of both LoRA runs (TRL's 1e-5 default is for full FT)")
    trl_epochs: float = option(1.0, "trl suite: passes over the prm_train traces (same optimizer steps for both)")
    trl_progress: bool = option(True, "trl suite: progress bars of both trainers on stderr")
    engines_model: str = option("smollm2-135m", "vllm suite: the policy both engines sample (e.g. a prm sft folder)")
    engines_problems: int = option(32, "vllm suite: held-out 2-3 step problems (their prompts, the policy's own)")
    engines_n: int = option(8, "vllm suite: samples per problem")
    engines_tokens: int = option(128, "vllm suite: new tokens per sample at most")
    engines_batches: tuple[int, ...] = option((32, 256), "vllm suite: sequences decoded together (vLLM: max_num_seqs)")
    engines_bf16: bool = option(True, "vllm suite: bf16 where the machine has it natively (fp32 otherwise)")

    def __post_init__(self):
        unknown = [s for s in self.suites if s not in SUITES]
        if unknown:
            raise ValueError(f"suites: unknown {unknown}; known: {list(SUITES)}")
        if self.repeats < 1:
            raise ValueError("repeats must be >= 1")


def best_time(fn, repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def row(name: str, value: float, unit: str, goal: str = "", met: bool | None = None, **extra) -> dict:
    return {"name": name, "value": value, "unit": unit, "goal": goal, "met": met, **extra}


def table(rows: list[dict]) -> str:
    lines = ["| benchmark | value | unit | goal | met |", "|---|---:|---|---|---|"]
    for r in rows:
        v = r["value"]
        shown = f"{v:,.0f}" if isinstance(v, (int, float)) and abs(v) >= 100 else f"{v:.3g}"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['name']} | {shown} | {r['unit']} | {r['goal']} | {met} |")
    return "\n".join(lines)


def run(cfg: BenchConfig) -> None:
    rows: list[dict] = []
    for suite in cfg.suites:
        rows += importlib.import_module(SUITES[suite]).run(cfg)
    result = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
    }
    with atomic_write(cfg.output) as f:
        json.dump(result, f, indent=2)
    save_config(cfg, cfg.output)
    print(table(rows))
    print(f"\nwrote {Path(cfg.output)}")

"""`prm generate`: sample N solutions per problem from a policy and write them as trace records.

Each trace is a step record: id `<problem id>/<k>`, the problem text, one step per line of the sample, `answer` =
the problem's gold answer, and in `meta` the extracted prediction, whether it is `correct`, the tokens spent, why
sampling stopped, and the problem's own meta (for synthetic problems, the gold chain the labelers need).

Resumable: a problem's N traces are appended together as soon as they are all done, so a killed run loses only
the problems in flight, and rerunning the same command skips every problem already written.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from prm.answers import answers_equal, extract_answer
from prm.config import ConfigError, config, option, save_config
from prm.fileio import atomic_write
from prm.generate.engine import Sampling, open_engine
from prm.generate.prompt import build_prompt
from prm.generate.sampler import Sample
from prm.records import ResumableWriter, StepRecord, iter_records, read_records, split_steps


@config("generate")
class GenerateConfig:
    input: str = option(help="problems: step records with a gold `answer` (e.g. from prm synth)")
    output: str = option(help="traces (JSONL); rerunning continues an interrupted run")
    model: str = option("smollm2-135m", "policy: a local folder, a hub id, or smollm2-135m (the embedded model)")
    n: int = option(8, "samples per problem")
    limit: int | None = option(None, "use only the first `limit` problems")
    seed: int = option(0, "seed; each sample's randomness depends only on (seed, problem id, sample index)")
    bf16: bool = option(True, "bf16 weights and autocast (fastest on CPUs with bf16 support; fp32 otherwise)")
    sampling: Sampling = option(Sampling(), "how the policy samples (prm.generate.engine): engine, batch, prompt")
    trust_remote_code: bool = option(False, "let transformers run code shipped with the model")
    progress: bool = option(True, "show a progress bar on stderr")

    def __post_init__(self):
        if self.n < 1:
            raise ValueError("n must be >= 1")


def trace_record(problem: StepRecord, k: int, s: Sample, policy: str) -> StepRecord:
    steps = split_steps(s.text)
    prediction = extract_answer(s.text)
    meta = {
        "problem_id": problem.id,
        "sample": k,
        "prediction": prediction,
        "correct": answers_equal(prediction, problem.answer),
        "tokens": s.tokens,
        "stop": s.stop,
        "policy": policy,
        "problem": problem.meta,
    }
    if not steps:  # a record needs a non-empty step; keep the trace (it counts as wrong) and mark it
        steps, meta["empty"] = ["(no output)"], True
    return StepRecord(
        id=f"{problem.id}/{k}",
        problem=problem.problem,
        steps=steps,
        answer=problem.answer,
        source="generate",
        meta=meta,
    )


def summarize(path: str | Path, n: int) -> dict:
    """Accuracy (mean over traces), pass@n (share of problems with a correct trace), tokens and stop reasons."""
    by_problem: dict[str, list[bool]] = {}
    tokens, stops = 0, Counter()
    for r in iter_records(path):
        by_problem.setdefault(r.meta["problem_id"], []).append(bool(r.meta["correct"]))
        tokens += r.meta["tokens"]
        stops[r.meta["stop"]] += 1
    traces = sum(len(v) for v in by_problem.values())
    return {
        "problems": len(by_problem),
        "traces": traces,
        "accuracy": sum(sum(v) for v in by_problem.values()) / max(traces, 1),
        f"pass@{n}": sum(any(v) for v in by_problem.values()) / max(len(by_problem), 1),
        "tokens": tokens,
        "stops": dict(stops),
    }


def run(cfg: GenerateConfig) -> dict:
    from tqdm import tqdm

    problems = read_records(cfg.input)[: cfg.limit]
    for p in problems:
        if p.answer is None:
            raise ConfigError(f"{cfg.input}: problem '{p.id}' has no gold answer")
    writer = ResumableWriter(cfg.output, unit=lambda d: d["meta"]["problem_id"], expected=lambda _: cfg.n)
    todo = [p for p in problems if p.id not in writer.done]
    save_config(cfg, cfg.output)
    t0, new_tokens = time.perf_counter(), 0
    if todo:
        engine = open_engine(cfg.model, cfg.sampling, bf16=cfg.bf16, trust_remote_code=cfg.trust_remote_code)
        system, shots = cfg.sampling.prompt(cfg.model)
        prompts = [build_prompt(engine.tokenizer, p.problem, shots=shots, system=system) for p in todo]
        params = cfg.sampling.params(seed=cfg.seed, bf16=cfg.bf16)
        bar = tqdm(total=len(todo) * cfg.n, unit="sample", disable=not cfg.progress, desc="generate", mininterval=2.0)

        def progress(rows: int, tokens: int) -> None:
            nonlocal new_tokens
            new_tokens += tokens
            bar.update(rows)
            bar.set_postfix(tok_s=f"{new_tokens / (time.perf_counter() - t0):.0f}")

        def done(i: int, samples: list[Sample]) -> None:
            writer.write_unit(trace_record(todo[i], k, s, cfg.model) for k, s in enumerate(samples))

        keys = [p.id for p in todo]
        with writer:
            try:
                engine.sample(prompts, cfg.n, params, keys=keys, on_progress=progress, on_prompt_done=done)
            finally:
                engine.close()  # a vLLM engine's processes would otherwise outlive the command
        bar.close()
    else:
        writer.close()
    secs = time.perf_counter() - t0
    summary = summarize(cfg.output, cfg.n) | {
        "engine": cfg.sampling.engine,
        "new_problems": len(todo),
        "new_tokens": new_tokens,
        "seconds": round(secs, 2),
        "tokens_per_s": round(new_tokens / secs, 1) if new_tokens else None,
    }
    with atomic_write(Path(cfg.output).with_suffix(".summary.json")) as f:
        json.dump(summary, f, indent=2)
    skipped = len(problems) - len(todo)
    print(
        f"prm generate: {summary['problems']} problems x {cfg.n} samples in {cfg.output}"
        + (f" ({skipped} already done)" if skipped else "")
        + f"; accuracy {summary['accuracy']:.1%}, pass@{cfg.n} {summary[f'pass@{cfg.n}']:.1%}"
        + (f"; {new_tokens} new tokens at {summary['tokens_per_s']:.0f} tok/s" if new_tokens else "")
    )
    return summary

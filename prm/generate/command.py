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
from prm.generate.prompt import Shot, build_prompt, policy_prompt
from prm.generate.sampler import Sample, SamplingParams, sample, weights_dtype
from prm.records import ResumableWriter, StepRecord, iter_records, read_records, split_steps


@config("generate")
class GenerateConfig:
    input: str = option(help="problems: step records with a gold `answer` (e.g. from prm synth)")
    output: str = option(help="traces (JSONL); rerunning continues an interrupted run")
    model: str = option("smollm2-135m", "policy: a local folder, a hub id, or smollm2-135m (the embedded model)")
    n: int = option(8, "samples per problem")
    limit: int | None = option(None, "use only the first `limit` problems")
    batch_size: int = option(32, "sequences decoded together")
    max_new_tokens: int = option(256, "tokens per sample at most")
    temperature: float = option(0.8, "sampling temperature; 0 = greedy")
    top_p: float = option(1.0, "nucleus sampling mass (1 = off)")
    seed: int = option(0, "seed; each sample's randomness depends only on (seed, problem id, sample index)")
    bf16: bool = option(True, "bf16 weights and autocast (fastest on CPUs with bf16 support; fp32 otherwise)")
    system: str | None = option(
        None, "system message; null: the policy's own (a prm sft folder's), else the built-in line; \"\" for none"
    )
    shots: tuple[Shot, ...] | None = option(
        None,
        "worked examples (problem, solution); null: the policy's own (zero-shot for a prm sft folder), else two built-in ones; [] for none",
    )
    engine: str = option(
        "native",
        "native (our engine: a sample leaves the batch at its answer line) or vllm (vLLM's batched generation; "
        "its own environment: make setup-vllm)",
    )
    trust_remote_code: bool = option(False, "let transformers run code shipped with the model")
    progress: bool = option(True, "show a progress bar on stderr")

    def __post_init__(self):
        if self.n < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("n, batch_size and max_new_tokens must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        if self.engine not in ("native", "vllm"):
            raise ValueError("engine must be native or vllm")


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


def vllm_engine(cfg: GenerateConfig):
    try:
        import vllm  # noqa: F401

        from prm.generate.vllm_engine import VLLMEngine
    except ImportError:
        raise ConfigError(
            "engine vllm: vLLM is not installed in this environment; run make setup-vllm and use .venv-vllm/bin/prm"
        ) from None
    return VLLMEngine(cfg.model, bf16=cfg.bf16, trust_remote_code=cfg.trust_remote_code)


def run(cfg: GenerateConfig) -> dict:
    from tqdm import tqdm

    from prm.models import load

    problems = read_records(cfg.input)[: cfg.limit]
    for p in problems:
        if p.answer is None:
            raise ConfigError(f"{cfg.input}: problem '{p.id}' has no gold answer")
    writer = ResumableWriter(cfg.output, unit=lambda d: d["meta"]["problem_id"], expected=lambda _: cfg.n)
    todo = [p for p in problems if p.id not in writer.done]
    save_config(cfg, cfg.output)
    t0, new_tokens = time.perf_counter(), 0
    if todo:
        if cfg.engine == "vllm":
            engine = vllm_engine(cfg)
            tok = engine.tokenizer
        else:
            model, tok = load(cfg.model, dtype=weights_dtype(cfg.bf16), trust_remote_code=cfg.trust_remote_code)
        system, shots = policy_prompt(cfg.model, cfg.system, cfg.shots)
        prompts = [build_prompt(tok, p.problem, shots=shots, system=system) for p in todo]
        params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.batch_size, cfg.bf16, cfg.seed)
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
            if cfg.engine == "vllm":
                engine.sample(prompts, cfg.n, params, keys=keys, on_progress=progress, on_prompt_done=done)
            else:
                sample(model, tok, prompts, cfg.n, params, keys=keys, on_progress=progress, on_prompt_done=done)
        bar.close()
    else:
        writer.close()
    secs = time.perf_counter() - t0
    summary = summarize(cfg.output, cfg.n) | {
        "engine": cfg.engine,
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

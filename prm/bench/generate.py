"""Generation figures with the embedded model: tokens/s of `prm generate`'s engine beside `model.generate` on the
same prompts, the share of compute spent after the answer line, and the policy's accuracy and pass@N."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from prm.bench import row
from prm.generate import GenerateConfig, Sampling, build_prompt
from prm.generate import run as generate_run
from prm.models import bf16_autocast, load
from prm.records import read_records
from prm.synth import SynthConfig
from prm.synth import run as synth_run


def reference_generate(
    model, tok, prompts: list[str], n: int, max_new_tokens: int, bf16: bool
) -> tuple[int, int, float]:
    """`model.generate` with a fixed batch (all n samples of each prompt), stopping each row at end of turn only.

    Returns (useful tokens up to each row's end, row-steps computed, seconds)."""
    useful = computed = 0
    t0 = time.perf_counter()
    for prompt in prompts:
        ids = tok([prompt] * n, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad(), bf16_autocast("cpu", bf16):
            out = model.generate(
                ids, do_sample=True, temperature=0.8, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id
            )
        gen = out[:, ids.shape[1] :]
        computed += gen.numel()
        ends = (gen == tok.eos_token_id).int().argmax(1)
        has_end = (gen == tok.eos_token_id).any(1)
        useful += int(torch.where(has_end, ends + 1, torch.full_like(ends, gen.shape[1])).sum())
    return useful, computed, time.perf_counter() - t0


def policy_problems(n: int, path: Path) -> SynthConfig:
    """2-3 step held-out problems with small numbers: the regime where the 135M policy solves some (about 1 in 10
    greedily; with the default number range it solves about 1 in 30)."""
    return SynthConfig(n=n, split="test", min_steps=2, max_steps=3, max_value=12, max_result=60, output=str(path))


def tokens_after_answer(traces) -> int:
    """Tokens each trace generated after its answer line was complete. The engine stops a row on the newline that
    ends its answer line, so only an end-of-turn token right after an unterminated answer line counts here; a
    finished row also leaves the batch, so no compute is spent on it either."""
    return sum(1 for r in traces if r.meta["stop"] == "eos" and r.meta["prediction"] is not None)


def run(cfg) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        problems = Path(tmp) / "problems.jsonl"
        synth_run(policy_problems(cfg.generate_problems, problems))
        traces = Path(tmp) / "traces.jsonl"
        s = generate_run(
            GenerateConfig(
                input=str(problems),
                output=str(traces),
                n=cfg.generate_n,
                sampling=Sampling(batch_size=32, temperature=0.8),
                bf16=True,
                progress=False,
            )
        )
        after = tokens_after_answer(read_records(traces))
    n = cfg.generate_n
    rows.append(
        row(
            f"generate tok/s (embedded model, bf16, batch 32, {cfg.generate_problems} problems x {n})",
            s["tokens_per_s"],
            "tok/s",
            ">= 240",
            s["tokens_per_s"] >= 240,
        )
    )
    share = 100 * after / s["tokens"]
    rows.append(row("  generated tokens after the answer line", share, "%", "< 5%", share < 5))
    rows.append(
        row("policy accuracy (2-3 step synth problems, numbers <= 12, two-shot, T=0.8)", 100 * s["accuracy"], "%")
    )
    rows.append(row(f"policy pass@{n}", 100 * s[f"pass@{n}"], "%"))

    # Reference: transformers' generate on a few of the same prompts, a fixed batch of n rows per prompt.
    model, tok = load("smollm2-135m", dtype="bfloat16")  # as prm generate loads it: the same weights

    with tempfile.TemporaryDirectory() as tmp:
        problems = Path(tmp) / "p.jsonl"
        synth_run(policy_problems(cfg.reference_problems, problems))
        prompts = [build_prompt(tok, p.problem) for p in read_records(problems)]
    useful, computed, secs = reference_generate(model, tok, prompts, 32, 256, True)
    rows.append(
        row(
            f"reference model.generate tok/s (bf16, batch 32, {len(prompts)} prompts, useful tokens)",
            useful / secs,
            "tok/s",
        )
    )
    rows.append(
        row(
            "  reference compute after end of turn (finished rows keep decoding)",
            100 * (computed - useful) / computed,
            "%",
        )
    )
    return rows

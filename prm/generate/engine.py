"""The sampling block every sampling command shares (`sampling:` in its config) and the engine it names.

generate, label (rollouts), label-report, label-bench, search, sft (its held-out evaluation), compare and improve
all sample from a policy. They take the same block, so a setting is spelt the same way everywhere:

    sampling:
      engine: native        # or vllm (its own environment: make setup-vllm)
      batch_size: 32
      max_new_tokens: 256
      temperature: 0.8
      top_p: 1.0
      system: null          # null: the policy's own (a prm sft folder's), else the built-in line
      shots: null           # null: the policy's own (zero-shot for a prm sft folder), else two built-in examples

On the command line one field at a time: `--sampling.temperature 0.5`. Each command sets its own defaults (compare
and improve decode 64 rows at once). The seed and bf16 stay outside the block, since they also govern training and
scoring.

    engine = open_engine("runs/policy", cfg.sampling, bf16=True)
    samples = engine.sample(prompts, n=8, params=cfg.sampling.params(seed=0, bf16=True), keys=ids)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prm.config import option
from prm.generate.prompt import Shot, policy_prompt
from prm.generate.sampler import Sample, SamplingParams, sample, weights_dtype

Engine = Literal["native", "vllm"]


@dataclass(frozen=True, kw_only=True)
class Sampling:
    engine: Engine = option(
        "native",
        "native (ours: a sample leaves the batch at its answer line) or vllm (vLLM's batched generation; its own "
        "environment: make setup-vllm)",
    )
    batch_size: int = option(32, "sequences decoded together")
    max_new_tokens: int = option(256, "tokens per sample at most")
    temperature: float = option(0.8, "sampling temperature; 0 = greedy")
    top_p: float = option(1.0, "nucleus sampling mass (1 = off)")
    system: str | None = option(
        None, "system message; null: the policy's own (a prm sft folder's), else the built-in line; \"\" for none"
    )
    shots: tuple[Shot, ...] | None = option(
        None,
        "worked examples (problem, solution); null: the policy's own (zero-shot for a prm sft folder), else two "
        "built-in ones; [] for none",
    )

    def __post_init__(self):
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")

    def params(self, *, seed: int, bf16: bool, max_new_tokens: int | None = None) -> SamplingParams:
        """The engine's per-call settings (`max_new_tokens` overrides the block's, e.g. per step in search)."""
        tokens = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        return SamplingParams(tokens, self.temperature, self.top_p, self.batch_size, bf16, seed)

    def prompt(self, model: str) -> tuple[str, tuple[Shot, ...]]:
        """(system line, worked examples) to prompt `model` with (`prm.generate.prompt.policy_prompt`)."""
        return policy_prompt(model, self.system, self.shots)


class NativeEngine:
    """Our engine (`prm.generate.sampler.sample`) over a loaded model. It and `prm.generate.vllm_engine.VLLMEngine`
    are the two engines: both have `.tokenizer`, `sample(prompts, n, params, *, keys, on_progress, on_prompt_done)`
    returning `Sample`s (n per prompt), and `close()`."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def sample(self, prompts, n, params, **kw) -> list[list[Sample]]:
        return sample(self.model, self.tokenizer, prompts, n, params, **kw)

    def close(self) -> None:
        """Nothing to stop (vLLM's engine has processes to stop: a command closes whichever it opened)."""


def open_engine(model: str, block: Sampling, *, bf16: bool, trust_remote_code: bool = False):
    """The engine `block.engine` names, loaded with the policy `model` (a folder, a hub id or an alias)."""
    if block.engine == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            from prm.config import ConfigError

            raise ConfigError(
                "sampling.engine vllm: vLLM is not installed here; run make setup-vllm and use .venv-vllm/bin/prm"
            ) from None
        from prm.generate.vllm_engine import VLLMEngine

        return VLLMEngine(model, bf16=bf16, max_num_seqs=block.batch_size, trust_remote_code=trust_remote_code)
    from prm.models import load

    loaded, tok = load(model, dtype=weights_dtype(bf16), trust_remote_code=trust_remote_code)
    return NativeEngine(loaded, tok)

"""`prm sft` configuration."""

from __future__ import annotations

from typing import Literal

from prm.config import config, option
from prm.generate.engine import Sampling
from prm.generate.prompt import DEFAULT_SYSTEM, Shot, policy_prompt
from prm.model.io import LoraSpec


@config("sft")
class SFTConfig:
    train: str = option(help="step records to imitate: synthetic gold solutions, or traces (see keep)")
    output: str = option(help="policy folder: a LoRA adapter (or a full model) with its tokenizer and policy.json")
    val: str | None = option(None, "held-out step records: the loss on their solutions every eval_every steps")
    base: str = option(
        "smollm2-135m", "model to fine-tune: a local folder (a prm sft policy too), a hub id, or smollm2-135m"
    )
    keep: Literal["answer", "steps", "all"] = option(
        "answer",
        "records trained on: answer = right final answer and no step labelled false (gold solutions, right traces); "
        "steps = every step labelled true; all = every record",
    )
    sampling: Sampling = option(
        Sampling(system=DEFAULT_SYSTEM, shots=()),
        "the prompt the policy learns (system, shots: none by default, the policy learns the format; null: the "
        "base's own) and how the evaluation samples (prm.generate.engine; the native engine only)",
    )
    lora: bool = option(True, "LoRA (peft) on lora_targets; false = full fine-tuning")
    lora_r: int = option(64, "LoRA rank")
    lora_alpha: int = option(64, "LoRA alpha")
    lora_dropout: float = option(0.0, "LoRA dropout")
    lora_targets: tuple[str, ...] = option(LoraSpec().targets, "module names LoRA adapts")
    lr: float = option(1e-3, "peak learning rate (LoRA); full fine-tuning wants about 1e-4")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup: float = option(0.05, "share of the steps spent warming up (then cosine decay to 0)")
    epochs: float = option(1.0, "passes over the kept records")
    max_steps: int | None = option(None, "stop after this many optimizer steps (overrides epochs)")
    max_tokens: int | None = option(None, "stop after this many training tokens (prompt and solution)")
    # 2048: about 11 solutions per optimizer step, as in the README's runs.
    batch_tokens: int = option(2048, "padded tokens per micro-batch (batches are grouped by length)")
    batch_size: int | None = option(None, "records per micro-batch at most")
    attention: Literal["auto", "sdpa", "eager"] = option(
        "auto", "attention kernel: auto = eager on CPU (faster on short rows and tree masks), sdpa elsewhere"
    )
    share_prefixes: bool = option(
        True, "records of one problem (k samples of it) share a row: their prompt is computed once (exact)"
    )
    grad_accum: int = option(1, "micro-batches per optimizer step")
    max_length: int = option(768, "tokens per record (prompt and solution) at most; longer records are left out")
    bf16: bool = option(True, "bf16 autocast (about 2x faster on CPU)")
    grad_checkpointing: bool = option(False, "recompute activations in backward (less memory, slower)")
    eval_problems: str | None = option(
        None, "held-out problems with gold answers: the policy's accuracy on them every eval_every steps (sampled)"
    )
    eval_limit: int = option(64, "eval_problems used at most")
    eval_samples: int = option(2, "solutions sampled per eval problem (as the sampling block says)")
    eval_every: int = option(50, "optimizer steps between evaluations: val loss, eval accuracy (0 = only at the end)")
    save_every: int = option(100, "optimizer steps between resumable checkpoints (0 = only at the end)")
    log_every: int = option(10, "optimizer steps between log lines")
    seed: int = option(0, "seed of data order and initialisation")
    resume: bool = option(False, "continue from output/checkpoint exactly where it stopped")
    trust_remote_code: bool = option(False, "let transformers run code shipped with the model")
    progress: bool = option(True, "progress bar on stderr")

    def __post_init__(self):
        if self.batch_tokens < 64 or self.grad_accum < 1 or self.max_length < 16 or (self.batch_size or 1) < 1:
            raise ValueError("batch_tokens >= 64, grad_accum >= 1, max_length >= 16 and batch_size >= 1 are required")
        if not 0 <= self.warmup < 1 or self.epochs <= 0:
            raise ValueError("warmup must be in [0, 1) and epochs > 0")
        if self.sampling.engine != "native":
            raise ValueError(
                "sampling.engine: prm sft samples its evaluation from the weights in training (native only)"
            )
        if self.max_length > self.batch_tokens:
            raise ValueError(f"max_length ({self.max_length}) must fit in batch_tokens ({self.batch_tokens})")

    def prompt(self) -> tuple[str, tuple[Shot, ...]]:
        """(system line, worked examples) the policy is trained and evaluated with: the block's, or the base's own."""
        return policy_prompt(self.base, self.sampling.system, self.sampling.shots)

    def lora_spec(self) -> LoraSpec | None:
        if not self.lora:
            return None
        return LoraSpec(self.lora_r, self.lora_alpha, self.lora_dropout, self.lora_targets)

"""`prm train` configuration."""

from __future__ import annotations

from typing import Literal

from prm.config import config, option
from prm.model.io import LoraSpec

ALL_LINEAR = LoraSpec().targets
# The likelihood feature sets of the readout (prm.model); prm improve's in-run PRM takes the same names.
FeatureSet = Literal["equation", "operation", "calc", "step"]


@config("train")
class TrainConfig:
    train: str = option(help="step records with labels and/or values (JSONL or Parquet)")
    output: str = option(help="checkpoint folder (adapter, readout, tokenizer, config, logs)")
    val: str | None = option(None, "held-out step records: AUROC every eval_every steps, and the final report")
    base: str = option("smollm2-135m", "backbone: a local folder, a hub id, or smollm2-135m (the embedded model)")
    readout: Literal["head", "tokens"] = option("head", "linear head on the tag, or two label tokens of the LM head")
    features: bool = option(True, "add the backbone's likelihood of each step's result/equation to the readout")
    # "adapted" is the default since it measured 0.839 AUROC against "base"'s 0.760 on the TRL-comparison data
    # (README, Benchmarks), and it saves the frozen pass.
    features_from: Literal["base", "adapted"] = option(
        "adapted", "likelihood features from the backbone without its adapter (frozen) or with it (one pass fewer)"
    )
    # "operation": on held-out phrasings it lifted wrong operands from 0.756 to 0.978 AUROC and all first errors from
    # 0.865 to 0.942, at the same 426 steps (README, Benchmarks -> PRM quality).
    feature_set: FeatureSet = option(
        "operation",
        "equation: log-probabilities of the result and the equation; operation: also of the operation's first "
        "operand, operator and second operand, each apart (what the backbone expects the step to do); calc: also "
        "the calculator's verdict on the step's equations; step: also the mean log-probability of the whole step",
    )
    loss: Literal["hard", "soft", "both"] = option("hard", "labels (BCE), values (BCE on soft targets), or both")
    soft_weight: float = option(0.5, "weight of the soft loss when loss=both")
    value_target: Literal["mean", "any"] = option(
        "mean",
        "what the soft loss learns from `values` (shares of rollouts reaching the answer): mean, the share itself "
        "(a Q-value); any, 1 where any rollout reached it (the best of K completions)",
    )
    last_step_only: bool = option(False, "train on the last step's label only (the outcome-reward baseline)")
    lora: bool = option(True, "LoRA (peft) on lora_targets; false = full fine-tuning")
    lora_r: int = option(16, "LoRA rank")
    lora_alpha: int = option(32, "LoRA alpha")
    # 0: dropout on every adapter input cost 30% of a CPU step in a profile and changed no AUROC (0.839 vs 0.840).
    lora_dropout: float = option(0.0, "LoRA dropout")
    lora_targets: tuple[str, ...] = option(ALL_LINEAR, "module names LoRA adapts")
    # 5e-4: one pass over the TRL-comparison data gave AUROC 0.849 at 2e-4, 0.880 at 5e-4 and 0.862 at 1e-3, where
    # the slips fell below the training-free baseline (README, Benchmarks).
    lr: float = option(5e-4, "peak learning rate of the backbone (LoRA or full)")
    readout_lr: float = option(1e-3, "peak learning rate of the readout head")
    feature_lr: float = option(2e-2, "peak learning rate of the likelihood-feature weights (a handful of scalars)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup: float = option(0.05, "share of the steps spent warming up (then cosine decay to 0)")
    epochs: float = option(1.0, "passes over the training records")
    max_steps: int | None = option(None, "stop after this many optimizer steps (overrides epochs)")
    max_tokens: int | None = option(
        None, "stop after this many training tokens (each record's own tokens; shared rows compute fewer)"
    )
    batch_tokens: int = option(4096, "padded tokens per micro-batch (batches are grouped by length)")
    batch_size: int | None = option(None, "records per micro-batch at most (to match another trainer's batch size)")
    attention: Literal["auto", "sdpa", "eager"] = option(
        "auto", "attention kernel: auto = eager on CPU (faster on short rows and tree masks), sdpa elsewhere"
    )
    share_prefixes: bool = option(
        True,
        "traces of one problem share a row: their common prefix is computed once (each row exact under a tree mask; "
        "rows hold several records, so an epoch has fewer, larger micro-batches)",
    )
    grad_accum: int = option(1, "micro-batches per optimizer step")
    max_length: int = option(512, "tokens per record at most; whole steps only, dropped steps are counted")
    bf16: bool = option(True, "bf16 autocast (about 2x faster on CPU)")
    grad_checkpointing: bool = option(False, "recompute activations in backward (less memory, slower)")
    eval_every: int = option(50, "optimizer steps between evaluations on val (0 = only at the end)")
    save_every: int = option(100, "optimizer steps between resumable checkpoints (0 = only at the end)")
    log_every: int = option(10, "optimizer steps between log lines")
    seed: int = option(0, "seed of data order, dropout and initialisation")
    resume: bool = option(False, "continue from output/checkpoint exactly where it stopped")
    progress: bool = option(True, "progress bar on stderr")

    def __post_init__(self):
        if self.batch_tokens < 64 or self.grad_accum < 1 or self.max_length < 16 or (self.batch_size or 1) < 1:
            raise ValueError("batch_tokens >= 64, grad_accum >= 1, max_length >= 16 and batch_size >= 1 are required")
        if not 0 <= self.warmup < 1 or self.epochs <= 0:
            raise ValueError("warmup must be in [0, 1) and epochs > 0")

    def lora_spec(self) -> LoraSpec | None:
        if not self.lora:
            return None
        return LoraSpec(self.lora_r, self.lora_alpha, self.lora_dropout, self.lora_targets)

"""`prm improve` configuration."""

from __future__ import annotations

from prm.config import config, option
from prm.generate.engine import Sampling
from prm.train.config import FeatureSet

FILTERS = ("outcome", "calc", "prm", "gold")


def prm_share(name: str) -> float | None:
    """The keep share a `prm@S` filter names: the prm filter keeping the share S of a round's right-answer samples,
    so that one run compares several shares on the same samples and PRM. None for any other name, including a
    malformed one.

    >>> prm_share("prm@0.8"), prm_share("prm"), prm_share("prm@x"), prm_share("prm@1.5")
    (0.8, None, None, None)
    """
    head, sep, tail = name.partition("@")
    if head != "prm" or not sep:
        return None
    try:
        share = float(tail)
    except ValueError:
        return None
    return share if 0.0 < share <= 1.0 else None


def uses_prm(name: str) -> bool:
    return name == "prm" or prm_share(name) is not None


@config("improve")
class ImproveConfig:
    policy: str = option(help="the starting policy: a prm sft folder (or any causal LM)")
    problems: str = option(help="training problems: only their text and final answer are used (no gold steps)")
    heldout: str = option(help="held-out problems, for the evaluation after every round (gold steps: prm synth)")
    output: str = option(help="folder of every round: samples, kept solutions, policies, evaluations, reports")
    filters: tuple[str, ...] = option(
        ("outcome", "prm"),
        "which samples a round keeps, one chain of rounds each: outcome (right answer), calc (right answer and every "
        "equation checks: the calculator, no model), prm (right answer and the PRM's min step score >= threshold), "
        "gold (right answer and every step right; synthetic problems only); prm@S: prm keeping the share S of the "
        "right answers (e.g. prm@0.8), so several shares share one run's samples and PRM",
    )
    rounds: int = option(3, "rounds of sample -> filter -> fine-tune per filter")
    k: int = option(4, "solutions sampled per training problem per round (the same budget for every filter)")
    limit: int | None = option(None, "use only the first `limit` training problems")
    max_per_problem: int = option(
        2, "kept solutions per problem at most (distinct ones first), so easy problems do not dominate"
    )
    eval_k: int = option(4, "solutions sampled per held-out problem: pass@1, maj@k and pass@k")
    eval_limit: int | None = option(None, "use only the first `eval_limit` held-out problems")
    prm: str | None = option(None, "a PRM folder for the prm filter; null: train one here (below)")
    threshold: float = option(0.5, "prm filter: the least min-step score a kept solution has")
    # A PRM trained on a few hundred labels ranks well and is calibrated badly: with another seed the same recipe's
    # right-answer samples had a median min score of 0.37 instead of 0.50, and a 0.5 threshold kept 2 of 29.
    keep_share: float | None = option(
        0.5,
        "prm filter: keep this share of a round's right-answer samples, those of the highest min step score (the "
        "PRM's ranking, whatever its scale), instead of a threshold; null: the threshold",
    )
    prm_traces: int = option(256, "PRM trained here: the starting policy's round-1 samples it labels (the first ones)")
    label_method: str = option("binary", "labeler of those samples: binary or mc (rollouts by the starting policy)")
    label_k: int = option(4, "rollouts per probed prefix")
    prm_extra: str | None = option(
        None,
        "more labelled records for the PRM trained here, beside its labelled samples (e.g. synthetic right/wrong "
        "pairs of the starting policy's regime: prm synth --pairs true); null: none",
    )
    prm_base: str | None = option(
        None, "backbone of the PRM trained here; null: the starting policy (a backbone that knows the task)"
    )
    prm_tokens: int = option(80_000, "training tokens of the PRM trained here")
    prm_batch_tokens: int = option(1024, "padded tokens per micro-batch of the PRM trained here")
    prm_feature_set: FeatureSet = option(
        "step", "likelihood features of the PRM trained here (prm train --feature_set)"
    )
    sft_epochs: float = option(2.0, "passes over a round's kept solutions")
    sft_lr: float = option(5e-4, "learning rate of each round's fine-tuning (LoRA on the previous round's policy)")
    sft_lora_r: int = option(64, "LoRA rank of each round")
    sft_batch_tokens: int = option(2048, "padded tokens per micro-batch of each round's fine-tuning")
    seed: int = option(0, "seed of sampling, labelling and training; round r samples with seed + r")
    bf16: bool = option(True, "bf16 for sampling, scoring and training")
    sampling: Sampling = option(
        Sampling(batch_size=64, max_new_tokens=160),
        "how every policy samples (prm.generate.engine): the rounds' samples, the evaluations and the PRM's rollouts",
    )
    progress: bool = option(True, "progress bars of every stage on stderr")

    def __post_init__(self):
        bad = [f for f in self.filters if f not in FILTERS and prm_share(f) is None]
        if bad or not self.filters or len(set(self.filters)) != len(self.filters):
            raise ValueError(
                f"filters: {list(self.filters)}; choose distinct ones from {', '.join(FILTERS)} or prm@S (S in (0, 1])"
            )
        if min(self.rounds, self.k, self.eval_k, self.max_per_problem, self.label_k, self.prm_traces) < 1:
            raise ValueError("rounds, k, eval_k, max_per_problem, label_k and prm_traces must be >= 1")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.keep_share is not None and not 0.0 < self.keep_share <= 1.0:
            raise ValueError(f"keep_share must be in (0, 1] or null, got {self.keep_share}")
        if self.label_method not in ("binary", "mc"):
            raise ValueError(f"label_method must be binary or mc, got {self.label_method!r}")


@config("improve-report")
class ImproveReportConfig:
    runs: tuple[str, ...] = option(
        help="output folders of prm improve runs of one recipe with other seeds (their config.yaml differ in the "
        "seed only)"
    )
    output: str = option(help="folder of the summary: seeds.json, seeds.md, seeds.png and this config")
    baseline: str = option("outcome", "the filter every other one is compared against after the last round")
    margin: float = option(3.0, "the lead in points of pass@1 a filter is meant to reach over the baseline")
    level: float = option(0.9, "coverage of the interval of each difference (problems resampled)")
    boot: int = option(2000, "bootstrap draws of the held-out problems")
    seed: int = option(0, "seed of the bootstrap")

    def __post_init__(self):
        if len(self.runs) < 1:
            raise ValueError("runs: name at least one prm improve output folder")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.boot < 1:
            raise ValueError(f"boot must be >= 1, got {self.boot}")

"""The config of `prm calibrate` (defaults in configs/calibrate.yaml)."""

from __future__ import annotations

from typing import Literal

from prm.config import config, option


@config("calibrate")
class CalibrateConfig:
    model: str = option(help="a PRM checkpoint folder written by prm train (or by an earlier prm calibrate)")
    input: str = option(
        help="the calibration set: step records with values (prm label --method mc) or labels, of the regime the "
        "model will score, and not the set its calibration is then measured on"
    )
    output: str = option(help="the calibrated checkpoint: a copy of the model whose scores pass through the fitted map")
    target: Literal["values", "labels"] = option(
        "values", "what the scores are fitted to: rollout shares (values) or step labels (true = 1, false = 0)"
    )
    bins: int = option(10, "equal-width bins of the reliability plots and the ECE")
    batch_tokens: int = option(0, "padded tokens per forward pass (0: 1024 on a CPU, 8192 on a GPU)")
    max_length: int = option(2048, "tokens per trace at most (whole steps are kept; later steps reuse the last score)")
    bf16: bool = option(False, "bf16 autocast (faster on CPU; scores differ from fp32 by about 1e-2)")
    progress: bool = option(True, "a progress bar on stderr")

    def __post_init__(self):
        if self.bins < 1:
            raise ValueError("bins must be >= 1")

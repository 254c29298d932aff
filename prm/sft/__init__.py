"""Policy fine-tuning: `prm sft` (config in prm.sft.config, data in prm.sft.data, the command in prm.sft.command)."""

from prm.sft.command import run
from prm.sft.config import SFTConfig

__all__ = ["SFTConfig", "run"]

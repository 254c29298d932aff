"""PRM training: `prm train` (config in prm.train.config, the loop in prm.train.loop)."""

from prm.train.config import TrainConfig
from prm.train.loop import run

__all__ = ["TrainConfig", "run"]

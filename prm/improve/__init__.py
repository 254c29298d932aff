"""Self-improvement rounds: `prm improve` (config in prm.improve.config, the filters and figures in
prm.improve.rounds, the command in prm.improve.command, the reports in prm.improve.report)."""

from prm.improve.command import run
from prm.improve.config import ImproveConfig

__all__ = ["ImproveConfig", "run"]

"""Best-of-N: selection from candidate pools by PRM scores, votes and references, and its reports."""

from prm.bon.command import BonConfig, run

__all__ = ["BonConfig", "run"]

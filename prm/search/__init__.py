"""PRM-guided search over the policy's steps (beam search, DVTS), compared with best-of-N at equal tokens."""

from prm.search.command import SearchConfig, run

__all__ = ["SearchConfig", "run"]

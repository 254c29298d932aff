"""Compute-matched comparison: best-of-N against beam search, DVTS, A* and MCTS at equal generated tokens."""

from prm.compare.command import CompareConfig, run

__all__ = ["CompareConfig", "run"]

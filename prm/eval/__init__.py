"""Evaluation of step scores: AUROC, accuracy, F1 of wrong steps, ProcessBench F1, calibration, position floor.

`prm.eval.metrics` holds pure functions of scores and labels (numpy only, no torch); see its docstring.
`prm eval` (`prm.eval.command`) applies them to a scored file and writes one JSON report.
"""

from prm.eval.command import EvalConfig, evaluate, markdown, read_scored, run

__all__ = ["EvalConfig", "evaluate", "markdown", "read_scored", "run"]

"""Step scorers and the scored-file contract they share.

A scored file is a step-record file in which every record carries, in `meta`:

- `scores`: one float per step, higher = more likely correct (a probability in [0, 1] for a PRM, any real number
  for a training-free baseline such as a mean log-probability);
- `scorer`: a short name of what produced them ("loglik-result", "prm", ...).

    attach_scores(record, [0.9, 0.2], "prm")   # record.meta == {..., "scores": [0.9, 0.2], "scorer": "prm"}
    read_scores(record, path="scored.jsonl", line=3)   # [0.9, 0.2], or RecordError naming file, line and field
"""

from prm.score.baseline import BaselineConfig, likelihood_scores, result_span
from prm.score.scores import attach_scores, read_scores

__all__ = ["BaselineConfig", "attach_scores", "likelihood_scores", "read_scores", "result_span"]

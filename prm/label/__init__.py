"""`prm label`: per-step labels (hard) and values (soft) for traces, by five methods.

    prm label --method mc --input data/out/traces.jsonl --output data/out/labeled.jsonl --k 8
    prm label-report --config configs/label-report.yaml

- `gold` (prm.label.gold): exact, for synthetic traces, from the gold chain of intermediate values: the reference.
- `calc` (prm.label.calc): the safe checker on equations and calculator annotations; null where it cannot decide.
- `mc` (prm.label.rollouts): Math-Shepherd: k rollouts per prefix; value = share correct, label = any correct.
- `binary` (prm.label.rollouts): first-error binary search over prefixes, O(k log n) rollouts per trace.
- `outcome` (prm.label.outcome): every prefix valued by its own trace's answer, a one-rollout Q estimate, no sampling.

Rollouts come from a `Completer` (prm.label.completer): the policy model through the generation engine, or a
completer of your own (`python:MODULE:FACTORY`, e.g. the tests' scripted fake). Output is resumable after a kill (prm.label.command); `consensus` keeps records two
labelers agree on (prm.label.consensus).
"""

from prm.label.base import METHODS, Labeled, LabelOptions, apply_convention, first_error, to_record
from prm.label.command import run, summarize
from prm.label.completer import Completer, ModelCompleter, Rollout, make_completer, rollout_key
from prm.label.config import LabelConfig, LabelReportConfig
from prm.label.consensus import Consensus, agree, consensus_filter
from prm.label.methods import label_batch

__all__ = [
    "METHODS",
    "Completer",
    "Consensus",
    "LabelConfig",
    "LabelOptions",
    "LabelReportConfig",
    "Labeled",
    "ModelCompleter",
    "Rollout",
    "agree",
    "apply_convention",
    "consensus_filter",
    "first_error",
    "label_batch",
    "make_completer",
    "rollout_key",
    "run",
    "summarize",
    "to_record",
]

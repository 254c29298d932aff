"""The `prm` command: one subcommand per pipeline stage, each driven by its frozen config dataclass.

    prm synth --config configs/synth.yaml --n 500 --output data/out/problems.jsonl
    prm convert --from gsm8k --to trl IN OUT
    prm validate FILE

Modules are imported only when their command runs, so `prm --help` stays fast and never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from prm.config import ConfigError, add_arguments, from_args
from prm.records import RecordError

# command -> (module, config class, run function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "synth": ("prm.synth", "SynthConfig", "run", "write verifiable arithmetic word problems with gold step chains"),
    "convert": ("prm.formats", "ConvertConfig", "run", "convert step records between formats (TRL, PRM800K, ...)"),
    "generate": ("prm.generate", "GenerateConfig", "run", "sample N step-by-step solutions per problem from a policy"),
    "sft": ("prm.sft", "SFTConfig", "run", "fine-tune a policy (LoRA or full) to write step-by-step solutions"),
    "improve": (
        "prm.improve",
        "ImproveConfig",
        "run",
        "rounds of self-improvement: sample, keep by outcome, PRM or gold, fine-tune, evaluate",
    ),
    "improve-report": (
        "prm.improve.seeds",
        "ImproveReportConfig",
        "run",
        "several prm improve runs with other seeds as one verdict: the filters' pass@1, mean and interval",
    ),
    "train": ("prm.train", "TrainConfig", "run", "fine-tune a PRM (LoRA or full) on labeled step records"),
    "score": ("prm.score.prm_scorer", "ScoreConfig", "run", "score every step of every trace with a trained PRM"),
    "serve": ("prm.serve", "ServeConfig", "run", "answer step-scoring and reward requests over HTTP (the serve extra)"),
    "validate": ("prm.validate", "ValidateConfig", "run", "check a step-record file and print its statistics"),
    "demo": ("prm.demo", "DemoConfig", "run", "run the pipeline end to end on a small set and print what it measured"),
    "bench": ("prm.bench", "BenchConfig", "run", "speed and quality benchmarks: JSON results plus a table"),
    "label": (
        "prm.label",
        "LabelConfig",
        "run",
        "label the steps of traces: gold, calc, mc (rollouts) or binary search",
    ),
    "label-report": ("prm.label.report", "LabelReportConfig", "run", "measure each step labeler against gold"),
    "label-bench": ("prm.bench.label", "LabelBenchConfig", "main", "rollout budget and accuracy of the labelers"),
    "score-baseline": (
        "prm.score.baseline",
        "BaselineConfig",
        "run",
        "training-free step scores: the backbone's log-probability of each step or its result",
    ),
    "bon": ("prm.bon", "BonConfig", "run", "best-of-N accuracy against N for PRM selection, votes and references"),
    "search": (
        "prm.search",
        "SearchConfig",
        "run",
        "PRM-guided search (beam, DVTS, A*, MCTS) vs best-of-N at equal tokens",
    ),
    "compare": (
        "prm.compare",
        "CompareConfig",
        "run",
        "accuracy against tokens: best-of-N, beam, DVTS, A* and MCTS at equal budgets, easy and hard apart",
    ),
    "calibrate": (
        "prm.calibrate",
        "CalibrateConfig",
        "run",
        "fit Platt scaling of a PRM's step probabilities on a calibration set; save a calibrated copy",
    ),
    "eval": ("prm.eval", "EvalConfig", "run", "step AUROC, accuracy, F1, ProcessBench F1, calibration, floor"),
}


def config_class(command: str) -> type:
    module, cls_name, _, _ = COMMANDS[command]
    return getattr(importlib.import_module(module), cls_name)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s options are built, so only that command's module is imported."""
    parser = argparse.ArgumentParser(prog="prm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, _, _, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            add_arguments(p, config_class(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    module, cls_name, fn_name, _ = COMMANDS[args.command]
    mod = importlib.import_module(module)
    try:
        cfg = from_args(getattr(mod, cls_name), args)
        getattr(mod, fn_name)(cfg)
    except (ConfigError, RecordError, FileNotFoundError) as e:
        print(f"prm {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0

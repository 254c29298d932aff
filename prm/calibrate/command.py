"""`prm calibrate`: fit Platt scaling of a PRM's step probabilities on a calibration set and save a calibrated copy.

    prm calibrate --model runs/qvalue --input calibration-values.jsonl --output runs/qvalue-calibrated

The model scores every step of the calibration set; the map p' = sigmoid(a * logit(p) + b) that best fits the steps'
targets (`values`, the shares of rollouts that reached the answer, or `labels`) is composed with any map the model
already carries, and the output folder is the model's checkpoint with that map in `prm_spec.json`: `prm score`,
`search`, `compare`, `serve` and `bon` read calibrated scores from it. The map is increasing (a fit whose slope is
not positive is refused: the scores would rank backwards), so the order of single steps stays, and with it every
step AUROC and every pick by one step's score (`min`, `last`); what a sum, mean, product or weighted vote of scores
picks can change, and so does what a score means as a chance (an ECE, a Q-value that A* adds to a path's score,
MCTS's leaf values).

Beside the checkpoint: `calibration.json` (the map, the steps it was fitted on, the ECE before and after on that set,
which is in-sample: measure the calibrated model on another set with `prm score` and `prm eval`), the reliability
plots `calibration.before.png` and `calibration.after.png`, and the resolved config `calibration.config.yaml`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from prm.calibrate.config import CalibrateConfig
from prm.calibrate.core import apply, compose, fit_platt, logits_of
from prm.config import ConfigError, save_config
from prm.eval.calibration import ece, reliability_bins, reliability_plot
from prm.fileio import atomic_files
from prm.records import read_records

SPEC = "prm_spec.json"


def step_targets(records, target: str) -> list[tuple[int, int, float]]:
    """(record index, step index, target) of every step with a target: its value, or its label as 1.0 / 0.0.

    >>> from prm.record import StepRecord
    >>> r = StepRecord(id="a", problem="p", steps=["s1", "s2"], labels=[True, None], values=[0.5, None])
    >>> step_targets([r], "values"), step_targets([r], "labels")
    ([(0, 0, 0.5)], [(0, 0, 1.0)])
    """
    out = []
    for i, r in enumerate(records):
        for j, t in enumerate(r.values if target == "values" else r.labels):
            if t is not None:
                out.append((i, j, float(t)))
    return out


def run(cfg: CalibrateConfig) -> None:
    from prm.score.prm_scorer import PRMScorer

    t0 = time.perf_counter()
    model, out = Path(cfg.model), Path(cfg.output)
    if not (model / SPEC).exists():
        raise ConfigError(f"model: {model} has no {SPEC}: not a PRM checkpoint written by prm train")
    if out.resolve() == model.resolve():
        raise ConfigError("output: must differ from model (the calibrated copy is written beside it, not over it)")
    if out.exists() and any(out.iterdir()) and not (out / "calibration.json").exists():
        raise ConfigError(f"output: {out} exists and is not a prm calibrate output: delete it or choose another")
    records = read_records(cfg.input)
    picked = step_targets(records, cfg.target)
    if not picked:
        raise ConfigError(f"input: no step of {cfg.input} has {cfg.target} to calibrate on")
    scorer = PRMScorer.from_pretrained(
        model, max_length=cfg.max_length, batch_tokens=cfg.batch_tokens, bf16=cfg.bf16, progress=cfg.progress
    )
    scores = scorer.score_batch([(r.problem, r.steps) for r in records])
    probs = [scores[i][j] for i, j, _ in picked]
    targets = [t for _, _, t in picked]
    fitted = fit_platt(logits_of(probs), targets)
    if fitted[0] <= 0:
        raise ConfigError(
            f"input: the fitted slope is {fitted[0]:.3g} <= 0: on {cfg.input} the model's scores rank steps backwards "
            "or not at all, and a calibration would reverse or erase their order"
        )
    before = scorer.prm.spec.calibration
    total = compose(fitted, tuple(before))
    after = apply(probs, fitted)

    spec = json.loads((model / SPEC).read_text())
    spec["calibration"] = list(total)
    report = {
        "model": str(model),
        "input": cfg.input,
        "target": cfg.target,
        "steps": len(picked),
        "traces": len({i for i, _, _ in picked}),
        "fitted": {"a": fitted[0], "b": fitted[1]},
        "calibration": {"a": total[0], "b": total[1], "before": list(before)},
        "mean_target": sum(targets) / len(targets),
        "mean_score_before": sum(probs) / len(probs),
        "mean_score_after": sum(after) / len(after),
        "ece_before_in_sample": ece(probs, targets, cfg.bins),
        "ece_after_in_sample": ece(after, targets, cfg.bins),
        "truncated_steps": scorer.truncated_steps,
        "seconds": 0.0,
    }
    # The copy and its map land together: prm_spec.json goes last (atomic_files), so a folder without it is
    # incomplete and never read as a model. Sub-folders (training checkpoints) are not part of the model.
    with atomic_files(out, SPEC) as tmp:
        for f in model.iterdir():
            if f.is_file() and f.name != SPEC and not f.name.startswith("calibration."):
                shutil.copy2(f, tmp / f.name)
        axes = {"xlabel": "predicted P(step correct)", "ylabel": "share of correct steps"}
        if cfg.target == "values":
            axes = {"xlabel": "predicted value", "ylabel": "share of rollouts that reached the answer"}
        title = f"{model.name} on {Path(cfg.input).name}"
        reliability_plot(reliability_bins(probs, targets, cfg.bins), tmp / "calibration.before.png", title, **axes)
        reliability_plot(
            reliability_bins(after, targets, cfg.bins),
            tmp / "calibration.after.png",
            f"calibrated (a={total[0]:.2f}, b={total[1]:+.2f}), in-sample",
            **axes,
        )
        report["seconds"] = round(time.perf_counter() - t0, 1)
        (tmp / "calibration.json").write_text(json.dumps(report, indent=2))
        (tmp / SPEC).write_text(json.dumps(spec, indent=2))
    kept = {f.name for f in model.iterdir() if f.is_file()} | {SPEC, "calibration.json"}
    for f in out.iterdir():  # files of an earlier calibration of another model (e.g. its adapter) go
        if f.is_file() and f.name not in kept and not f.name.startswith("calibration."):
            f.unlink()
    save_config(cfg, out / "calibration.json")
    print(
        f"prm calibrate: {report['steps']} steps of {report['traces']} traces ({cfg.target}), mean target "
        f"{report['mean_target']:.3f}; scores {report['mean_score_before']:.3f} -> {report['mean_score_after']:.3f}, "
        f"in-sample ECE {report['ece_before_in_sample']:.3f} -> {report['ece_after_in_sample']:.3f}; "
        f"map a={total[0]:.3f}, b={total[1]:+.3f} in {report['seconds']:.1f} s -> {out}"
    )

"""PRM quality at a fixed training budget, beside the floor and the training-free baseline, with a learning curve.

Data: matched pairs of synthetic solutions (each problem solved right and with one injected error of a named kind),
so neither step position nor surface text can explain a label; held-out problems from the test split only.
Figures: AUROC of correct steps against first-error steps on the held-out traces, overall and per error kind, for
(1) the trained PRM, (2) the position-only floor fitted on the training labels, (3) the backbone's untrained
log-probability of each step's written result. The learning curve is the PRM's validation AUROC every
`prm_eval_every` optimizer steps.
"""

from __future__ import annotations

from pathlib import Path

from prm.bench import row
from prm.eval.floor import fit_position_floor
from prm.eval.metrics import first_error_auroc
from prm.records import read_records
from prm.score.baseline import likelihood_scores
from prm.score.prm_scorer import PRMScorer
from prm.synth import SynthConfig
from prm.synth import run as synth_run
from prm.train import TrainConfig
from prm.train import run as train_run
from prm.train.loop import read_curve


def make_data(folder: Path, cfg) -> tuple[Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    train, val, test = folder / "train.jsonl", folder / "val.jsonl", folder / "test.jsonl"
    common = {"min_steps": 2, "max_steps": 5, "seed": cfg.prm_seed}
    synth_run(SynthConfig(n=cfg.prm_train // 2, pairs=True, corrupt=0.5, output=str(train), **common))
    synth_run(SynthConfig(n=cfg.prm_test, split="test", corrupt=0.5, output=str(test), **common))
    synth_run(
        SynthConfig(n=cfg.prm_val, split="test", corrupt=0.5, output=str(val), **common | {"seed": cfg.prm_seed + 1})
    )
    test_ids = {r.problem for r in read_records(test)}
    # Validation problems drive the learning curve only; keep them disjoint from the test problems too.
    val_recs = [r for r in read_records(val) if r.problem not in test_ids]
    from prm.records import write_records

    write_records(val_recs, val)
    return train, val, test


def run(cfg) -> list[dict]:
    from prm.models import load

    folder = Path(cfg.output).parent / "prm_quality"
    train, val, test = make_data(folder, cfg)
    test_recs = read_records(test)
    rows = []

    # (3) training-free: the untrained backbone's log-probability of each step's result
    model, tok = load(cfg.prm_base)
    base_scores = likelihood_scores(model, tok, test_recs, mode="result", bf16=True)
    baseline = first_error_auroc(test_recs, base_scores)
    del model

    # (2) position-only floor, fitted on the training labels
    floor_model = fit_position_floor(read_records(train))
    floor = first_error_auroc(test_recs, [floor_model.score(r) for r in test_recs])

    # (1) the PRM
    run_dir = folder / "run"
    report = train_run(
        TrainConfig(
            train=str(train),
            val=str(val),
            output=str(run_dir),
            base=cfg.prm_base,
            max_tokens=cfg.prm_tokens,
            epochs=cfg.prm_epochs,
            eval_every=cfg.prm_eval_every,
            log_every=10,
            progress=False,
            features=cfg.prm_features,
            readout=cfg.prm_readout,
            batch_tokens=2048,
        )
    )
    scorer = PRMScorer.from_pretrained(run_dir, bf16=True)
    ours = first_error_auroc(test_recs, scorer.score_batch([(r.problem, r.steps) for r in test_recs]))

    label = f"PRM ({cfg.prm_readout} readout{', likelihood features' if cfg.prm_features else ''})"
    for kind in ["all", *sorted(k for k in ours if k != "all")]:
        beat = ours.get(kind, 0) > baseline.get(kind, 1)
        goal = ">= 0.85 and > baseline" if kind == "all" else "> baseline"
        met = beat and (ours.get(kind, 0) >= 0.85 if kind == "all" else True)
        rows.append(row(f"AUROC correct vs first error [{kind}]: {label}", ours.get(kind, float("nan")), "", goal, met))
        rows.append(row(f"  training-free result log-prob [{kind}]", baseline.get(kind, float("nan")), ""))
        rows.append(row(f"  position-only floor [{kind}]", floor.get(kind, float("nan")), ""))
    rows.append(
        row(
            f"PRM training: {report['steps']} steps, {report['tokens']:,} tokens",
            report["seconds"] / 60,
            "CPU-minutes",
            tokens_per_s=report["tokens_per_s"],
        )
    )
    curve = read_curve(run_dir)
    plot = Path(cfg.output).with_name("prm_learning_curve.png")
    plot_curves({"PRM (validation)": curve}, baseline.get("all"), floor.get("all"), plot)
    rows.append(row(f"learning curve (tokens, val AUROC) -> {plot}", len(curve), "points", curve=curve))
    return rows


def plot_curves(
    curves: dict[str, list[tuple[int, float]]], baseline: float | None, floor: float | None, path: Path
) -> None:
    """Validation AUROC against training tokens, one line per legend label, with the two reference lines (measured on
    the test set)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from prm.fileio import atomic_write

    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    for label, pts in curves.items():
        ax.plot([t for t, _ in pts], [a for _, a in pts], marker="o", label=label)
    if baseline is not None:
        ax.axhline(baseline, color="tab:green", ls="--", label="training-free result log-prob (test)")
    if floor is not None:
        ax.axhline(floor, color="tab:gray", ls=":", label="position-only floor (test)")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("AUROC correct vs first error")
    ax.set_ylim(0.3, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png", dpi=110)

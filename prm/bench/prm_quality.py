"""PRM quality at a fixed training budget, on sentences it trained on and on a phrasing family it never saw, beside
the floor and the training-free baseline, with a learning curve.

Data: matched pairs of synthetic solutions (each problem solved right and with one injected error of a named kind),
so neither step position nor surface text can explain a label, written in the `prm_phrasing` families. Test problems
come from the test split only, twice: written in the training families ("in-family") and in the held-out family
(`prm synth --phrasing heldout`: its sentences, verbs, tense and answer line appear in no training record).
Figures, per test set: AUROC of correct steps against first-error steps, overall and per error kind, for (1) the
trained PRM, (2) the position-only floor fitted on the training labels, (3) the backbone's untrained log-probability
of each step's written result; and best-of-4 on held-out-family sets of one right and three wrong solutions (the pick
with the highest minimum step score, against a random pick's 25%). The learning curve is the PRM's validation AUROC
every `prm_eval_every` optimizer steps.
"""

from __future__ import annotations

from pathlib import Path

from prm.bench import row
from prm.eval.floor import fit_position_floor
from prm.eval.metrics import first_error_auroc
from prm.records import StepRecord, read_records, write_records
from prm.synth import SynthConfig
from prm.synth import run as synth_run

# Test sets: name -> the `prm synth --phrasing` that writes them.
TEST_SETS = {"in-family": "train", "held-out family": "heldout"}
BEST_OF = 4


def make_data(folder: Path, cfg) -> tuple[Path, Path, dict[str, Path], Path]:
    """(train, val, {test set: path}, best-of-4 sets) under `folder`; every test problem is of the test split."""
    folder.mkdir(parents=True, exist_ok=True)
    train, val, bo = folder / "train.jsonl", folder / "val.jsonl", folder / "best_of_4.jsonl"
    tests = {name: folder / f"test-{phrasing}.jsonl" for name, phrasing in TEST_SETS.items()}
    common = {"min_steps": 2, "max_steps": 5, "seed": cfg.prm_seed}
    synth_run(
        SynthConfig(
            n=cfg.prm_train // 2, pairs=True, corrupt=0.5, phrasing=cfg.prm_phrasing, output=str(train), **common
        )
    )
    for name, phrasing in TEST_SETS.items():
        synth_run(
            SynthConfig(n=cfg.prm_test, split="test", corrupt=0.5, phrasing=phrasing, output=str(tests[name]), **common)
        )
    synth_run(
        SynthConfig(
            n=cfg.prm_best_of,
            split="test",
            pairs=True,
            corrupt=0.5,
            wrong_per_problem=BEST_OF - 1,
            phrasing="heldout",
            output=str(bo),
            **common | {"seed": cfg.prm_seed + 2},
        )
    )
    synth_run(
        SynthConfig(n=cfg.prm_val, split="test", corrupt=0.5, output=str(val), **common | {"seed": cfg.prm_seed + 1})
    )
    # Validation problems drive the learning curve only; keep their skeletons out of every test set.
    held = {tuple(r.meta["chain"] + r.meta["operands"]) for p in (*tests.values(), bo) for r in read_records(p)}
    write_records([r for r in read_records(val) if tuple(r.meta["chain"] + r.meta["operands"]) not in held], val)
    return train, val, tests, bo


def best_of_pick(records: list[StepRecord], scores: list[list[float]], size: int = BEST_OF) -> float:
    """Share of the sets of `size` consecutive records (one right, the rest wrong, as `wrong_per_problem` writes
    them) in which the highest minimum step score picks the right one. A tie counts as a fraction of a win.

    >>> recs = [StepRecord(id=str(i), problem="p", steps=["s"], labels=[i == 0]) for i in range(4)]
    >>> best_of_pick(recs, [[0.9], [0.2], [0.9], [0.1]])
    0.5
    """
    wins = 0.0
    for i in range(0, len(records) - size + 1, size):
        group = range(i, i + size)
        best = max(min(scores[j]) for j in group)
        top = [j for j in group if min(scores[j]) == best]
        wins += sum(all(records[j].labels) for j in top) / len(top)
    return wins / (len(records) // size)


def run(cfg) -> list[dict]:
    from prm.models import load
    from prm.score.baseline import likelihood_scores
    from prm.score.prm_scorer import PRMScorer
    from prm.train import TrainConfig
    from prm.train import run as train_run
    from prm.train.loop import read_curve

    folder = Path(cfg.output).parent / "prm_quality"
    train, val, tests, bo = make_data(folder, cfg)
    sets = {name: read_records(path) for name, path in tests.items()}
    bo_recs = read_records(bo)

    # (3) training-free: the untrained backbone's log-probability of each step's result
    model, tok = load(cfg.prm_base)
    base = {
        name: first_error_auroc(recs, likelihood_scores(model, tok, recs, mode="result", bf16=True))
        for name, recs in sets.items()
    }
    base_bo = best_of_pick(bo_recs, likelihood_scores(model, tok, bo_recs, mode="result", bf16=True))
    del model

    # (2) position-only floor, fitted on the training labels
    floor_model = fit_position_floor(read_records(train))
    floor = {name: first_error_auroc(recs, [floor_model.score(r) for r in recs]) for name, recs in sets.items()}

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
            feature_set=cfg.prm_feature_set,
            features_from=cfg.prm_features_from,
            readout=cfg.prm_readout,
            batch_tokens=cfg.prm_batch_tokens,
        )
    )
    scorer = PRMScorer.from_pretrained(run_dir, bf16=True)
    ours = {
        name: first_error_auroc(recs, scorer.score_batch([(r.problem, r.steps) for r in recs]))
        for name, recs in sets.items()
    }
    ours_bo = best_of_pick(bo_recs, scorer.score_batch([(r.problem, r.steps) for r in bo_recs]))

    label = f"PRM ({cfg.prm_readout} readout{', likelihood features' if cfg.prm_features else ''})"
    rows = []
    kinds = ["all", *sorted({k for q in ours.values() for k in q} - {"all"})]
    for name in sets:
        for kind in kinds:
            value = ours[name].get(kind, float("nan"))
            if name == "in-family":
                goal = ">= 0.85 and > baseline" if kind == "all" else "> baseline"
                met = value > base[name].get(kind, 1) and (value >= 0.85 if kind == "all" else True)
            else:
                goal = ">= 0.90" if kind == "all" else ">= 0.85"
                met = value >= (0.90 if kind == "all" else 0.85)
            rows.append(row(f"AUROC correct vs first error, {name} [{kind}]: {label}", value, "", goal, met))
            rows.append(
                row(f"  training-free result log-prob, {name} [{kind}]", base[name].get(kind, float("nan")), "")
            )
            rows.append(row(f"  position-only floor, {name} [{kind}]", floor[name].get(kind, float("nan")), ""))
    random_pick = 1 / BEST_OF
    rows.append(
        row(
            f"best-of-{BEST_OF} on held-out-family sets (1 right + {BEST_OF - 1} wrong): PRM min-score pick",
            100 * ours_bo,
            "%",
            f">= random + 30 ({100 * random_pick + 30:.0f})",
            ours_bo >= random_pick + 0.30,
        )
    )
    rows.append(row("  training-free result log-prob, min-score pick", 100 * base_bo, "%"))
    rows.append(row("  random pick", 100 * random_pick, "%"))
    rows.append(
        row(
            f"PRM training: {report['steps']} steps, {report['tokens']:,} tokens ({cfg.prm_phrasing} phrasings)",
            report["seconds"] / 60,
            "CPU-minutes",
            tokens_per_s=report["tokens_per_s"],
        )
    )
    curve = read_curve(run_dir)
    plot = Path(cfg.output).with_name("prm_learning_curve.png")
    plot_curves({"PRM (validation)": curve}, base["in-family"].get("all"), floor["in-family"].get("all"), plot)
    rows.append(row(f"learning curve (tokens, val AUROC) -> {plot}", len(curve), "points", curve=curve))
    bars = Path(cfg.output).with_name("prm_quality.png")
    plot_kinds({"PRM": ours, "training-free": base, "position floor": floor}, kinds, bars)
    rows.append(row(f"AUROC per error kind, in-family and held-out family -> {bars}", len(kinds), "kinds"))
    return rows


def plot_kinds(results: dict[str, dict[str, dict[str, float]]], kinds: list[str], path: Path) -> None:
    """Grouped bars: per error kind, each method's AUROC on each test set (solid in-family, hatched held-out)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from prm.fileio import atomic_write

    fig = Figure(figsize=(9, 4.4))
    ax = fig.add_subplot()
    colours = {"PRM": "tab:blue", "training-free": "tab:green", "position floor": "tab:gray"}
    width = 0.8 / (len(results) * len(TEST_SETS))
    for m, (method, per_set) in enumerate(results.items()):
        for s, name in enumerate(TEST_SETS):
            xs = [i + (m * len(TEST_SETS) + s) * width - 0.4 + width / 2 for i in range(len(kinds))]
            ys = [per_set[name].get(k, float("nan")) for k in kinds]
            hatch = "//" if s else None
            ax.bar(xs, ys, width, color=colours.get(method), hatch=hatch, edgecolor="white", label=f"{method}, {name}")
    ax.axhline(0.85, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(kinds)), [k.replace("_", " ") for k in kinds], fontsize=8)
    ax.set_ylabel("AUROC correct vs first error")
    ax.set_ylim(0.3, 1.0)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png", dpi=110)


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

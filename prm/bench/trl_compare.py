"""Side by side with TRL's PRMTrainer (`trl==1.13.0`, token-classification head), measured in one run.

    make bench-trl        # builds .venv-bench (this project + trl==1.13.0) and runs: prm bench --suites trl

Both trainers get the same records (`prm_train` synthetic traces, matched pairs: half correct, first errors of every
kind), the same backbone, the same LoRA (r=16, alpha 32, no dropout, on every linear projection), backbone learning
rate, warmup + cosine schedule, batch size (`trl_batch` records), maximum length, bf16 autocast and no gradient
checkpointing, for the same number of optimizer steps (`trl_epochs` passes): every record is seen equally often.
Each keeps the rest of its own recipe: TRL's Trainer clips gradients at norm 1 and draws random batches, and its
`score` head trains at the backbone's rate; ours groups batches by length (less padding), puts the traces of one
problem in one row (their shared prefix computed once), does not clip, and trains its readout at `readout_lr`.
Both read each record up to its last labeled step (TRL's format cuts before the first null label; our trainer leaves out the unlabeled tail). Each
trainer runs in its own process (peak memory is that process's), and the time spent on validation is left out of
its training tokens/s. Quality is measured on the same `prm_test` held-out traces: AUROC of correct steps against
first-error steps, overall and per error kind, and step AUROC over every labeled step; beside them the position-only
floor and the backbone's training-free result log-probability. A learning curve (validation AUROC against training
tokens) of both goes to `trl_compare.png`.

TRL's recipe is used as its docs give it: prompt + steps each followed by the separator "\\n", the label on the
separator token, `AutoModelForTokenClassification` with 2 labels; records are cut before their first null label
(steps after a first error carry no label in ours either). Its default learning rate (1e-5) is meant for full
fine-tuning; both sides use `trl_lr`.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from prm.bench import row
from prm.bench.prm_quality import make_data, plot_curves
from prm.eval.floor import fit_position_floor
from prm.eval.metrics import auroc_summary, first_error_auroc, pad_scores
from prm.records import StepRecord, read_records

TRL_VERSION = "1.13.0"
SEPARATOR = "\n"
SIDES = ("trl", "ours")
LABELS = {"ours": "ours", "trl": "TRL PRMTrainer"}


def peak_memory_mb() -> float:
    """This process's peak resident memory so far (on a GPU: its peak allocated device memory if larger)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    try:
        import torch

        if torch.cuda.is_available():
            peak = max(peak, torch.cuda.max_memory_allocated() / 2**20)
    except ImportError:
        pass
    return round(peak, 1)


# ---------------------------------------------------------------------------------------------------- TRL's side


def trl_example(rec: StepRecord, *, for_training: bool) -> dict | None:
    """A record as TRL's stepwise-supervision row. For training it is cut before its first null label (None when
    nothing labeled is left); for scoring every step gets a placeholder label so that each has a position."""
    if not for_training:
        return {"prompt": rec.problem + SEPARATOR, "completions": list(rec.steps), "labels": [True] * len(rec.steps)}
    n = next((i for i, lab in enumerate(rec.labels) if lab is None), len(rec.steps))
    if n == 0:
        return None
    return {"prompt": rec.problem + SEPARATOR, "completions": list(rec.steps[:n]), "labels": list(rec.labels[:n])}


def trl_scores(model, tok, records: list[StepRecord], max_length: int, bf16: bool) -> list[list[float]]:
    """P(correct) of every step from a token-classification PRM, laid out exactly as TRL's trainer lays out rows."""
    import torch
    from trl.experimental.prm import PRMTrainer

    from prm.fit.rows import pad_right
    from prm.models import bf16_autocast
    from prm.score.prm_scorer import length_batches

    rows = []
    for r in records:
        ex = PRMTrainer.tokenize_row(trl_example(r, for_training=False), tok, SEPARATOR, max_length, None, False, True)
        rows.append((ex["input_ids"], [i for i, lab in enumerate(ex["labels"]) if lab != -100]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[list[float]] = [[] for _ in records]
    with torch.no_grad(), bf16_autocast(device, bf16):
        for batch in length_batches([len(ids) for ids, _ in rows], 8192):
            ids, mask = pad_right([rows[i][0] for i in batch], tok.pad_token_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            probs = logits.softmax(-1)[..., 1].cpu()
            for j, i in enumerate(batch):
                s = [float(probs[j, p]) for p in rows[i][1]]
                # a step cut off by max_length repeats the last score (none are at these lengths)
                out[i] = pad_scores(s, len(records[i].steps))
    if was_training:
        model.train()
    return out


def train_trl(spec: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForTokenClassification, AutoTokenizer, TrainerCallback
    from trl.experimental.prm import PRMConfig, PRMTrainer

    from prm.models import resolve
    from prm.train.config import ALL_LINEAR

    torch.manual_seed(spec["seed"])
    folder = resolve(spec["base"])
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=2, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    rows = [x for r in read_records(spec["train"]) if (x := trl_example(r, for_training=True))]
    val = read_records(spec["val"])
    curve: list[tuple[int, float]] = []
    eval_seconds = [0.0]

    class Curve(TrainerCallback):
        # validation AUROC every eval_every steps, timed so that it can be left out of the training rate
        def on_step_end(self, args, state, control, model=None, **kw):
            if spec["eval_every"] and state.global_step % spec["eval_every"] == 0:
                t0 = time.perf_counter()
                a = first_error_auroc(val, trl_scores(model, tok, val, spec["max_length"], spec["bf16"]))
                curve.append((int(state.num_input_tokens_seen), a.get("all", float("nan"))))
                eval_seconds[0] += time.perf_counter() - t0

    args = PRMConfig(
        output_dir=str(Path(spec["folder"]) / "trl-run"),
        per_device_train_batch_size=spec["batch"],
        learning_rate=spec["lr"],
        lr_scheduler_type="cosine",
        warmup_steps=int(spec["warmup"] * spec["steps"]),
        max_steps=spec["steps"],
        max_length=spec["max_length"],
        step_separator=SEPARATOR,
        bf16=spec["bf16"],
        use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=False,
        include_num_input_tokens_seen="non_padding",
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=spec["seed"],
        dataloader_num_workers=0,
        disable_tqdm=not spec["progress"],
    )
    lora = LoraConfig(task_type="TOKEN_CLS", r=16, lora_alpha=32, lora_dropout=0.0, target_modules=list(ALL_LINEAR))
    trainer = PRMTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=lora,
        callbacks=[Curve()],
    )
    result = trainer.train()
    peak_training = peak_memory_mb()
    seconds = result.metrics["train_runtime"] - eval_seconds[0]
    tokens = int(trainer.state.num_input_tokens_seen)
    return {
        "steps": trainer.state.global_step,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "eval_seconds": round(eval_seconds[0], 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "quality": quality(spec, lambda recs: trl_scores(trainer.model, tok, recs, spec["max_length"], spec["bf16"])),
        "curve": curve,
        "peak_training_mb": peak_training,
    }


# ---------------------------------------------------------------------------------------------------- our side


def train_ours(spec: dict) -> dict:
    from prm.score.prm_scorer import PRMScorer
    from prm.train import TrainConfig
    from prm.train import run as train_run
    from prm.train.loop import read_curve

    run_dir = Path(spec["folder"]) / "ours-run"
    report = train_run(
        TrainConfig(
            train=spec["train"],
            val=spec["val"],
            output=str(run_dir),
            base=spec["base"],
            max_steps=spec["steps"],
            batch_size=spec["batch"],
            batch_tokens=spec["batch"] * spec["max_length"],  # never binding: batch_size records decide
            max_length=spec["max_length"],
            lr=spec["lr"],
            warmup=spec["warmup"],
            bf16=spec["bf16"],
            eval_every=spec["eval_every"],
            save_every=0,
            seed=spec["seed"],
            progress=spec["progress"],
        )
    )
    peak_training = peak_memory_mb()
    gc.collect()  # the trained model (held in reference cycles by accelerate) goes before the scorer loads its own
    scorer = PRMScorer.from_pretrained(run_dir, bf16=spec["bf16"])
    return {
        "steps": report["steps"],
        "tokens": report["tokens"],
        "seconds": report["seconds"],
        "eval_seconds": report["eval_seconds"],
        "tokens_per_s": report["tokens_per_s"],
        "computed_tokens": report["computed_tokens"],  # fewer than tokens where rows share prefixes
        "quality": quality(spec, lambda recs: scorer.score_batch([(r.problem, r.steps) for r in recs])),
        "curve": read_curve(run_dir),
        "peak_training_mb": peak_training,
    }


def quality(spec: dict, score) -> dict[str, dict[str, float]]:
    """{test set: auroc_summary} for a scorer `score(records) -> step scores`."""
    out = {}
    for name, path in spec["tests"].items():
        recs = read_records(path)
        out[name] = auroc_summary(recs, score(recs))
    return out


def worker(side: str, spec_path: str, out_path: str) -> None:
    """One trainer in this process: train, score the test set, write figures and this process's peak memory."""
    spec = json.loads(Path(spec_path).read_text())
    result = (train_trl if side == "trl" else train_ours)(spec)
    result["peak_memory_mb"] = peak_memory_mb()
    Path(out_path).write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------------------------------------------- the suite


def check_trl() -> None:
    try:
        import trl
    except ImportError:
        raise SystemExit(
            f"the trl suite needs trl=={TRL_VERSION}, installed only in the bench environment: run `make bench-trl`"
        ) from None
    if trl.__version__ != TRL_VERSION:
        print(f"note: trl {trl.__version__} is installed; the figures in the README were measured with {TRL_VERSION}")


def spec_for(cfg, folder: Path, train: Path, val: Path, tests: dict[str, Path]) -> dict:
    n = sum(1 for _ in read_records(train))
    return {
        "folder": str(folder),
        "train": str(train),
        "val": str(val),
        "tests": {name: str(path) for name, path in tests.items()},
        "base": cfg.prm_base,
        "batch": cfg.trl_batch,
        "max_length": cfg.trl_max_length,
        "steps": max(1, round(n * cfg.trl_epochs / cfg.trl_batch)),
        "lr": cfg.trl_lr,
        "warmup": 0.05,
        "bf16": True,
        "eval_every": cfg.prm_eval_every,
        "seed": cfg.prm_seed,
        "progress": cfg.trl_progress,
    }


def run(cfg) -> list[dict]:
    check_trl()
    from prm.models import load
    from prm.score.baseline import likelihood_scores

    folder = Path(cfg.output).parent / "trl_compare"
    train, val, tests, _ = make_data(folder, cfg)
    spec = spec_for(cfg, folder, train, val, tests)
    (folder / "spec.json").write_text(json.dumps(spec, indent=2))
    results = {}
    for side in SIDES:
        out = folder / f"{side}.json"
        print(f"trl suite: training {side} ({spec['steps']} steps of {spec['batch']} records)", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "prm.bench.trl_compare", side, str(folder / "spec.json"), str(out)],
            check=True,
            env=os.environ | {"TOKENIZERS_PARALLELISM": "false"},
        )
        results[side] = json.loads(out.read_text())

    model, tok = load(cfg.prm_base)
    baseline = quality(spec, lambda recs: likelihood_scores(model, tok, recs, mode="result", bf16=True))
    floor_model = fit_position_floor(read_records(train))
    floor = quality(spec, lambda recs: [floor_model.score(r) for r in recs])
    plot = Path(cfg.output).with_name("trl_compare.png")
    curves = {f"{LABELS[s]} (validation)": results[s]["curve"] for s in SIDES}
    plot_curves(curves, baseline["in-family"].get("all"), floor["in-family"].get("all"), plot)
    return rows_for(results, baseline, floor, spec, plot)


def rows_for(results: dict, baseline: dict, floor: dict, spec: dict, plot: Path) -> list[dict]:
    ours, trl = results["ours"], results["trl"]
    rows = []
    for test_set, q in ours["quality"].items():
        kinds = ["all", *sorted(k for k in q if k not in ("all", "steps")), "steps"]
        for kind in kinds:
            name = "step AUROC, every labeled step" if kind == "steps" else f"AUROC correct vs first error [{kind}]"
            name = f"{name}, {test_set}"
            o, t, b, f = (
                x[test_set].get(kind, float("nan")) for x in (ours["quality"], trl["quality"], baseline, floor)
            )
            if kind == "all":
                goal, met = ">= 0.85 and > baseline", o >= 0.85 and o > b
            elif kind == "steps":
                goal, met = ">= TRL's", o >= t
            else:
                goal, met = "> baseline", o > b
            rows.append(row(f"{name}: ours", o, "", goal, met))
            rows.append(row(f"  {name}: TRL PRMTrainer", t, ""))
            rows.append(row(f"  {name}: training-free result log-prob", b, ""))
            rows.append(row(f"  {name}: position-only floor", f, ""))
    speed = ours["tokens_per_s"] / trl["tokens_per_s"]
    rows.append(row("training tokens/s: ours / TRL PRMTrainer", speed, "x", ">= 2.0", speed >= 2.0))
    for side, label in LABELS.items():
        r = results[side]
        rows.append(
            row(
                f"  {label}: {r['steps']} steps of {spec['batch']} records, {r['tokens']:,} tokens in {r['seconds']:.0f} s",
                r["tokens_per_s"],
                "tokens/s",
            )
        )
        if "computed_tokens" in r:
            rows.append(
                row(f"  {label}: tokens computed (traces of one problem share a row)", r["computed_tokens"], "")
            )
        if "peak_training_mb" in r:
            rows.append(row(f"  {label}: peak memory, loading and training", r["peak_training_mb"], "MiB"))
        rows.append(row(f"  {label}: peak memory, whole process (test scoring included)", r["peak_memory_mb"], "MiB"))
    rows.append(row(f"learning curves (tokens, val AUROC) -> {plot}", len(ours["curve"]), "points"))
    return rows


if __name__ == "__main__":
    worker(*sys.argv[1:4])

"""`prm train`: the PRM's items, loss and checkpoints, trained by the shared loop (`prm.fit`).

    prm train --train data/out/train.jsonl --val data/out/val.jsonl --output runs/prm

setup (records -> encoded items, model, optimizer groups) -> fit (prm.fit.loop: micro-batches grouped by length,
gradient accumulation, warmup + cosine, eval every k steps, resumable checkpoints) -> save (the final checkpoint and
a report). `--resume true` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from prm.config import ConfigError
from prm.eval.metrics import auroc_summary, pad_scores
from prm.fit import Job, accelerator, fit, read_evals, setup_model
from prm.fit.state import load_weights as load_backbone
from prm.model.encode import Encoded, encode, first_steps
from prm.model.io import build, save
from prm.model.prm import Spec, collate, collate_shared
from prm.records import StepRecord, read_records
from prm.score.prm_scorer import score_encoded
from prm.train.config import TrainConfig


@dataclass
class Item:
    enc: Encoded
    labels: list[float | None]  # per kept step: 1.0 / 0.0 / None (no loss)
    values: list[float | None]
    problem: str  # items of one problem may share a row (share_prefixes)

    @property
    def input_ids(self) -> list[int]:
        return self.enc.input_ids


def make_items(records: list[StepRecord], tok, tag_id: int, cfg: TrainConfig) -> tuple[list[Item], dict]:
    """Encode records; drop those with nothing to learn from. Returns items and counts (truncation included)."""
    items, dropped_steps, empty, trimmed_steps = [], 0, 0, 0
    for r in records:
        enc = encode(tok, tag_id, r.problem, r.steps, cfg.max_length)
        dropped_steps += enc.dropped
        labels = [None if x is None else float(x) for x in r.labels[: enc.kept]]
        values = list(r.values[: enc.kept])
        if cfg.value_target == "any":
            values = [None if v is None else float(v > 0) for v in values]
        if cfg.last_step_only:
            # Outcome supervision: one label per solution, on its last step, saying whether the answer is right.
            outcome = r.meta.get("correct", all(x is not False for x in r.labels))
            labels = [None] * (enc.kept - 1) + [float(bool(outcome))] if enc.kept == len(r.steps) else [None] * enc.kept
            values = [None] * enc.kept
        used = [
            (lab is not None and cfg.loss != "soft") or (v is not None and cfg.loss != "hard")
            for lab, v in zip(labels, values, strict=True)
        ]
        if enc.kept == 0 or not any(used):
            empty += 1
            continue
        # Steps after the last one with a loss change nothing (attention is causal): leave them out.
        n = max(i for i, u in enumerate(used) if u) + 1
        trimmed_steps += enc.kept - n
        items.append(Item(first_steps(enc, n), labels[:n], values[:n], r.problem))
    counts = {"records": len(records), "used": len(items), "no_signal": empty, "truncated_steps": dropped_steps}
    return items, counts | {"unlabeled_tail_steps_left_out": trimmed_steps}


def batch_loss(prm, rows: list[list[Item]], cfg: TrainConfig, pad_id: int, device) -> tuple[torch.Tensor, int]:
    """Loss of a micro-batch of rows, and its record tokens (every record's own length, what another trainer counts)."""
    items = [it for row in rows for it in row]
    if any(len(row) > 1 for row in rows):
        batch = collate_shared([[it.enc for it in row] for row in rows], pad_id, device)
    else:
        batch = collate([it.enc for it in items], pad_id, device)
    logits = prm(batch)
    labels = [x for it in items for x in it.labels]
    values = [x for it in items for x in it.values]
    loss = logits.new_zeros(())
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    if cfg.loss in ("hard", "both"):
        idx = [i for i, x in enumerate(labels) if x is not None]
        if idx:
            target = torch.tensor([labels[i] for i in idx], device=device)
            loss = loss + bce(logits[idx], target)
    if cfg.loss in ("soft", "both"):
        idx = [i for i, x in enumerate(values) if x is not None]
        if idx:
            target = torch.tensor([values[i] for i in idx], device=device, dtype=torch.float32)
            w = cfg.soft_weight if cfg.loss == "both" else 1.0
            loss = loss + w * bce(logits[idx], target)
    return loss, sum(len(it.enc.input_ids) for it in items)


def evaluate(prm, tok, val_records: list[StepRecord], cfg: TrainConfig) -> dict:
    encoded = [encode(tok, prm.tag_id, r.problem, r.steps, max(cfg.max_length, 1024)) for r in val_records]
    scores = score_encoded(prm, encoded, tok.pad_token_id, batch_tokens=cfg.batch_tokens * 2, bf16=cfg.bf16)
    scores = [pad_scores(s, len(r.steps)) for s, r in zip(scores, val_records, strict=True)]
    summary = auroc_summary(val_records, scores)
    prm.train()
    return {("auroc_steps" if k == "steps" else f"auroc_first_error_{k}"): v for k, v in summary.items()}


def read_curve(run_dir: str | Path) -> list[tuple[int, float]]:
    """(training tokens, validation first-error AUROC) of every evaluation in a run's log.jsonl, the final one once."""
    return [(r["tokens"], r["auroc_first_error_all"]) for r in read_evals(run_dir, ["auroc_first_error_all"])]


def run(cfg: TrainConfig) -> dict:
    torch.manual_seed(cfg.seed)
    acc = accelerator(cfg)
    spec = Spec(
        base=cfg.base,
        readout=cfg.readout,
        features=cfg.features,
        features_from=cfg.features_from,
        feature_set=cfg.feature_set,
        max_length=cfg.max_length,
    )
    prm, tok = build(spec, cfg.lora_spec())
    setup_model(prm.backbone, cfg, acc)
    items, counts = make_items(read_records(cfg.train), tok, prm.tag_id, cfg)
    if not items:
        raise ConfigError(f"{cfg.train}: no record has a labeled step to train on ({counts})")
    val = read_records(cfg.val) if cfg.val else []
    labels = [x for it in items for x in (it.labels if cfg.loss != "soft" else it.values) if x is not None]
    if labels and not cfg.resume:
        prm.init_bias(sum(labels) / len(labels))

    groups: dict[str, list] = {"backbone": [], "feat": [], "head": []}
    for n, p in prm.named_parameters():
        if p.requires_grad:
            groups[n.split(".")[0] if n.split(".")[0] in groups else "head"].append(p)
    lrs = {"backbone": cfg.lr, "head": cfg.readout_lr, "feat": cfg.feature_lr}

    def save_fn(folder: Path, report: dict | None, state_dict: dict | None) -> None:
        save(prm, tok, folder, extra=None if report is None else {"train_report": report}, state_dict=state_dict)

    job = Job(
        model=prm,
        items=items,
        loss=lambda model, rows, device: batch_loss(model, rows, cfg, tok.pad_token_id, device),
        groups=[{"params": ps, "lr": lrs[g]} for g, ps in groups.items()],
        save=save_fn,
        load=lambda folder: load_weights(folder, prm),
        evaluate=(lambda: evaluate(prm, tok, val, cfg)) if val else None,
    )
    extra = {"data": counts, "attention": getattr(prm.backbone.config, "_attn_implementation", None)}
    report = fit(acc, cfg, job, cfg.output, extra)
    if acc.is_main_process:
        final = report["final"]
        print(
            f"prm train: {report['steps']} steps, {report['tokens']} tokens in {report['seconds']:.0f} s "
            f"({report['tokens_per_s']:.0f} tok/s); "
            f"final {json.dumps({k: round(v, 4) for k, v in final.items() if isinstance(v, float)})} -> {cfg.output}"
        )
    return report


def load_weights(folder: Path, prm) -> None:
    """A checkpoint's adapter (or full backbone) and readout, into a freshly built PRM (for resuming)."""
    from safetensors.torch import load_file

    prm.load_readout_state(load_file(folder / "readout.safetensors"))
    load_backbone(folder, prm.backbone)

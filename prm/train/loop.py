"""`prm train`: a short, plain training loop on accelerate (no Trainer subclass).

    prm train --train data/out/train.jsonl --val data/out/val.jsonl --output runs/prm

setup (records -> encoded items, model, optimizer) -> fit (micro-batches grouped by length, gradient accumulation,
warmup + cosine, eval every k steps, resumable checkpoints) -> save (the final checkpoint and a report).
The data order is a pure function of (seed, epoch), and a checkpoint holds the optimizer, scheduler and RNG states,
so `--resume true` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from prm.config import save_config
from prm.eval.metrics import auroc_summary, pad_scores
from prm.fileio import atomic_write
from prm.model.encode import Encoded, encode, first_steps
from prm.model.io import build, save
from prm.model.prm import Spec, collate, collate_shared, prefix_tree
from prm.models import frozen_linears_to_bf16
from prm.records import StepRecord, read_records
from prm.score.prm_scorer import length_batches, score_encoded
from prm.train.config import TrainConfig
from prm.train.state import load_state, save_state


@dataclass
class Item:
    enc: Encoded
    labels: list[float | None]  # per kept step: 1.0 / 0.0 / None (no loss)
    values: list[float | None]
    problem: str  # items of one problem may share a row (share_prefixes)


def make_items(records: list[StepRecord], tok, tag_id: int, cfg: TrainConfig) -> tuple[list[Item], dict]:
    """Encode records; drop those with nothing to learn from. Returns items and counts (truncation included)."""
    items, dropped_steps, empty, trimmed_steps = [], 0, 0, 0
    for r in records:
        enc = encode(tok, tag_id, r.problem, r.steps, cfg.max_length)
        dropped_steps += enc.dropped
        labels = [None if x is None else float(x) for x in r.labels[: enc.kept]]
        values = list(r.values[: enc.kept])
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


class Row(NamedTuple):
    """Items laid out in one batch row, and the row's width: its prefix tree's size (the tokens it computes)."""

    items: list[int]
    width: int


def packs(items: list[Item], cfg: TrainConfig) -> list[Row]:
    """Items that share a row: with share_prefixes, the items of one problem in file order, a row at most
    batch_tokens wide and at most batch_size records (8 without a cap); else one each."""
    if not cfg.share_prefixes:
        return [Row([i], len(it.enc.input_ids)) for i, it in enumerate(items)]
    cap = cfg.batch_size or 8  # without a cap, a problem with many traces would make one very wide row
    by_problem: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_problem.setdefault(it.problem, []).append(i)
    out = []
    for members in by_problem.values():
        cur = Row([], 0)
        for i in members:
            width = len(prefix_tree([items[j].enc.input_ids for j in [*cur.items, i]])[0])
            if cur.items and (len(cur.items) >= cap or width > cfg.batch_tokens):
                out.append(cur)
                cur, width = Row([], 0), len(items[i].enc.input_ids)
            cur = Row([*cur.items, i], width)
        out.append(cur)
    return out


def epoch_batches(
    items: list[Item], cfg: TrainConfig, epoch: int, processes: int = 1, rank: int = 0, rows: list[Row] | None = None
) -> list[list[Row]]:
    """This process's micro-batches of an epoch, in a seeded order: each a list of rows (see `packs`; pass them as
    `rows` to skip recomputing). With several processes each takes every `processes`-th batch and the remainder (at
    most processes - 1 batches) is left out, so that every process runs the same number of steps: a process that
    ran out early would leave the others waiting in their all-reduce."""
    rows = packs(items, cfg) if rows is None else rows
    batches = length_batches([r.width for r in rows], cfg.batch_tokens, cfg.batch_size, [len(r.items) for r in rows])
    random.Random(cfg.seed * 1000 + epoch).shuffle(batches)
    if processes > 1:
        batches = batches[: len(batches) // processes * processes][rank::processes]
    return [[rows[r] for r in b] for b in batches]


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
    log = [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]
    curve = [(r["tokens"], r["auroc_first_error_all"]) for r in log if "auroc_first_error_all" in r]
    return curve[:-1] if len(curve) > 1 and curve[-1][0] == curve[-2][0] else curve


def run(cfg: TrainConfig) -> dict:
    from accelerate import Accelerator, DistributedType
    from tqdm import tqdm
    from transformers import get_cosine_schedule_with_warmup

    out_dir = Path(cfg.output)
    torch.manual_seed(cfg.seed)
    from accelerate.state import AcceleratorState

    # accelerate keeps one global state per process; a second run in the same process (a notebook, a benchmark)
    # may ask for another precision. The process-group part (PartialState) is kept for multi-process launches.
    AcceleratorState._reset_state(reset_partial_state=False)
    acc = Accelerator(mixed_precision="bf16" if cfg.bf16 else "no", gradient_accumulation_steps=cfg.grad_accum)
    spec = Spec(
        base=cfg.base,
        readout=cfg.readout,
        features=cfg.features,
        features_from=cfg.features_from,
        max_length=cfg.max_length,
    )
    sharded = acc.distributed_type == DistributedType.FSDP
    if sharded and cfg.save_every:
        # our resumable state saves the optimizer from the main process, which under FSDP holds only its shard
        raise ValueError("save_every must be 0 under FSDP: mid-run resumable checkpoints are single-process/DDP only")
    prm, tok = build(spec, cfg.lora_spec())
    if cfg.bf16 and acc.device.type in ("cpu", "cuda") and not sharded:
        # Every forward pass of training and evaluation runs under bf16 autocast here. Under FSDP the parameters
        # stay as loaded: sharding mixed-dtype parameters has not been tried on GPUs yet.
        frozen_linears_to_bf16(prm.backbone)
    if cfg.attention == "sdpa":
        prm.backbone.set_attn_implementation("sdpa")
    elif cfg.attention == "eager" or (cfg.attention == "auto" and acc.device.type == "cpu"):
        # On a CPU, PyTorch's SDPA with an explicit mask (padding, or the tree mask of shared rows) is slower than
        # plain matmul-softmax attention on our rows of a few hundred tokens: 800 vs 983 tok/s (README). Eager attention keeps
        # (rows x heads x width^2) probabilities per layer for backward, so it is left to GPUs' SDPA kernels there.
        prm.backbone.set_attn_implementation("eager")
    if cfg.grad_checkpointing:
        prm.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(prm.backbone, "enable_input_require_grads"):
            prm.backbone.enable_input_require_grads()
    items, counts = make_items(read_records(cfg.train), tok, prm.tag_id, cfg)
    if not items:
        raise ValueError(f"{cfg.train}: no record has a labeled step to train on")
    val = read_records(cfg.val) if cfg.val else []
    labels = [x for it in items for x in (it.labels if cfg.loss != "soft" else it.values) if x is not None]
    if labels and not cfg.resume:
        prm.init_bias(sum(labels) / len(labels))

    groups: dict[str, list] = {"backbone": [], "feat": [], "head": []}
    for n, p in prm.named_parameters():
        if p.requires_grad:
            groups[n.split(".")[0] if n.split(".")[0] in groups else "head"].append(p)
    lrs = {"backbone": cfg.lr, "head": cfg.readout_lr, "feat": cfg.feature_lr}
    opt = torch.optim.AdamW(
        [{"params": ps, "lr": lrs[g]} for g, ps in groups.items() if ps], weight_decay=cfg.weight_decay
    )
    rows = packs(items, cfg)
    per_epoch = len(epoch_batches(items, cfg, 0, acc.num_processes, acc.process_index, rows))
    if per_epoch == 0:
        raise ValueError(f"{cfg.train}: fewer micro-batches than processes ({acc.num_processes}); lower batch_tokens")
    total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs / cfg.grad_accum))
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup * total), total)
    model, opt, sched = acc.prepare(prm, opt, sched)

    step, micro, tokens_seen, losses, last_loss, computed = 0, 0, 0, [], None, 0
    if cfg.resume and (out_dir / "checkpoint" / "train_state.json").exists():
        step, micro, tokens_seen = load_state(out_dir / "checkpoint", prm, opt, sched)
    # One writer of the logs and config: the main process (the others would interleave their lines).
    main = acc.is_main_process
    if main:
        save_config(cfg, out_dir)
    log_path = out_dir / "log.jsonl"
    log = open(log_path if main else os.devnull, "a" if cfg.resume else "w", encoding="utf-8")
    tb = _tensorboard(out_dir / "tb") if main else None
    bar = tqdm(
        total=total, initial=step, disable=not cfg.progress or not acc.is_main_process, desc="train", mininterval=2.0
    )
    # Training throughput leaves evaluation out: eval_seconds is reported beside it.
    t0, tokens_at_start, eval_secs = time.perf_counter(), tokens_seen, 0.0
    model.train()
    stop = step >= total or (cfg.max_tokens is not None and tokens_seen >= cfg.max_tokens)
    epoch = micro // max(per_epoch, 1)
    while not stop:
        order = epoch_batches(items, cfg, epoch, acc.num_processes, acc.process_index, rows)
        for b in order[micro - epoch * per_epoch :]:
            with acc.accumulate(model):
                loss, ntok = batch_loss(
                    model, [[items[i] for i in r.items] for r in b], cfg, tok.pad_token_id, acc.device
                )
                ncomp = sum(r.width for r in b)
                acc.backward(loss)
                opt.step()
                sched.step()
                opt.zero_grad()
            micro += 1
            if acc.num_processes > 1:  # every process must count the same tokens, or they stop at different steps
                ntok, ncomp = acc.reduce(torch.tensor([ntok, ncomp], device=acc.device), reduction="sum").tolist()
            tokens_seen += ntok
            computed += ncomp
            losses.append(loss.item())
            if not acc.sync_gradients:
                continue
            step += 1
            bar.update(1)
            last_loss = sum(losses) / len(losses)
            record = {"step": step, "tokens": tokens_seen, "loss": last_loss, "lr": sched.get_last_lr()[0]}
            if cfg.log_every and step % cfg.log_every == 0:
                record["tok_s"] = (tokens_seen - tokens_at_start) / (time.perf_counter() - t0 - eval_secs)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
            if val and cfg.eval_every and step % cfg.eval_every == 0:
                te = time.perf_counter()
                record |= evaluate(prm, tok, val, cfg)
                eval_secs += time.perf_counter() - te
            if cfg.log_every and step % cfg.log_every == 0 or len(record) > 4:
                _log(log, tb, record)
                losses = []
            stop = step >= total or (cfg.max_tokens is not None and tokens_seen >= cfg.max_tokens)
            if cfg.save_every and step % cfg.save_every == 0 and not stop and acc.is_main_process:
                save(prm, tok, out_dir / "checkpoint")
                save_state(out_dir / "checkpoint", opt, sched, step, micro, tokens_seen)
            if stop:
                break
        else:
            epoch += 1
    bar.close()
    secs = time.perf_counter() - t0 - eval_secs
    final = {"step": step, "tokens": tokens_seen, "loss": last_loss}
    if val:
        final |= evaluate(prm, tok, val, cfg)
    _log(log, tb, final)
    log.close()
    report = {
        "data": counts,
        "processes": acc.num_processes,
        "distributed": acc.distributed_type.value,
        "attention": getattr(prm.backbone.config, "_attn_implementation", None),
        "steps": step,
        "tokens": tokens_seen,
        "seconds": round(secs, 1),
        "eval_seconds": round(eval_secs, 1),
        "tokens_per_s": round((tokens_seen - tokens_at_start) / secs, 1),
        # Tokens are the records' own tokens (what another trainer counts); rows that share prefixes compute fewer.
        # computed_tokens counts this session only (a resumed run starts it again).
        "computed_tokens": computed,
        "computed_share": round(computed / max(tokens_seen - tokens_at_start, 1), 3),
        "rows": {"rows": len(rows), "records": len(items), "shared": cfg.share_prefixes},
        "final": final,
    }
    # Under FSDP every process takes part in gathering the full weights; the main process writes them.
    gathered = acc.get_state_dict(model) if sharded else None
    if acc.is_main_process:
        save(prm, tok, out_dir, extra={"train_report": report}, state_dict=gathered)
        save_config(cfg, out_dir)
        with atomic_write(out_dir / "train_report.json") as f:
            json.dump(report, f, indent=2)
    if acc.is_main_process:
        print(
            f"prm train: {step} steps, {tokens_seen} tokens in {secs:.0f} s ({report['tokens_per_s']:.0f} tok/s); "
            f"final {json.dumps({k: round(v, 4) for k, v in final.items() if isinstance(v, float)})} -> {out_dir}"
        )
    return report


def _log(f, tb, record: dict) -> None:
    f.write(json.dumps(record) + "\n")
    f.flush()
    if tb is not None:
        for k, v in record.items():
            if k != "step" and isinstance(v, (int, float)):
                tb.add_scalar(k, v, record["step"])
        tb.flush()


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; the JSON-lines log always exists
        return None
    return SummaryWriter(str(path))

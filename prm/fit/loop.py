"""The training loop every trainer shares (`prm train`, `prm sft`): a short, plain loop on accelerate.

    acc = accelerator(cfg)
    model = ...build...; setup_model(backbone, cfg, acc)
    report = fit(acc, cfg, Job(model, items, loss, groups, save, load, evaluate), out_dir, extra)

micro-batches grouped by length (rows of one problem share their prefixes), gradient accumulation, warmup + cosine,
evaluation every k steps, resumable checkpoints, the final save and a report. The data order is a pure function of
(seed, epoch), and a checkpoint holds the optimizer, scheduler and RNG states, so `resume` continues exactly where a
killed run stopped.

`cfg` is the command's config; the loop reads these fields of it: lr schedule (warmup, epochs, max_steps,
max_tokens), batching (batch_tokens, batch_size, share_prefixes, grad_accum), bf16, attention, grad_checkpointing,
eval_every, save_every, log_every, seed, resume, progress.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from prm.config import check_resumable, save_config
from prm.fileio import atomic_write
from prm.fit.rows import epoch_batches, packs
from prm.fit.state import load_state, save_state
from prm.models import frozen_linears_to_bf16, use_bf16


@dataclass
class Job:
    """What one training run needs besides its config.

    loss(model, rows, device) -> (loss, record tokens): rows is a list of rows, each a list of items sharing it.
    save(folder, report, state_dict): write the model files (report None for a mid-run checkpoint; state_dict the
    gathered full state under FSDP, else None). load(folder): put a checkpoint's weights back into `model`.
    evaluate() -> figures merged into the log line (after it the model must be back in train mode)."""

    model: torch.nn.Module
    items: list
    loss: Callable[[Any, list[list[Any]], Any], tuple[torch.Tensor, int]]
    groups: list[dict]
    save: Callable[[Path, dict | None, dict | None], None]
    load: Callable[[Path], None]
    evaluate: Callable[[], dict] | None = None


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc's malloc_trim; nothing elsewhere).

    Every micro-batch has its own shape, so its activations are freed blocks of other sizes than the next ones
    need; glibc keeps them, and a CPU run's resident memory grew from 6 to 9 GiB over 40 SFT steps (and past 13 GiB
    in a longer run) while the live tensors stayed under 2 GiB. Trimming after every optimizer step kept it at
    1.4-1.9 GiB, but the memory it hands back is faulted in again by the next step, and sampling in the same
    process afterwards ran at 87 against 113 tok/s: the loop trims every 10 steps."""
    global _trim
    if _trim is None:
        import ctypes
        import ctypes.util

        try:
            _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _trim = False
    if _trim:
        _trim(0)


_trim = None


def read_evals(run_dir: str | Path, keys: Sequence[str]) -> list[dict]:
    """The lines of a run's log.jsonl that hold any of `keys` (its evaluations), the final evaluation once: fit
    evaluates again at the end, which repeats the last periodic evaluation when the run ends on one."""
    log = [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines() if line.strip()]
    evals = [r for r in log if any(k in r for k in keys)]
    return evals[:-1] if len(evals) > 1 and evals[-1]["tokens"] == evals[-2]["tokens"] else evals


def accelerator(cfg):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps one global state per process; a second run in the same process (a notebook, a benchmark,
    # the rounds of prm improve) may ask for another precision. The process-group part (PartialState) is kept for
    # multi-process launches.
    AcceleratorState._reset_state(reset_partial_state=False)
    bf16 = use_bf16(cfg.bf16, "cuda" if torch.cuda.is_available() else "cpu")  # fp32 where bf16 is emulated
    acc = Accelerator(mixed_precision="bf16" if bf16 else "no", gradient_accumulation_steps=cfg.grad_accum)
    if sharded(acc) and cfg.save_every:
        # our resumable state saves the optimizer from the main process, which under FSDP holds only its shard
        raise ValueError("save_every must be 0 under FSDP: mid-run resumable checkpoints are single-process/DDP only")
    return acc


def sharded(acc) -> bool:
    from accelerate import DistributedType

    return acc.distributed_type == DistributedType.FSDP


def setup_model(backbone, cfg, acc) -> None:
    """The speed settings of a backbone about to be trained: bf16 frozen linears, the attention kernel and gradient
    checkpointing (call after LoRA is applied, so that only frozen layers are converted)."""
    if use_bf16(cfg.bf16, acc.device.type) and acc.device.type in ("cpu", "cuda") and not sharded(acc):
        # Every forward pass of training and evaluation runs under bf16 autocast here. Under FSDP the parameters
        # stay as loaded: sharding mixed-dtype parameters has not been tried on GPUs yet.
        frozen_linears_to_bf16(backbone)
    if cfg.attention == "sdpa":
        backbone.set_attn_implementation("sdpa")
    elif cfg.attention == "eager" or (cfg.attention == "auto" and acc.device.type == "cpu"):
        # On a CPU, PyTorch's SDPA with an explicit mask (padding, or the tree mask of shared rows) is slower than
        # plain matmul-softmax attention on our rows of a few hundred tokens: 800 vs 983 tok/s (README). Eager
        # attention keeps (rows x heads x width^2) probabilities per layer for backward, so it is left to GPUs' SDPA
        # kernels there.
        backbone.set_attn_implementation("eager")
    if cfg.grad_checkpointing:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(backbone, "enable_input_require_grads"):
            backbone.enable_input_require_grads()


def planned_steps(cfg, per_epoch: int, epoch_tokens: int) -> int:
    """Optimizer steps the run will take, which the learning-rate schedule spans: max_steps when given, else the
    epochs' steps, or fewer when max_tokens ends the run first (estimated from the mean tokens per micro-batch: an
    epoch's tokens over this process's micro-batches, since every process counts all processes' tokens). Without
    the token budget, a run stopped by max_tokens after a few steps of a long schedule never left its warmup (the
    demo's PRM trained 10 steps of a 1,000-step schedule, at a fifth of its learning rate at most).

    >>> from types import SimpleNamespace as C
    >>> planned_steps(C(max_steps=None, epochs=10.0, grad_accum=1, max_tokens=None), 100, 50_000)
    1000
    >>> planned_steps(C(max_steps=None, epochs=10.0, grad_accum=2, max_tokens=6_000), 100, 50_000)
    6
    """
    if cfg.max_steps:
        return cfg.max_steps
    total = max(1, math.ceil(per_epoch * cfg.epochs / cfg.grad_accum))
    if cfg.max_tokens is not None:
        per_micro = epoch_tokens / per_epoch  # one micro-batch of every process
        total = min(total, max(1, math.ceil(cfg.max_tokens / per_micro / cfg.grad_accum)))
    return total


def fit(acc, cfg, job: Job, out_dir: str | Path, extra: dict | None = None) -> dict:
    """Train `job.model` on `job.items` as `cfg` says; save checkpoints and the final model into `out_dir` (with
    log.jsonl, train_report.json and config.yaml). Returns the report: `extra` plus the loop's figures."""
    from tqdm import tqdm
    from transformers import get_cosine_schedule_with_warmup

    out_dir = Path(out_dir)
    opt = torch.optim.AdamW([g for g in job.groups if g["params"]], weight_decay=getattr(cfg, "weight_decay", 0.0))
    items = job.items
    rows = packs(items, cfg)
    per_epoch = len(epoch_batches(items, cfg, 0, acc.num_processes, acc.process_index, rows))
    if per_epoch == 0:
        raise ValueError(f"fewer micro-batches than processes ({acc.num_processes}); lower batch_tokens")
    total = planned_steps(cfg, per_epoch, sum(len(it.input_ids) for it in items))
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup * total), total)
    model, opt, sched = acc.prepare(job.model, opt, sched)

    step, micro, tokens_seen, losses, last_loss, computed = 0, 0, 0, [], None, 0
    resumed = cfg.resume and (out_dir / "checkpoint" / "train_state.json").exists()
    if resumed:
        # A checkpoint continues exactly only under the schedule that wrote it.
        check_resumable(cfg, out_dir, only=SCHEDULE)
        job.load(out_dir / "checkpoint")
        step, micro, tokens_seen = load_state(out_dir / "checkpoint", opt, sched)
    # One writer of the logs and config: the main process (the others would interleave their lines).
    main = acc.is_main_process
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir)
        if resumed:
            log_until(out_dir / "log.jsonl", step)
    log = open(out_dir / "log.jsonl" if main else os.devnull, "a" if resumed else "w", encoding="utf-8")
    tb = _tensorboard(out_dir / "tb") if main else None
    bar = tqdm(total=total, initial=step, disable=not cfg.progress or not main, desc="train", mininterval=2.0)
    # Training throughput leaves evaluation out: eval_seconds is reported beside it.
    t0, tokens_at_start, eval_secs = time.perf_counter(), tokens_seen, 0.0
    model.train()
    stop = step >= total or (cfg.max_tokens is not None and tokens_seen >= cfg.max_tokens)
    epoch = micro // max(per_epoch, 1)
    while not stop:
        order = epoch_batches(items, cfg, epoch, acc.num_processes, acc.process_index, rows)
        for b in order[micro - epoch * per_epoch :]:
            with acc.accumulate(model):
                loss, ntok = job.loss(model, [[items[i] for i in r.items] for r in b], acc.device)
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
            if step % 10 == 0:
                release_memory()
            last_loss = sum(losses) / len(losses)
            record = {"step": step, "tokens": tokens_seen, "loss": last_loss, "lr": sched.get_last_lr()[0]}
            if cfg.log_every and step % cfg.log_every == 0:
                record["tok_s"] = (tokens_seen - tokens_at_start) / (time.perf_counter() - t0 - eval_secs)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
            if job.evaluate is not None and cfg.eval_every and step % cfg.eval_every == 0:
                te = time.perf_counter()
                record |= job.evaluate()
                eval_secs += time.perf_counter() - te
            if cfg.log_every and step % cfg.log_every == 0 or len(record) > 4:
                _log(log, tb, record)
                losses = []
            stop = step >= total or (cfg.max_tokens is not None and tokens_seen >= cfg.max_tokens)
            if cfg.save_every and step % cfg.save_every == 0 and not stop and main:
                job.save(out_dir / "checkpoint", None, None)
                save_state(out_dir / "checkpoint", opt, sched, step, micro, tokens_seen)
            if stop:
                break
        else:
            epoch += 1
    bar.close()
    secs = time.perf_counter() - t0 - eval_secs
    final = {"step": step, "tokens": tokens_seen, "loss": last_loss}
    if job.evaluate is not None:
        final |= job.evaluate()
    _log(log, tb, final)
    log.close()
    report = (extra or {}) | {
        "processes": acc.num_processes,
        "distributed": acc.distributed_type.value,
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
    gathered = acc.get_state_dict(model) if sharded(acc) else None
    if main:
        job.save(out_dir, report, gathered)
        save_config(cfg, out_dir)
        with atomic_write(out_dir / "train_report.json") as f:
            json.dump(report, f, indent=2)
    return report


# The fields that decide the data order and the learning-rate schedule: a checkpoint continues exactly only under
# the same values (evaluation, logging and progress settings may change between the killed run and its resume).
SCHEDULE = {"lr", "warmup", "epochs", "max_steps", "max_tokens", "batch_tokens", "batch_size", "grad_accum", "seed"}


def log_until(path: Path, step: int) -> None:
    """Keep the log's lines up to `step` (a resumed run's checkpoint): the killed run may have logged steps after
    its last checkpoint, and the resumed run logs them again, so without this they would appear twice. A kill
    in the middle of a write leaves a torn last line; it goes too."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    with atomic_write(path) as f:
        f.writelines(kept)


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

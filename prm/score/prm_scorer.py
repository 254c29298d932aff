"""Scoring with a trained PRM: one forward pass per trace scores all its steps.

    prm = PRMScorer.from_pretrained("runs/prm")
    prm.score("Tom has 3 apples ...", ["3 + 4 = 7 apples.", "The answer is 7."])   # [0.93, 0.88]
    prm.score_batch([(problem, steps), ...])

    prm score --model runs/prm --input traces.jsonl --output scored.jsonl

Traces are batched by length (a batch holds up to `batch_tokens` padded tokens), under no_grad, optionally in bf16.
A step past `max_length` cannot be scored from a whole-steps prefix; its score is the last scored step's
(and the count is reported), since a PRM step score is a prefix judgement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch

from prm.config import config, option, save_config
from prm.eval.metrics import pad_scores
from prm.fit.rows import length_batches
from prm.model.encode import Encoded, encode
from prm.model.prm import PRM, collate
from prm.models import bf16_autocast, frozen_linears_to_bf16
from prm.records import read_records, write_records
from prm.score import attach_scores


@torch.no_grad()
def score_encoded(
    prm: PRM, encoded: list[Encoded], pad_id: int, *, batch_tokens: int = 8192, bf16: bool = False
) -> list[list[float]]:
    """P(step correct) for every kept step of every encoded trace."""
    prm.eval()
    device = next(prm.parameters()).device
    out: list[list[float]] = [[] for _ in encoded]
    for batch in length_batches([len(e.input_ids) for e in encoded], batch_tokens):
        items = [encoded[i] for i in batch if encoded[i].kept]
        if not items:
            continue
        with bf16_autocast(device, bf16):
            probs = torch.sigmoid(prm(collate(items, pad_id, device))).tolist()
        k = 0
        for i in batch:
            n = encoded[i].kept
            out[i] = probs[k : k + n]
            k += n
    return out


class PRMScorer:
    def __init__(
        self, prm: PRM, tokenizer, *, max_length: int | None = None, batch_tokens: int = 8192, bf16: bool = False
    ):
        self.prm, self.tok = prm, tokenizer
        self.max_length = max_length or max(prm.spec.max_length, 2048)
        self.batch_tokens, self.bf16 = batch_tokens, bf16
        self.truncated_steps = 0

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kw) -> PRMScorer:
        from prm.model.io import load

        prm, tok = load(folder)
        if kw.get("bf16") and next(prm.parameters()).device.type in ("cpu", "cuda"):
            # this scorer owns the model and runs it under bf16 autocast, which these devices have
            frozen_linears_to_bf16(prm)
        return cls(prm, tok, **kw)

    def score_batch(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        encoded = [encode(self.tok, self.prm.tag_id, p, s, self.max_length) for p, s in items]
        scores = score_encoded(self.prm, encoded, self.tok.pad_token_id, batch_tokens=self.batch_tokens, bf16=self.bf16)
        for e, s, (_, steps) in zip(encoded, scores, items, strict=True):
            self.truncated_steps += e.dropped
            s[:] = pad_scores(s, len(steps))
        return scores

    def score(self, problem: str, steps: Sequence[str]) -> list[float]:
        return self.score_batch([(problem, steps)])[0]


@config("score")
class ScoreConfig:
    model: str = option(help="a PRM checkpoint folder written by prm train")
    input: str = option(help="step records to score (traces)")
    output: str = option(help="scored records: meta.scores holds one probability per step")
    batch_tokens: int = option(8192, "padded tokens per forward pass")
    max_length: int = option(2048, "tokens per trace at most (whole steps are kept; later steps reuse the last score)")
    bf16: bool = option(False, "bf16 autocast (faster on CPU; scores differ from fp32 by about 1e-2)")


def run(cfg: ScoreConfig) -> None:
    t0 = time.perf_counter()
    scorer = PRMScorer.from_pretrained(
        cfg.model, max_length=cfg.max_length, batch_tokens=cfg.batch_tokens, bf16=cfg.bf16
    )
    records = read_records(cfg.input)
    scores = scorer.score_batch([(r.problem, r.steps) for r in records])
    for r, s in zip(records, scores, strict=True):
        attach_scores(r, s, f"prm:{Path(cfg.model).name}")
    write_records(records, cfg.output)
    save_config(cfg, cfg.output)
    secs = time.perf_counter() - t0
    print(
        f"prm score: {len(records)} traces in {secs:.1f} s ({len(records) / secs:.1f} traces/s) -> {cfg.output}"
        + (f"; {scorer.truncated_steps} steps past max_length" if scorer.truncated_steps else "")
    )

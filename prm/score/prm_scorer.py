"""Scoring with a trained PRM: one forward pass per trace scores all its steps.

    prm = PRMScorer.from_pretrained("runs/prm")
    prm.score("Tom has 3 apples ...", ["3 + 4 = 7 apples.", "The answer is 7."])   # [0.93, 0.88]
    prm.score_batch([(problem, steps), ...])

    prm score --model runs/prm --input traces.jsonl --output scored.jsonl

Traces are batched by length (a batch holds up to `batch_tokens` padded tokens; 0: the device's size, see
`prm.models.pass_tokens`), under no_grad, optionally in bf16.
Traces of one problem (a best-of-N pool) share rows as prefix trees, as in training: the problem and the first
steps they have in common are computed once, and the scores equal those of separate rows (a test holds them within
1e-4). With SDPA, a tree row's attention skips what its mask hides (`prm.model.tree_attention`), and a token's
log-probability that several features or traces read is computed once (`PRM.features`). A step past `max_length` cannot be scored from a whole-steps prefix; its score is the last scored step's
(and the count is reported), since a PRM step score is a prefix judgement.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from tqdm import tqdm

from prm.config import config, option, save_config
from prm.eval.metrics import pad_scores
from prm.fit.rows import Row, length_batches, packs
from prm.model.encode import Encoded, encode
from prm.model.prm import PRM, collate, collate_shared
from prm.models import bf16_autocast, frozen_linears_to_bf16, pass_tokens, use_bf16
from prm.records import read_records, write_records
from prm.score import attach_scores


@dataclass(frozen=True)
class _Keyed:
    problem: Hashable  # what `packs` groups rows by
    input_ids: list[int]


def shared_rows(encoded: Sequence[Encoded], keys: Sequence[Hashable], batch_tokens: int, per_row: int) -> list[Row]:
    """Rows of encodings with the same key (in input order), each a prefix tree at most `batch_tokens` wide and of
    at most `per_row` encodings; encodings without a kept step are left out. Any grouping scores the same (a tree
    of unrelated traces only shares nothing); keys that mark one problem make the trees small."""
    kept = [i for i, e in enumerate(encoded) if e.kept]
    cfg = SimpleNamespace(share_prefixes=True, batch_size=per_row, batch_tokens=batch_tokens)
    rows = packs([_Keyed(keys[i], encoded[i].input_ids) for i in kept], cfg)
    return [Row([kept[j] for j in r.items], r.width) for r in rows]


@torch.no_grad()
def score_encoded(
    prm: PRM,
    encoded: list[Encoded],
    pad_id: int,
    *,
    batch_tokens: int = 0,
    bf16: bool = False,
    keys: Sequence[Hashable] | None = None,
    per_row: int = 16,
    progress: bool = False,
) -> list[list[float]]:
    """P(step correct) for every kept step of every encoded trace. With `keys` (e.g. each trace's problem), traces
    of one key share rows as prefix trees (see `shared_rows`); without, each trace has its own row."""
    prm.eval()
    device = next(prm.parameters()).device
    batch_tokens = pass_tokens(batch_tokens, device.type)
    out: list[list[float]] = [[] for _ in encoded]
    if keys is None:
        rows = [Row([i], len(e.input_ids)) for i, e in enumerate(encoded) if e.kept]
    else:
        rows = shared_rows(encoded, keys, batch_tokens, per_row)
    batches = length_batches([r.width for r in rows], batch_tokens)
    a, b = prm.spec.calibration
    bar = tqdm(total=len(encoded), desc="scoring", unit="trace", disable=not progress, leave=False)
    for batch in batches:
        row_items = [[encoded[i] for i in rows[r].items] for r in batch]
        if keys is None:
            inputs = collate([items[0] for items in row_items], pad_id, device)
        else:
            inputs = collate_shared(row_items, pad_id, device)
        with bf16_autocast(device, bf16):
            probs = torch.sigmoid(prm(inputs) * a + b).tolist()
        k = 0
        for r in batch:
            for i in rows[r].items:
                n = encoded[i].kept
                out[i] = probs[k : k + n]
                k += n
            bar.update(len(rows[r].items))
    bar.close()
    return out


class PRMScorer:
    def __init__(
        self,
        prm: PRM,
        tokenizer,
        *,
        max_length: int | None = None,
        batch_tokens: int = 0,
        bf16: bool = False,
        share_prefixes: bool = True,
        progress: bool = False,
    ):
        self.prm, self.tok = prm, tokenizer
        self.max_length = max_length or max(prm.spec.max_length, 2048)
        self.batch_tokens, self.bf16, self.progress = batch_tokens, bf16, progress
        # a prefix tree needs an attention kernel that takes a 4D mask; others score each trace in its own row
        kernel = getattr(getattr(prm.backbone, "config", None), "_attn_implementation", "sdpa")
        self.share_prefixes = share_prefixes and kernel in ("sdpa", "eager")
        prm.sparse_trees = kernel == "sdpa"  # SDPA takes the tree mask as booleans: its rows can skip what it hides
        self.truncated_steps = 0

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kw) -> PRMScorer:
        from prm.model.io import load

        prm, tok = load(folder)
        if kw.pop("merge", True):
            prm.merge_adapter()  # this scorer owns the model and never trains or saves it
        kind = next(prm.parameters()).device.type
        if kw.get("bf16") and kind in ("cpu", "cuda") and use_bf16(True, kind):
            # this scorer owns the model and runs it under bf16 autocast, which these devices have
            frozen_linears_to_bf16(prm)
        return cls(prm, tok, **kw)

    def encode(self, problem: str, steps: Sequence[str]) -> Encoded:
        """The trace as the PRM reads it; `.dropped` counts the steps past `max_length` (a server refuses those)."""
        return encode(self.tok, self.prm.tag_id, problem, steps, self.max_length)

    def score_encoded(self, encoded: list[Encoded], keys: Sequence[Hashable] | None = None) -> list[list[float]]:
        """Scores of the kept steps of already encoded traces (a caller that batches requests encodes as they come).
        Traces with equal `keys` share prefix trees; without keys, traces whose first 32 tokens agree do (in
        practice: the same problem; any grouping gives the same scores)."""
        if keys is None:
            keys = [tuple(e.input_ids[:32]) for e in encoded]
        return score_encoded(
            self.prm,
            encoded,
            self.tok.pad_token_id,
            batch_tokens=self.batch_tokens,
            bf16=self.bf16,
            keys=keys if self.share_prefixes else None,
            progress=self.progress,
        )

    def score_batch(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        encoded = [self.encode(p, s) for p, s in items]
        scores = self.score_encoded(encoded, [p for p, _ in items])
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
    batch_tokens: int = option(0, "padded tokens per forward pass (0: 1024 on a CPU, 8192 on a GPU)")
    max_length: int = option(2048, "tokens per trace at most (whole steps are kept; later steps reuse the last score)")
    bf16: bool = option(False, "bf16 autocast (faster on CPU; scores differ from fp32 by about 1e-2)")
    share_prefixes: bool = option(
        True, "traces of one problem share rows as prefix trees: the same scores from fewer tokens"
    )
    progress: bool = option(True, "a progress bar on stderr")


def run(cfg: ScoreConfig) -> None:
    t0 = time.perf_counter()
    scorer = PRMScorer.from_pretrained(
        cfg.model,
        max_length=cfg.max_length,
        batch_tokens=cfg.batch_tokens,
        bf16=cfg.bf16,
        share_prefixes=cfg.share_prefixes,
        progress=cfg.progress,
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

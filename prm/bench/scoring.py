"""Scoring speed: one forward pass per trace against per-prefix scoring (re-encoding the trace once per step, as
TRL's docs and RLHFlow's script do), at 2, 4, 6 and 8 steps, fp32, with the largest score difference."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prm.bench import row
from prm.model.io import LoraSpec, build
from prm.model.prm import Spec
from prm.records import read_records
from prm.score.prm_scorer import PRMScorer
from prm.synth import SynthConfig
from prm.synth import run as synth_run


def run(cfg) -> list[dict]:
    import torch

    prm, tok = build(Spec(base=cfg.prm_base), LoraSpec())
    with torch.no_grad():  # an untrained readout scores as fast as a trained one; give it non-trivial weights
        prm.head.weight.normal_(std=0.02)
    scorer = PRMScorer(prm, tok, bf16=False)
    rows = []
    for steps in (2, 4, 6, 8):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.jsonl"
            # n operations + the answer line = n + 1 steps
            synth_run(SynthConfig(n=cfg.scoring_traces, min_steps=steps - 1, max_steps=steps - 1, output=str(path)))
            items = [(r.problem, r.steps) for r in read_records(path)]
        t0 = time.perf_counter()
        one = scorer.score_batch(items)
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        prefix_items = [(p, s[: i + 1]) for p, s in items for i in range(len(s))]
        flat = scorer.score_batch(prefix_items)
        t_pre = time.perf_counter() - t0
        per_prefix, k = [], 0
        for _, s in items:
            per_prefix.append([flat[k + i][-1] for i in range(len(s))])
            k += len(s)
        diff = max(abs(a - b) for x, y in zip(one, per_prefix, strict=True) for a, b in zip(x, y, strict=True))
        ratio = t_pre / t_one
        goal = ">= 4x" if steps == 6 else ""
        rows.append(
            row(
                f"scoring {steps}-step traces: one pass vs per prefix",
                ratio,
                "x",
                goal,
                ratio >= 4 if steps == 6 else None,
                one_pass_traces_s=len(items) / t_one,
                per_prefix_traces_s=len(items) / t_pre,
                max_abs_diff=diff,
            )
        )
        rows.append(row(f"  {steps}-step one-pass traces/s (max |diff| {diff:.1e})", len(items) / t_one, "traces/s"))
    return rows

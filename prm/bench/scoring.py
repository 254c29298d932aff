"""Scoring speed: one forward pass per trace against per-prefix scoring (re-encoding the trace once per step, as
TRL's docs and RLHFlow's script do), at 2, 4, 6 and 8 steps, fp32, with the largest score difference; then
best-of-N pools (16 traces per problem) scored as prefix trees against one row per trace, on synthetic pools (one
right and 15 wrong solutions per problem, each wrong one sharing the right one's steps up to its error) and, when
`scoring_pool` names one, a real pool (e.g. `make demo`'s)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prm.bench import row
from prm.model.io import LoraSpec, build
from prm.model.prm import Spec
from prm.records import read_records
from prm.score.prm_scorer import PRMScorer, shared_rows
from prm.synth import SynthConfig
from prm.synth import run as synth_run


def run(cfg) -> list[dict]:
    import torch

    prm, tok = build(Spec(base=cfg.prm_base), LoraSpec())
    with torch.no_grad():  # an untrained readout scores as fast as a trained one; give it non-trivial weights
        prm.head.weight.normal_(std=0.02)
    # each trace and each prefix in its own row: the per-prefix method as others run it, one pass as it was
    scorer = PRMScorer(prm, tok, bf16=False, share_prefixes=False)
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
    return rows + pool_rows(cfg)


def pool_prm(cfg):
    """A PRM shaped as `prm train` makes one by default (LoRA r = 16, the tag embedding, `operation` features from
    the adapted pass), with a non-zero adapter, so that merging it for scoring is no free ride."""
    import torch

    from prm.model.io import LoraSpec, build
    from prm.model.prm import Spec

    prm, tok = build(Spec(base=cfg.prm_base, features_from="adapted", feature_set="operation"), LoraSpec(r=16))
    with torch.no_grad():
        prm.head.weight.normal_(std=0.02)
        for name, p in prm.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.01)
    return prm, tok


def pool_rows(cfg) -> list[dict]:
    """Pool scoring: one row per trace with the adapter as trained in passes of 8,192 tokens (how `prm score` scored
    when the engines issue was filed), the same in the device's pass size (`prm.models.pass_tokens`), prefix trees,
    and prefix trees with the adapter merged into the weights (what `PRMScorer.from_pretrained` does now), in fp32,
    and in bf16 where the machine has it natively. The speed-ups are against the first."""
    import copy

    from prm.models import pass_tokens, use_bf16

    prm, tok = pool_prm(cfg)
    merged = copy.deepcopy(prm)
    merged.merge_adapter()
    pools = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pool.jsonl"
        n_problems = max(1, cfg.scoring_traces // 16)
        synth_run(
            SynthConfig(n=n_problems, min_steps=2, max_steps=4, pairs=True, wrong_per_problem=15, output=str(path))
        )
        pools["synthetic pools (1 right + 15 wrong per problem)"] = read_records(path)
    if cfg.scoring_pool:
        pools[f"pool {Path(cfg.scoring_pool).name}"] = read_records(cfg.scoring_pool)
    rows = []
    variants = {
        "separate": (prm, False, 8192),
        "separate, device pass size": (prm, False, 0),
        "trees": (prm, True, 0),
        "trees, merged": (merged, True, 0),
    }
    for name, recs in pools.items():
        items = [(r.problem, r.steps) for r in recs]
        encoded = [PRMScorer(prm, tok).encode(p, st) for p, st in items]
        tokens = sum(len(e.input_ids) for e in encoded)
        tree_tokens = sum(r.width for r in shared_rows(encoded, [p for p, _ in items], pass_tokens(0), 16))
        for bf16 in (False, True) if use_bf16(True) else (False,):
            times, scores = {}, {}
            for variant, (model, share, pass_size) in variants.items():
                scorer = PRMScorer(model, tok, bf16=bf16, share_prefixes=share, batch_tokens=pass_size)
                t0 = time.perf_counter()
                scores[variant] = scorer.score_batch(items)
                times[variant] = time.perf_counter() - t0
            for variant in list(variants)[1:]:
                diff = max(
                    abs(a - b)
                    for x, y in zip(scores["separate"], scores[variant], strict=True)
                    for a, b in zip(x, y, strict=True)
                )
                ratio = times["separate"] / times[variant]
                rows.append(
                    row(
                        f"{name}, {'bf16' if bf16 else 'fp32'}: {variant} vs one row per trace",
                        ratio,
                        "x",
                        ">= 3x" if variant == "trees, merged" else "",
                        ratio >= 3 if variant == "trees, merged" else None,
                        traces=len(items),
                        separate_traces_s=len(items) / times["separate"],
                        variant_traces_s=len(items) / times[variant],
                        max_abs_diff=diff,
                        tokens_separate=tokens,
                        tokens_in_trees=tree_tokens,
                    )
                )
                rows.append(
                    row(
                        f"  traces/s {variant} (separate {len(items) / times['separate']:.1f}; max |diff| {diff:.1e})",
                        len(items) / times[variant],
                        "traces/s",
                    )
                )
    return rows

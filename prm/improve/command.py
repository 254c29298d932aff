"""`prm improve`: rounds of self-improvement (expert iteration, as in STaR and ReST-EM), one chain per filter.

    prm improve --config configs/improve.yaml

Each round, the current policy samples k solutions per training problem (only the problem and its final answer
are used), a filter keeps some, and the policy is fine-tuned on them (LoRA on the previous round's policy); the new
policy is then evaluated on held-out problems. Filters:
- outcome: the right final answer;
- calc: the right final answer and no wrong equation by the calculator (no model: the cheap verifier on arithmetic);
- prm: the right final answer and a PRM's minimum step score >= threshold (or among the `keep_share` of the
  right-answer samples it scores highest). The PRM is the one given, or one trained
  here on `binary` (or `mc`) labels of the starting policy's own round-1 samples, with that policy as completer;
- prm@S: the prm filter keeping the share S of the right-answer samples (its own chain, the same PRM);
- gold: the right final answer and every step right by the exact gold labeler (synthetic problems only): the upper
  bound of a perfect step judge.
Round 1's samples come from the starting policy, so every filter starts from the same ones.

Every stage is resumable: sampling and labelling append finished units (prm generate, prm label), training resumes
from its checkpoint, and every other file is written atomically; a stage whose output is complete is skipped. So a
run killed at any point (kill -9) and rerun with the same command ends with the files of an uninterrupted run.

Writes into `output`: round0/ (the starting policy's evaluation), samples-round1.jsonl, prm/ (labels and the PRM),
<filter>/round<r>/ (samples, kept.jsonl, policy/, heldout evaluation), and improve.json, improve.md, improve.png.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from prm.checker import calc_passes
from prm.config import check_resumable, save_config
from prm.fileio import atomic_write
from prm.improve.config import ImproveConfig, prm_share, uses_prm
from prm.improve.report import markdown, plot, write_reports
from prm.improve.rounds import by_problem, heldout_metrics, select, share_cut, wrong_step
from prm.records import StepRecord, read_records, write_records


def _say(cfg: ImproveConfig, text: str) -> None:
    if cfg.progress:
        print(f"prm improve: {text}", file=sys.stderr)


def _json(path: Path, obj) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2)


def sample(cfg: ImproveConfig, policy: str, problems: str, output: Path, n: int, seed: int) -> None:
    """n solutions per problem from `policy` (prm generate: resumable, prompted as the policy was trained)."""
    from prm.generate import GenerateConfig
    from prm.generate import run as generate

    generate(
        GenerateConfig(
            input=problems,
            output=str(output),
            model=policy,
            n=n,
            sampling=cfg.sampling,
            seed=seed,
            bf16=cfg.bf16,
            progress=cfg.progress,
        )
    )


def gold_labels(traces_path: Path) -> dict[str, list]:
    """id -> labels of the exact gold labeler (no model; needs synthetic problems)."""
    from prm.label.gold import label_gold

    return {t.id: label_gold(t).labels for t in read_records(traces_path)}


def heldout(cfg: ImproveConfig) -> Path:
    """The run's copy of the held-out problems (the first eval_limit), which every round evaluates on."""
    return Path(cfg.output) / "heldout.jsonl"


def evaluate(cfg: ImproveConfig, policy: str, folder: Path) -> dict:
    """The policy on the held-out problems: eval_k samples each, with the same seed every round (paired)."""
    result = folder / "eval.json"
    if result.exists():
        return json.loads(result.read_text())
    traces = folder / "heldout.jsonl"
    sample(cfg, policy, str(heldout(cfg)), traces, cfg.eval_k, cfg.seed)
    figures = heldout_metrics(read_records(traces), gold_labels(traces))
    _json(result, figures)
    return figures


def train_prm(cfg: ImproveConfig, samples: Path) -> str:
    """The prm filter's PRM: given, or trained on labels of the starting policy's first round-1 samples."""
    if cfg.prm is not None:
        return cfg.prm
    from prm.label import LabelConfig
    from prm.label import run as label
    from prm.train import TrainConfig
    from prm.train import run as train

    folder = Path(cfg.output) / "prm"
    model = folder / "model"
    if (model / "train_report.json").exists():
        return str(model)
    traces = folder / "traces.jsonl"
    if not traces.exists():
        write_records(read_records(samples)[: cfg.prm_traces], traces)
    labels = folder / "labels.jsonl"
    _say(cfg, f"labelling {cfg.prm_traces} round-1 samples ({cfg.label_method}, k = {cfg.label_k}) for the PRM")
    label(
        LabelConfig(
            input=str(traces),
            output=str(labels),
            method=cfg.label_method,
            k=cfg.label_k,
            mode="hard",
            model=cfg.policy,
            sampling=cfg.sampling,
            seed=cfg.seed,
            bf16=cfg.bf16,
            progress=cfg.progress,
        )
    )
    records = labels
    if cfg.prm_extra is not None:
        records = folder / "train.jsonl"
        if not records.exists():
            write_records(read_records(labels) + read_records(cfg.prm_extra), records)
    _say(cfg, f"training the PRM ({cfg.prm_tokens} tokens)")
    train(
        TrainConfig(
            train=str(records),
            output=str(model),
            base=cfg.prm_base or cfg.policy,
            max_tokens=cfg.prm_tokens,
            batch_tokens=cfg.prm_batch_tokens,
            feature_set=cfg.prm_feature_set,
            epochs=100.0,
            eval_every=0,
            save_every=20,
            seed=cfg.seed,
            resume=True,
            bf16=cfg.bf16,
            progress=cfg.progress,
        )
    )
    return str(model)


def acceptor(cfg: ImproveConfig, name: str, samples: Path, traces: list[StepRecord], folder: Path, prm: str | None):
    """The filter `name` as a predicate on the samples of one round (`traces`: those samples, read from `samples`)."""
    if name == "outcome":
        return lambda t: bool(t.meta["correct"])
    if name == "calc":  # the cheap verifier a PRM filter must beat: arithmetic slips on the way to a right answer
        return lambda t: bool(t.meta["correct"]) and calc_passes(t.steps)
    if name == "gold":
        labels = gold_labels(samples)
        return lambda t: bool(t.meta["correct"]) and not wrong_step(labels[t.id])
    from prm.bon.command import read_scored
    from prm.score.prm_scorer import ScoreConfig
    from prm.score.prm_scorer import run as score

    scored = folder / "scored.jsonl"
    if not scored.exists():
        score(ScoreConfig(model=prm, input=str(samples), output=str(scored), bf16=cfg.bf16, progress=cfg.progress))
    scores = read_scored(scored)
    cut = cfg.threshold
    share = prm_share(name) or cfg.keep_share
    if share is not None:
        right = [min(scores[t.id]) for t in traces if t.meta["correct"]]
        cut = share_cut(right, share)
    return lambda t: bool(t.meta["correct"]) and min(scores[t.id]) >= cut


def finetune(cfg: ImproveConfig, base: str, kept: Path, output: Path, seed: int) -> None:
    """LoRA on `base` (the previous round's policy) over the kept solutions, prompted as the starting policy."""
    from prm.generate.engine import Sampling
    from prm.generate.prompt import policy_prompt
    from prm.sft import SFTConfig
    from prm.sft import run as sft

    system, shots = policy_prompt(cfg.policy)
    sft(
        SFTConfig(
            train=str(kept),
            output=str(output),
            base=base,
            keep="all",
            sampling=Sampling(system=system, shots=shots),
            lora_r=cfg.sft_lora_r,
            lora_alpha=cfg.sft_lora_r,
            lr=cfg.sft_lr,
            epochs=cfg.sft_epochs,
            batch_tokens=cfg.sft_batch_tokens,
            eval_every=0,
            save_every=20,
            seed=seed,
            resume=True,
            bf16=cfg.bf16,
            progress=cfg.progress,
        )
    )


def run(cfg: ImproveConfig) -> dict:
    out = Path(cfg.output)
    # Each filter's chain has its own folders and depends on no other filter's, so a finished run can take another
    # filter (or drop one) and resume: the chains already there are reused as they are.
    check_resumable(cfg, out, {"progress", "sampling.batch_size", "filters"})
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    t0 = time.perf_counter()
    problems = out / "problems.jsonl"
    if not problems.exists():
        write_records(read_records(cfg.problems)[: cfg.limit], problems)
    if not heldout(cfg).exists():
        write_records(read_records(cfg.heldout)[: cfg.eval_limit], heldout(cfg))
    _say(cfg, "round 0: evaluating the starting policy")
    start = evaluate(cfg, cfg.policy, out / "round0")
    first = out / "samples-round1.jsonl"
    _say(cfg, f"round 1: sampling {cfg.k} solutions per training problem from the starting policy")
    sample(cfg, cfg.policy, str(problems), first, cfg.k, cfg.seed + 1)
    prm = train_prm(cfg, first) if any(uses_prm(f) for f in cfg.filters) else None
    rows = [{"filter": "start", "round": 0, **start}]
    for name in cfg.filters:
        policy = cfg.policy
        for r in range(1, cfg.rounds + 1):
            folder = out / name / f"round{r}"
            folder.mkdir(parents=True, exist_ok=True)
            samples = first if r == 1 else folder / "samples.jsonl"
            if r > 1:
                _say(cfg, f"{name} round {r}: sampling from {policy}")
                sample(cfg, policy, str(problems), samples, cfg.k, cfg.seed + r)
            kept_path = folder / "kept.jsonl"
            if not kept_path.exists():
                traces = read_records(samples)
                kept = select(traces, acceptor(cfg, name, samples, traces, folder, prm), cfg.max_per_problem)
                write_records(kept, kept_path)
            kept = read_records(kept_path)
            policy_dir = folder / "policy"
            if kept and not (policy_dir / "train_report.json").exists():
                _say(cfg, f"{name} round {r}: fine-tuning on {len(kept)} kept solutions")
                finetune(cfg, policy, kept_path, policy_dir, cfg.seed + r)
            if kept:  # a round that keeps nothing leaves the policy as it was
                policy = str(policy_dir)
            _say(cfg, f"{name} round {r}: evaluating")
            figures = evaluate(cfg, policy, folder)
            rows.append({"filter": name, "round": r, **figures, **_kept_figures(samples, kept)})
    result = {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
    headline = f"prm improve: {len(cfg.filters)} filters x {cfg.rounds} rounds -> {out}/"
    write_reports(out, "improve", result, markdown(rows), lambda path: plot(rows, path), headline)
    return result


def _kept_figures(samples: Path, kept: list) -> dict:
    """What a round trained on: the samples' accuracy, how many were kept, and how many of those reached their
    right answer through a wrong step (gold labels of the synthetic training problems: measured, never used)."""
    traces = read_records(samples)
    labels = gold_labels(samples)
    return {
        "train_accuracy": sum(t.meta["correct"] for t in traces) / len(traces),
        "train_problems_solved": sum(any(t.meta["correct"] for t in g) for g in by_problem(traces).values()),
        "kept": len(kept),
        "kept_wrong_step": sum(wrong_step(labels[t.id]) for t in kept),
    }

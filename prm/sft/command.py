"""`prm sft`: fine-tune a policy to write step-by-step solutions, on step records, with the shared loop.

    prm sft --train data/out/gold.jsonl --output runs/policy                 # LoRA on synthetic gold solutions
    prm generate --model runs/policy --input problems.jsonl --output traces.jsonl

The output folder is a policy wherever one is named (`--model` of generate and label, `--policy` of search and bon,
`--base` of prm train and of another prm sft): a LoRA adapter, or a whole model with `--lora false`, beside the
tokenizer and policy.json (the base it adapts, and the system line and shots it was trained with, which those
commands then prompt it with). Checkpoints, `--resume`, DDP and bf16 work as in `prm train` (prm.fit).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from prm.config import ConfigError
from prm.fileio import atomic_files
from prm.fit import Job, accelerator, eager_mask, fit, pad_right, setup_model, tree_rows
from prm.fit.state import load_weights
from prm.models import POLICY_FILE, bf16_autocast, decoder, load_model, load_tokenizer
from prm.records import read_records
from prm.sft.config import SFTConfig
from prm.sft.data import Example, make_examples
from prm.sft.report import plot_curve


class Imitation(nn.Module):
    """A causal LM under fine-tuning: forward(rows of examples) -> the mean cross-entropy of their target tokens.

    Only target positions meet the LM head (hidden states gathered first, then projected): the prompt's tokens,
    most of each row, never pay for the vocabulary projection. Rows of several examples are prefix trees
    (`tree_rows`), so k samples of one problem compute their prompt once."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, rows: list[list[Example]], pad_id: int) -> torch.Tensor:
        device = next(self.lm.parameters()).device
        if any(len(row) > 1 for row in rows):
            ids, mask, pos, paths = tree_rows([[e.input_ids for e in row] for row in rows], pad_id)
        else:
            ids, mask = pad_right([row[0].input_ids for row in rows], pad_id)
            pos, paths = None, [[range(len(row[0].input_ids))] for row in rows]
        b_idx, src, tgt = [], [], []
        for b, row in enumerate(rows):
            for e, path in zip(row, paths[b], strict=True):
                b_idx += [b] * (len(e.input_ids) - e.start)
                src += [path[t - 1] for t in range(e.start, len(e.input_ids))]
                tgt += e.input_ids[e.start :]
        hidden = decoder(self.lm)(
            input_ids=ids.to(device),
            attention_mask=eager_mask(mask.to(device), self.lm, None if pos is None else pos.to(device)),
            position_ids=None if pos is None else pos.to(device),
        ).last_hidden_state
        h = hidden[torch.tensor(b_idx, device=device), torch.tensor(src, device=device)]  # (M, H)
        logits = self.lm.get_output_embeddings()(h).float()  # (M, vocab)
        return nn.functional.cross_entropy(logits, torch.tensor(tgt, device=device))


def build_policy(cfg: SFTConfig):
    """The LM ready to train: LoRA on cfg.lora_targets, or every weight trainable."""
    lm = load_model(cfg.base, trust_remote_code=cfg.trust_remote_code)
    spec = cfg.lora_spec()
    if spec is not None:
        from peft import LoraConfig, get_peft_model

        lm = get_peft_model(
            lm,
            LoraConfig(
                r=spec.r,
                lora_alpha=spec.alpha,
                lora_dropout=spec.dropout,
                target_modules=list(spec.targets),
                task_type="CAUSAL_LM",
            ),
        )
    else:
        lm.requires_grad_(True)
    lm.config.use_cache = False
    return lm


def save_policy(lm, tok, cfg: SFTConfig, folder: Path, report: dict | None, state_dict: dict | None = None) -> None:
    """The policy folder, atomically: policy.json goes last and marks it complete."""
    system, shots = cfg.prompt()
    with atomic_files(folder, POLICY_FILE) as tmp:
        gathered = {"state_dict": {k[3:]: v for k, v in state_dict.items()}} if state_dict is not None else {}
        lm.save_pretrained(tmp, safe_serialization=True, **gathered)
        tok.save_pretrained(tmp)
        meta = {
            "base": cfg.base,
            "kind": "lora" if cfg.lora else "full",
            "system": system,
            "shots": [{"problem": s.problem, "solution": s.solution} for s in shots],
            "train": cfg.train,
        }
        if report is not None:
            meta["train_report"] = report
        (tmp / POLICY_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


@torch.no_grad()
def val_loss(model: Imitation, examples: list[Example], pad_id: int, cfg: SFTConfig) -> float:
    """Mean cross-entropy per target token of held-out examples (one example per row, length-grouped batches)."""
    from prm.fit.rows import length_batches

    model.eval()
    total, count = 0.0, 0
    for batch in length_batches([len(e.input_ids) for e in examples], cfg.batch_tokens * 2):
        rows = [[examples[i]] for i in batch]
        n = sum(len(e.input_ids) - e.start for row in rows for e in row)
        with bf16_autocast(model.lm, cfg.bf16):
            total += model(rows, pad_id).item() * n
        count += n
    model.train()
    return total / max(count, 1)


@torch.no_grad()
def accuracy(lm, tok, problems, cfg: SFTConfig) -> dict:
    """The policy's accuracy on held-out problems as `prm generate` would sample it now (its prompt, T = 0.8,
    cfg.eval_samples each): mean over samples, and the share of problems with a right sample."""
    from prm.answers import answers_equal, extract_answer
    from prm.generate.prompt import build_prompt
    from prm.generate.sampler import sample, weights_dtype

    # Sampled from a copy as `prm generate` would load the saved policy: the adapter merged, the weights in bf16.
    # An unmerged adapter adds two small matmuls per adapted layer and decoded token (4x slower here), and merging
    # in place would round the training weights.
    policy = copy.deepcopy(lm)
    policy = policy.merge_and_unload() if hasattr(policy, "merge_and_unload") else policy
    policy = policy.to(getattr(torch, weights_dtype(cfg.bf16))).eval()
    system, shots = cfg.prompt()
    prompts = [build_prompt(tok, p.problem, shots=shots, system=system) for p in problems]
    params = cfg.sampling.params(seed=cfg.seed, bf16=cfg.bf16)
    out = sample(policy, tok, prompts, cfg.eval_samples, params, keys=[p.id for p in problems])
    del policy
    right = [
        [answers_equal(extract_answer(s.text), p.answer) for s in row] for p, row in zip(problems, out, strict=True)
    ]
    return {
        "eval_accuracy": sum(map(sum, right)) / max(sum(map(len, right)), 1),
        f"eval_pass@{cfg.eval_samples}": sum(map(any, right)) / max(len(right), 1),
    }


def run(cfg: SFTConfig) -> dict:
    torch.manual_seed(cfg.seed)
    tok = load_tokenizer(cfg.base, trust_remote_code=cfg.trust_remote_code)
    examples, counts = make_examples(read_records(cfg.train), tok, cfg)
    if not examples:
        raise ConfigError(f"{cfg.train}: no record to train on with keep={cfg.keep} ({counts})")
    val = make_examples(read_records(cfg.val), tok, cfg)[0] if cfg.val else []
    problems = read_records(cfg.eval_problems)[: cfg.eval_limit] if cfg.eval_problems else []
    acc = accelerator(cfg)
    lm = build_policy(cfg)
    setup_model(lm, cfg, acc)
    model = Imitation(lm)
    pad = tok.pad_token_id

    def evaluate() -> dict:
        figures = {"val_loss": val_loss(model, val, pad, cfg)} if val else {}
        return figures | (accuracy(lm, tok, problems, cfg) if problems else {})

    job = Job(
        model=model,
        items=examples,
        loss=lambda m, rows, device: (m(rows, pad), sum(len(e.input_ids) for row in rows for e in row)),
        groups=[{"params": [p for p in lm.parameters() if p.requires_grad], "lr": cfg.lr}],
        save=lambda folder, report, state: save_policy(lm, tok, cfg, folder, report, state),
        load=lambda folder: load_weights(folder, lm),
        evaluate=evaluate if val or problems else None,
    )
    extra = {"data": counts, "kind": "lora" if cfg.lora else "full"}
    report = fit(acc, cfg, job, cfg.output, extra)
    if acc.is_main_process:
        plot_curve(cfg.output, Path(cfg.output) / "curve.png")
        final = report["final"]
        val_text = f", val loss {final['val_loss']:.4f}" if "val_loss" in final else ""
        if "eval_accuracy" in final:
            val_text += f", held-out accuracy {final['eval_accuracy']:.1%}"
        print(
            f"prm sft: {counts['kept']} of {counts['records']} records (keep={cfg.keep}), {report['steps']} steps, "
            f"{report['tokens']} tokens in {report['seconds']:.0f} s ({report['tokens_per_s']:.0f} tok/s); "
            f"loss {final['loss']:.4f}{val_text} -> {cfg.output}"
        )
    return report

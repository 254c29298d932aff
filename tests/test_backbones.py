"""Any causal LM as PRM backbone and as policy: a matrix over tiny randomly initialised models of the architectures
our users train on (Llama, Qwen2, Qwen3, Mistral, Gemma 2, Gemma 3, Phi-3), each built from its config offline, each
run through `prm train` (LoRA, shared prefix-tree rows), `prm score` (prefix trees equal to separate rows),
`prm generate` and `prm sft`. The sliding windows are made short (16 positions) so that traces run past them: tree
rows must apply the window themselves (prm.fit.rows.eager_mask), which they did not before this test."""

from __future__ import annotations

import json

import pytest

from prm import cli
from tests.conftest import build_tiny_tokenizer

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def _config(arch: str, tok):
    import transformers as tf

    ids = dict(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    common = dict(vocab_size=len(tok), max_position_embeddings=2048, tie_word_embeddings=True, **SMALL, **ids)
    if arch == "llama":
        return tf.LlamaConfig(**common), tf.LlamaForCausalLM
    if arch == "qwen2":
        return tf.Qwen2Config(**common), tf.Qwen2ForCausalLM
    if arch == "qwen3":
        return tf.Qwen3Config(head_dim=8, **common), tf.Qwen3ForCausalLM
    if arch == "mistral":
        return tf.MistralConfig(sliding_window=16, **common), tf.MistralForCausalLM
    if arch == "gemma2":
        return tf.Gemma2Config(head_dim=8, sliding_window=16, **common), tf.Gemma2ForCausalLM
    if arch == "gemma3":
        return tf.Gemma3TextConfig(head_dim=8, sliding_window=16, **common), tf.Gemma3ForCausalLM
    if arch == "phi3":
        return tf.Phi3Config(**common), tf.Phi3ForCausalLM
    raise ValueError(arch)


ARCHS = ["llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3"]


@pytest.fixture(scope="module", params=ARCHS)
def arch_dir(request, tmp_path_factory):
    import torch

    path = tmp_path_factory.mktemp(f"tiny-{request.param}")
    tok = build_tiny_tokenizer(path)
    cfg, cls = _config(request.param, tok)
    torch.manual_seed(0)
    model = cls(cfg)
    assert model.config.model_type.startswith(request.param[:4])
    model.save_pretrained(path, safe_serialization=True)
    return request.param, path


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = tmp_path_factory.mktemp("records") / "pairs.jsonl"
    assert cli.main(["synth", "--n", "6", "--pairs", "true", "--max_steps", "3", "--output", str(path)]) == 0
    return path


def test_every_architecture_trains_scores_samples_and_fine_tunes(arch_dir, records, tmp_path):
    arch, base = arch_dir
    run = tmp_path / "prm"
    args = ["train", "--train", str(records), "--base", str(base), "--output", str(run), "--max_tokens", "600"]
    args += ["--batch_tokens", "512", "--lora_r", "4", "--eval_every", "0", "--progress", "false"]
    assert cli.main(args) == 0, arch
    report = json.loads((run / "train_report.json").read_text())
    assert report["steps"] >= 1 and report["computed_tokens"] < report["tokens"], arch  # prefix trees shared tokens

    scored = tmp_path / "scored.jsonl"
    assert cli.main(["score", "--model", str(run), "--input", str(records), "--output", str(scored)]) == 0
    rows = [json.loads(x) for x in scored.read_text().splitlines()]
    assert all(len(r["meta"]["scores"]) == len(r["steps"]) for r in rows)
    assert all(0.0 <= s <= 1.0 for r in rows for s in r["meta"]["scores"])
    # The prefix-tree rows (a 4D mask, position ids by depth) give each trace's own scores: the architecture's
    # attention takes the tree mask as it is (a model that rebuilt or ignored it would differ here).
    alone = tmp_path / "alone.jsonl"
    args = ["score", "--model", str(run), "--input", str(records), "--output", str(alone), "--share_prefixes", "false"]
    assert cli.main(args) == 0
    separate = [json.loads(x)["meta"]["scores"] for x in alone.read_text().splitlines()]
    shared = [x for r in rows for x in r["meta"]["scores"]]
    assert shared == pytest.approx([x for xs in separate for x in xs], abs=1e-4), arch

    traces = tmp_path / "traces.jsonl"
    args = ["generate", "--model", str(base), "--input", str(records), "--output", str(traces), "--n", "2"]
    assert cli.main(args + ["--limit", "2", "--sampling.max_new_tokens", "8", "--progress", "false"]) == 0
    assert len(traces.read_text().splitlines()) == 4

    policy = tmp_path / "policy"
    args = ["sft", "--train", str(records), "--base", str(base), "--output", str(policy), "--max_tokens", "600"]
    assert cli.main(args + ["--batch_tokens", "1024", "--max_length", "1024", "--progress", "false"]) == 0, arch
    assert (policy / "policy.json").exists()

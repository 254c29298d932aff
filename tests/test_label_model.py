"""The model completer on a tiny random Llama (byte-level tokenizer, 2 layers): rollouts are keyed (the same
whatever else shares the call), and `prm label` runs end to end on a model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from prm import cli
from prm.label import ModelCompleter, rollout_key
from prm.label.report import synth_traces
from prm.records import read_records, write_records


def build_tiny(path: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))  # one token per byte: no training needed
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path, safe_serialization=True)


@pytest.fixture(autouse=True)
def one_thread():
    """A model this small spends its time in thread hand-offs, badly so on a shared 2-core machine: use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-label-llama")
    build_tiny(path)
    return path


def test_model_completer_rollouts_do_not_depend_on_the_batch(tiny):
    from prm.generate.sampler import SamplingParams
    from prm.models import load

    model, tok = load(str(tiny))
    params = SamplingParams(max_new_tokens=10, temperature=1.0, batch_size=4, bf16=False, seed=3)
    c = ModelCompleter(model, tok, params, shots=(), system=None)
    requests = [("Mia has 3 apples. How many?", ["3 + 1 = 4"]), ("Leo has 2 pens.", [])]
    keys = [rollout_key("a/0", 1, 0), rollout_key("b/0", 0, 0)]
    both = c.complete(requests, 3, keys)
    alone = c.complete(requests[:1], 3, keys[:1])
    assert [r.text for r in both[0]] == [r.text for r in alone[0]]
    assert len(both) == 2 and all(len(row) == 3 for row in both)
    assert all(1 <= r.tokens <= 10 and (r.answer is None or r.answer in r.text) for row in both for r in row)
    assert c.complete([], 3, []) == []


def test_label_command_with_a_tiny_model(tiny, tmp_path):
    traces = tmp_path / "traces.jsonl"
    write_records(synth_traces(3, 0, 2, 2, 1.0), traces)  # every answer wrong: binary must probe
    out = tmp_path / "labeled.jsonl"
    args = ["label", "--method", "binary", "--input", str(traces), "--output", str(out), "--model", str(tiny)]
    args += ["--k", "2", "--max_new_tokens", "6", "--bf16", "false", "--device", "cpu", "--progress", "false"]
    assert cli.main(args) == 0
    records = read_records(out)
    assert len(records) == 3 and all(r.meta["label"]["rollouts"] > 0 for r in records)
    assert all(r.labels.count(False) == 1 for r in records)  # a wrong answer always has a first error

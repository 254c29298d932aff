"""Shared fixtures. Every test here runs offline on the CPU in seconds; tests that need the embedded 135M model are
marked `slow` and run with `make test-slow`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout: real GSM8K text for tests that want it; absent on some machines.
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Tiny models: one thread is far faster than two fighting over a shared 2-core machine (7 ms against 2.5 s seen
# for one call). Set in the environment too, so the subprocesses some tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch_threads = int(os.environ["OMP_NUM_THREADS"])
# The bf16 paths are tested on every machine, also on CPUs that would emulate bf16 (where commands fall back to
# fp32 by themselves, prm.models.use_bf16): the tiny models make the emulation cheap.
os.environ.setdefault("PRM_BF16", "force")


def pytest_configure(config):
    import torch

    torch.set_num_threads(torch_threads)


@pytest.fixture
def gsm8k_dir() -> Path:
    d = SHARED_DATA / "gsm8k"
    if not (d / "train.jsonl").exists():
        pytest.skip(f"GSM8K not found at {d}")
    return d


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_tokenizer(path: Path):
    """A byte-level BPE tokenizer trained in a second on arithmetic text, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "Tom has 12 apples and buys 5 more, so he has 12 + 5 = 17 apples.\nThe answer is 17.\n",
        "Mia gives away 4 marbles, so she has 17 - 4 = 13 marbles. Each bag holds 45 / 5 = 9 rolls.\n",
        "3 packs of 4 pencils is 3 * 4 = 12 pencils. How many stickers does Leah have now?\n",
    ] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token="<|im_start|>"
    )
    fast.chat_template = CHATML
    fast.save_pretrained(path)
    return fast


def build_tiny_model(path: Path, seed: int = 0, hidden: int = 32, heads: int = 4, kv_heads: int = 2):
    """A randomly initialised 2-layer Llama (about 60k parameters) saved with its tokenizer in `path`; `hidden` and
    the head counts set its head size (vLLM's CPU kernels want 64: hidden 128, 2 heads)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tiny_tokenizer(path)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    return model, tok


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Folder of a tiny random Llama + tokenizer: what every non-slow model test loads (seconds, offline)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model(path)
    return path


@pytest.fixture(scope="session")
def tiny_prm_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """An untrained PRM checkpoint on the tiny model (likelihood features on): for commands that only need one."""
    from prm.model.io import build, save
    from prm.model.prm import Spec

    path = tmp_path_factory.mktemp("tiny-prm")
    prm, tok = build(Spec(base=str(tiny_model_dir), features=True), None)
    save(prm, tok, path)
    return path


@pytest.fixture
def tiny_problems(tmp_path) -> Path:
    """Three held-out synthetic problems of at most two steps (for commands that sample from the tiny model)."""
    from prm.synth import SynthConfig
    from prm.synth import run as synth_run

    path = tmp_path / "problems.jsonl"
    synth_run(SynthConfig(split="test", n=3, max_steps=2, output=str(path)))
    return path

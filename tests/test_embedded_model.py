"""The embedded SmolLM2-135M (`make test-slow`): the cached safetensors conversion gives the GGUF model's logits,
and the policy writes an answer line the engine stops on."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow


def test_converted_cache_matches_the_gguf_model(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from prm.models import gguf_path, load

    monkeypatch.setenv("PRM_CACHE", str(tmp_path))  # convert afresh into a temporary cache
    model, tok = load("smollm2-135m")
    assert (tmp_path / "smollm2-135m" / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    g = gguf_path("smollm2-135m")
    ref = AutoModelForCausalLM.from_pretrained(g.parent, gguf_file=g.name)
    ids = tok("Tom has 3 apples and buys 4 more.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, ref(ids).logits, atol=1e-5)
    assert tok.eos_token_id == tok.pad_token_id == 2 and model.config.vocab_size == 49152


def test_policy_greedy_writes_an_answer_line():
    from prm.generate import SamplingParams, build_prompt, sample
    from prm.models import load

    model, tok = load("smollm2-135m")
    prompt = build_prompt(tok, "Tom has 5 apples and buys 7 more. Then he eats 2. How many apples does he have?")
    ((s,),) = sample(model, tok, [prompt], 1, SamplingParams(temperature=0, max_new_tokens=120))
    assert s.stop in ("answer", "eos") and "answer is" in s.text.lower()

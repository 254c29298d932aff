"""The model completer on a tiny random Llama (byte-level tokenizer, 2 layers): rollouts are keyed (the same
whatever else shares the call), and `prm label` runs end to end on a model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from prm import cli
from prm.label import ModelCompleter, rollout_key
from prm.label.report import synth_traces
from prm.records import read_records, write_records


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> Path:
    """The shared tiny random Llama (tests/conftest.py); one torch thread is set there for the whole run."""
    return tiny_model_dir


def test_model_completer_rollouts_do_not_depend_on_the_batch(tiny):
    from prm.generate.engine import NativeEngine
    from prm.generate.sampler import SamplingParams
    from prm.models import load

    model, tok = load(str(tiny))
    params = SamplingParams(max_new_tokens=10, temperature=1.0, batch_size=4, bf16=False, seed=3)
    c = ModelCompleter(NativeEngine(model, tok), params, shots=(), system=None)
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
    args += ["--k", "2", "--sampling.max_new_tokens", "6", "--bf16", "false", "--device", "cpu", "--progress", "false"]
    assert cli.main(args) == 0
    records = read_records(out)
    assert len(records) == 3 and all(r.meta["label"]["rollouts"] > 0 for r in records)
    assert all(r.labels.count(False) == 1 for r in records)  # a wrong answer always has a first error

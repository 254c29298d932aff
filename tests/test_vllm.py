"""vLLM as the sampling engine. The real vLLM runs only in its own environment (`make test-vllm`, tests marked
vllm); in the default environment `--engine vllm` must fail in one line. The mapping of vLLM's outputs onto our
`Sample` (stop reasons, the cut after the answer line) is tested here with stand-ins of vLLM's output objects."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from prm import cli

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _out(text, tokens=5, finish="stop", stop_reason=None, logprob=-1.5):
    return SimpleNamespace(
        text=text,
        token_ids=list(range(tokens)),
        finish_reason=finish,
        stop_reason=stop_reason,
        cumulative_logprob=logprob,
    )


def test_vllm_outputs_map_onto_our_stop_reasons():
    from prm.generate.vllm_engine import to_sample

    s = to_sample(_out("3 + 4 = 7\nThe answer is 7.\nThe end."), by_line=False)
    assert (s.text, s.stop, s.tokens, s.logprob) == ("3 + 4 = 7\nThe answer is 7.", "answer", 5, -1.5)
    assert to_sample(_out("3 + 4 = 7\nThe answer is 7."), by_line=False).stop == "eos"  # as ours: end of turn
    assert to_sample(_out("3 + 4 =", finish="length"), by_line=False).stop == "length"
    line = to_sample(_out("3 + 4 = 7", stop_reason="\n"), by_line=True)
    assert (line.text, line.stop) == ("3 + 4 = 7", "line")
    assert to_sample(_out("The answer is 7.", stop_reason="\n"), by_line=True).stop == "answer"


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_engine_vllm_without_vllm_is_one_line(tmp_path, tiny_model_dir, tiny_problems, capsys):
    args = ["generate", "--engine", "vllm", "--model", str(tiny_model_dir), "--input", str(tiny_problems)]
    assert cli.main(args + ["--output", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "make setup-vllm" in err[0]


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory):
    """A tiny random Llama whose head size vLLM's CPU kernels take (64)."""
    from tests.conftest import build_tiny_model

    path = tmp_path_factory.mktemp("tiny-llama-vllm")
    build_tiny_model(path, hidden=128, heads=2, kv_heads=2)
    return path


@pytest.mark.vllm
def test_generate_with_vllm_writes_the_native_engines_kind_of_records(tmp_path, vllm_model_dir, tiny_problems):
    def gen(engine, name):
        out = tmp_path / name
        args = ["generate", "--engine", engine, "--model", str(vllm_model_dir), "--input", str(tiny_problems)]
        args += ["--output", str(out), "--n", "3", "--max_new_tokens", "16", "--bf16", "false", "--progress", "false"]
        assert cli.main(args) == 0
        return [json.loads(x) for x in out.read_text().splitlines()]

    ours, theirs, again = gen("native", "native.jsonl"), gen("vllm", "vllm.jsonl"), gen("vllm", "vllm2.jsonl")
    assert [r["id"] for r in theirs] == [r["id"] for r in ours]  # same problems, same sample ids
    assert [set(r) for r in theirs] == [set(r) for r in ours]
    assert [set(r["meta"]) for r in theirs] == [set(r["meta"]) for r in ours]
    assert all(r["meta"]["stop"] in ("answer", "eos", "length") and 0 < r["meta"]["tokens"] <= 16 for r in theirs)
    assert theirs == again  # per-sample seeds: the same command draws the same samples

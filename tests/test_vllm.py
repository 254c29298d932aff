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
    args = ["generate", "--sampling.engine", "vllm", "--model", str(tiny_model_dir), "--input", str(tiny_problems)]
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
        args = ["generate", "--sampling.engine", engine, "--model", str(vllm_model_dir), "--input", str(tiny_problems)]
        args += [
            "--output",
            str(out),
            "--n",
            "3",
            "--sampling.max_new_tokens",
            "16",
            "--bf16",
            "false",
            "--progress",
            "false",
        ]
        assert cli.main(args) == 0
        return [json.loads(x) for x in out.read_text().splitlines()]

    ours, theirs, again = gen("native", "native.jsonl"), gen("vllm", "vllm.jsonl"), gen("vllm", "vllm2.jsonl")
    assert [r["id"] for r in theirs] == [r["id"] for r in ours]  # same problems, same sample ids
    assert [set(r) for r in theirs] == [set(r) for r in ours]
    assert [set(r["meta"]) for r in theirs] == [set(r["meta"]) for r in ours]
    assert all(r["meta"]["stop"] in ("answer", "eos", "length") and 0 < r["meta"]["tokens"] <= 16 for r in theirs)
    assert theirs == again  # per-sample seeds: the same command draws the same samples


def test_sft_refuses_vllm_for_its_evaluation():
    from prm.generate.engine import Sampling
    from prm.sft import SFTConfig

    with pytest.raises(ValueError, match="native only"):
        SFTConfig(train="t", output="o", sampling=Sampling(engine="vllm"))


@pytest.mark.vllm
def test_label_rollouts_with_vllm(tmp_path, vllm_model_dir, tiny_problems):
    """`prm label --method mc --sampling.engine vllm`: the same records as with our engine, rollouts from vLLM, and
    the same command twice gives the same labels (per-rollout seeds)."""
    traces = tmp_path / "traces.jsonl"
    args = ["generate", "--model", str(vllm_model_dir), "--input", str(tiny_problems), "--output", str(traces)]
    assert (
        cli.main(args + ["--n", "1", "--sampling.max_new_tokens", "12", "--bf16", "false", "--progress", "false"]) == 0
    )

    def label(engine, name):
        out = tmp_path / name
        args = ["label", "--method", "mc", "--k", "2", "--model", str(vllm_model_dir), "--input", str(traces)]
        args += ["--output", str(out), "--sampling.engine", engine, "--sampling.max_new_tokens", "8"]
        assert cli.main(args + ["--bf16", "false", "--device", "cpu", "--progress", "false"]) == 0
        return [json.loads(x) for x in out.read_text().splitlines()]

    ours, theirs, again = label("native", "native.jsonl"), label("vllm", "vllm.jsonl"), label("vllm", "vllm2.jsonl")
    assert [r["id"] for r in theirs] == [r["id"] for r in ours]
    assert [len(r["labels"]) for r in theirs] == [len(r["labels"]) for r in ours]
    assert all(v is None or 0.0 <= v <= 1.0 for r in theirs for v in r["values"])
    assert theirs == again


@pytest.mark.vllm
def test_search_with_vllm(tmp_path, vllm_model_dir, tiny_prm_dir, tiny_problems):
    """Beam search whose policy samples steps through vLLM (stop string: newline), scored by the tiny PRM."""
    out = tmp_path / "search"
    args = ["search", "--problems", str(tiny_problems), "--prm", str(tiny_prm_dir), "--policy", str(vllm_model_dir)]
    args += ["--output", str(out), "--width", "2", "--expand", "2", "--max_steps", "2", "--limit", "2"]
    args += ["--sampling.engine", "vllm", "--sampling.max_new_tokens", "6", "--bf16", "false", "--progress", "false"]
    assert cli.main(args) == 0
    summary = json.loads((out / "search.json").read_text())
    assert summary["problems"] == 2 and summary["tokens_per_problem"] > 0


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_bench_vllm_suite_without_vllm_is_one_line(tmp_path, capsys):
    assert cli.main(["bench", "--suites", "vllm", "--output", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "make bench-vllm" in err[0]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.vllm
def test_bench_vllm_suite_times_both_engines(tmp_path, vllm_model_dir):
    out = tmp_path / "r.json"
    args = ["bench", "--suites", "vllm", "--output", str(out), "--engines_model", str(vllm_model_dir)]
    args += ["--engines_problems", "2", "--engines_n", "2", "--engines_tokens", "8", "--engines_batches", "[2, 4]"]
    assert cli.main(args + ["--engines_bf16", "false"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6 and all(r["value"] > 0 for r in rows)
    assert all(0 < r["tokens"] <= 2 * 2 * 8 for r in rows if "tokens" in r)

"""The generation engine and `prm generate`: pure helpers, the batching machinery against a scripted fake model
(whose output is only right if the KV cache rows are merged, selected and trimmed correctly), the tiny random
Llama end to end, and resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from prm import cli
from prm.config import config_path_for
from prm.generate import Sample, SamplingParams, build_prompt, sample, trace_record
from prm.generate.sampler import _choose, answer_line_end
from prm.records import ResumableWriter, StepRecord, read_records

# ---------------------------------------------------------------------------------------------------------------------
# pure helpers


def test_answer_line_end():
    assert answer_line_end("3 + 4 = 7\nThe answer is 7.\nmore") == len("3 + 4 = 7\nThe answer is 7.\n")
    assert answer_line_end("The answer is 7.") is None  # line not finished: the model may still write "5"
    assert answer_line_end("no answer\nhere\n") is None
    assert answer_line_end("#### 12\n") == 8


def test_choose_greedy_top_p_and_per_row_generators():
    logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]])
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    assert _choose(logits, gens, 0.0, 1.0).tolist() == [1, 0]
    # top_p this small keeps only the most likely token, whatever the noise
    for seed in range(20):
        gens = [torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 100)]
        assert _choose(logits, gens, 5.0, 0.05).tolist() == [1, 0]
    # a row's draw depends on its own generator only
    a = _choose(torch.zeros(2, 50), [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)], 1.0, 1.0)
    b = _choose(torch.zeros(1, 50), [torch.Generator().manual_seed(8)], 1.0, 1.0)
    assert a[1] == b[0]


def test_trace_record_splits_lines_and_grades():
    problem = StepRecord(id="p1", problem="Q?", steps=["gold"], answer="12", meta={"chain": [3, 12]})
    r = trace_record(problem, 2, Sample("3 * 4 = 12\n\n  The answer is 12.", 9, "answer"), "m")
    assert r.id == "p1/2" and r.steps == ["3 * 4 = 12", "The answer is 12."]
    assert r.meta["correct"] is True and r.meta["prediction"] == "12" and r.meta["problem"] == {"chain": [3, 12]}
    empty = trace_record(problem, 0, Sample("  \n", 3, "eos"), "m")
    assert empty.steps == ["(no output)"] and empty.meta["empty"] and empty.meta["correct"] is False


def test_resumable_writer_drops_torn_line_and_incomplete_units(tmp_path):
    path = tmp_path / "out.jsonl"
    rec = lambda i, u: {"id": f"{u}/{i}", "problem": "p", "steps": ["s"], "meta": {"u": u}}  # noqa: E731
    with ResumableWriter(path, unit=lambda d: d["meta"]["u"], expected=lambda u: 2) as w:
        w.write_unit([rec(0, "a"), rec(1, "a")])
        w.write_unit([rec(0, "b")])  # an incomplete unit, as if killed between its records
    with open(path, "a") as f:
        f.write('{"id": "c/0", "probl')  # a torn line
    w = ResumableWriter(path, unit=lambda d: d["meta"]["u"], expected=lambda u: 2)
    w.close()
    assert w.done == {"a"} and [r.id for r in read_records(path)] == ["a/0", "a/1"]


# ---------------------------------------------------------------------------------------------------------------------
# the engine against a scripted model


class ScriptedLM(torch.nn.Module):
    """Writes a fixed completion for each known prompt, reading its own history back from the KV cache: if the
    engine mixes up cache rows, padding or positions, the history is wrong and so is the output."""

    def __init__(self, tok, scripts: dict[str, str], eos: bool = True):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.vocab = len(tok)
        self.filler = tok("x", add_special_tokens=False).input_ids[0]
        self.scripts = [
            (
                tok(p, add_special_tokens=False).input_ids,
                tok(c, add_special_tokens=False).input_ids + ([tok.eos_token_id] if eos else []),
            )
            for p, c in scripts.items()
        ]
        self.seen_batch_sizes: list[int] = []

    def forward(self, input_ids, attention_mask, position_ids, cache=None, use_cache=True, logits_to_keep=0, **kw):
        x = input_ids.float()[:, None, :, None]
        hist, _ = cache.update(x, x, 0)
        hist = hist[:, 0, :, 0].long()
        assert hist.shape == attention_mask.shape
        self.seen_batch_sizes.append(input_ids.shape[0])
        logits = torch.full((input_ids.shape[0], 1, self.vocab), -1e4)
        for b in range(input_ids.shape[0]):
            real = hist[b][attention_mask[b].bool()].tolist()
            assert position_ids[b, -1].item() == len(real) - 1
            ((prompt, comp),) = [(p, c) for p, c in self.scripts if real[: len(p)] == p]
            gen = real[len(prompt) :]
            logits[b, 0, comp[len(gen)] if len(gen) < len(comp) else self.filler] = 0.0
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def tiny_tok(tmp_path_factory):
    from conftest import build_tiny_tokenizer

    return build_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


def test_engine_stops_at_answer_line_with_continuous_batching(tiny_tok):
    scripts = {
        "Tom has 12 apples.": "12 + 5 = 17\nThe answer is 17.\nThe answer is 99.\nmore junk",
        "Mia has 17 marbles and more words in a longer prompt here.": "17 - 4 = 13\nThe answer is 13.\n",
        "Leah?": "3 * 4 = 12",  # ends with EOS, no answer line
        "Ava?": "blah\n" * 40,  # never answers, never ends
    }
    model = ScriptedLM(tiny_tok, scripts, eos=True)
    model.scripts[3] = (model.scripts[3][0], model.scripts[3][1][:-1])  # the last one has no EOS at all
    prompts = list(scripts)
    params = SamplingParams(max_new_tokens=30, temperature=0.0, batch_size=3, bf16=False)
    done_order = []
    out = sample(model, tiny_tok, prompts, 2, params, on_prompt_done=lambda i, s: done_order.append(i))
    for k in range(2):
        assert out[0][k].text == "12 + 5 = 17\nThe answer is 17." and out[0][k].stop == "answer"
        assert out[1][k].text == "17 - 4 = 13\nThe answer is 13." and out[1][k].stop == "answer"
        assert out[2][k].text == "3 * 4 = 12" and out[2][k].stop == "eos"
        assert out[3][k].stop == "length" and out[3][k].tokens == 30
    n_answer = len(tiny_tok("12 + 5 = 17\nThe answer is 17.\n", add_special_tokens=False).input_ids)
    assert out[0][0].tokens == n_answer  # not one token past the answer line
    assert sorted(done_order) == [0, 1, 2, 3]
    assert max(model.seen_batch_sizes) == 3  # never more rows than batch_size


def test_engine_stop_at_line_writes_one_step(tiny_tok):
    scripts = {
        "Tom has 12 apples.": "\n12 + 5 = 17\nThe answer is 17.\n",  # a leading blank line is not a step
        "Mia?": "The answer is 13.\nmore",  # an answer line stops as an answer
        "Leah?": "3 * 4 = 12",  # ends with EOS inside its first line
    }
    model = ScriptedLM(tiny_tok, scripts, eos=True)
    params = SamplingParams(max_new_tokens=30, temperature=0.0, batch_size=4, bf16=False, stop_at="line")
    out = sample(model, tiny_tok, list(scripts), 1, params)
    assert (out[0][0].text, out[0][0].stop) == ("\n12 + 5 = 17", "line")
    assert (out[1][0].text, out[1][0].stop) == ("The answer is 13.", "answer")
    assert (out[2][0].text, out[2][0].stop) == ("3 * 4 = 12", "eos")
    with pytest.raises(ValueError, match="stop_at"):
        sample(model, tiny_tok, ["Mia?"], 1, replace(params, stop_at="word"))


# ---------------------------------------------------------------------------------------------------------------------
# the tiny random Llama


def test_samples_do_not_depend_on_batching(tiny_model_dir):
    from prm.models import load

    model, tok = load(str(tiny_model_dir))
    prompts = [build_prompt(tok, q) for q in ("Tom has 12 apples.", "Mia has 17 marbles and 3 more?", "Ava?")]
    p = SamplingParams(max_new_tokens=10, temperature=1.0, batch_size=2, bf16=False, seed=3)
    a = sample(model, tok, prompts, 3, p, keys=["t", "m", "a"])
    b = sample(model, tok, prompts[::-1], 3, SamplingParams(**{**p.__dict__, "batch_size": 5}), keys=["a", "m", "t"])
    assert [[s.text for s in row] for row in a] == [[s.text for s in row] for row in b[::-1]]
    assert len({s.text for s in a[0]}) > 1  # the samples of one prompt differ


def test_greedy_matches_transformers_generate(tiny_model_dir):
    from prm.models import load

    model, tok = load(str(tiny_model_dir))
    prompts = [build_prompt(tok, "Tom has 12 apples."), build_prompt(tok, "Ava?", shots=())]
    ours = sample(model, tok, prompts, 1, SamplingParams(max_new_tokens=15, temperature=0, batch_size=2, bf16=False))
    for prompt, (s,) in zip(prompts, ours, strict=True):
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        ref = model.generate(ids, max_new_tokens=15, do_sample=False, pad_token_id=tok.pad_token_id)
        text = tok.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
        assert text.startswith(s.text) and s.tokens <= 15


def test_sample_logprob_is_the_models_log_probability_of_its_tokens(tiny_model_dir):
    from prm.models import load

    model, tok = load(str(tiny_model_dir))
    prompt = build_prompt(tok, "Tom has 12 apples.")
    (s,) = sample(model, tok, [prompt], 1, SamplingParams(max_new_tokens=12, temperature=0, bf16=False))[0:1][0]
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    ref = model.generate(
        ids,
        max_new_tokens=12,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
        output_logits=True,
        return_dict_in_generate=True,
    )
    new = ref.sequences[0, ids.shape[1] :]
    expected = sum(float(torch.log_softmax(ref.logits[t][0].float(), -1)[new[t]]) for t in range(s.tokens))
    assert s.logprob < 0 and s.logprob == pytest.approx(expected, abs=1e-3)


def _synth(tmp_path, n=6):
    problems = tmp_path / "problems.jsonl"
    assert cli.main(["synth", "--n", str(n), "--output", str(problems)]) == 0
    return problems


def test_generate_command_end_to_end(tmp_path, tiny_model_dir):
    problems = _synth(tmp_path)
    traces = tmp_path / "traces.jsonl"
    args = [
        "generate",
        "--input",
        str(problems),
        "--output",
        str(traces),
        "--model",
        str(tiny_model_dir),
        "--n",
        "3",
        "--sampling.max_new_tokens",
        "16",
        "--sampling.batch_size",
        "4",
        "--progress",
        "false",
    ]
    assert cli.main(args) == 0
    recs = read_records(traces)
    assert len(recs) == 18 and len({r.id for r in recs}) == 18
    for r in recs:
        # a random model never writes an answer line: nothing is correct, nothing crashes
        assert r.source == "generate" and r.meta["correct"] is False and r.meta["stop"] in ("length", "eos")
        assert r.meta["tokens"] <= 16 and "chain" in r.meta["problem"]
    summary = json.loads(traces.with_suffix(".summary.json").read_text())
    assert summary["traces"] == 18 and summary["accuracy"] == 0.0 and summary["pass@3"] == 0.0
    assert "n: 3" in config_path_for(traces).read_text()
    before = traces.read_bytes()
    assert cli.main(args) == 0  # a rerun finds everything done and changes nothing
    assert traces.read_bytes() == before


def test_generate_resumes_after_sigkill(tmp_path, tiny_model_dir):
    problems = _synth(tmp_path, n=40)
    traces = tmp_path / "traces.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "prm",
        "generate",
        "--input",
        str(problems),
        "--output",
        str(traces),
        "--model",
        str(tiny_model_dir),
        "--n",
        "4",
        "--sampling.max_new_tokens",
        "40",
        "--sampling.batch_size",
        "4",
        "--bf16",
        "false",
        "--progress",
        "false",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | {"PYTHONHASHSEED": "0"}
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (not traces.exists() or traces.stat().st_size == 0):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "generation finished before it could be killed"
    partial = traces.read_bytes()
    assert partial, "the killed run wrote nothing before the kill"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    recs = read_records(traces)
    ids = [r.id for r in recs]
    assert len(ids) == len(set(ids)) == 160
    # Every problem has its 4 traces, and every complete line written before the kill survives unchanged.
    kept = partial.split(b"\n")[:-1]
    done_before = {json.loads(line)["meta"]["problem_id"] for line in kept}
    full = traces.read_bytes()
    for pid in done_before:
        lines = [line for line in kept if json.loads(line)["meta"]["problem_id"] == pid]
        if len(lines) == 4:
            assert all(line in full for line in lines)
    # The same samples as an uninterrupted run: each sample depends only on (seed, problem id, index).
    fresh = tmp_path / "fresh.jsonl"
    fresh_cmd = [str(fresh) if a == str(traces) else a for a in cmd]
    subprocess.run(fresh_cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    by_id = {r.id: r.steps for r in read_records(fresh)}
    assert {r.id: r.steps for r in recs} == by_id


def test_bf16_falls_back_to_fp32_where_the_cpu_would_emulate_it(monkeypatch, capsys):
    import prm.models as models
    from prm.generate.sampler import weights_dtype

    monkeypatch.delenv("PRM_BF16", raising=False)
    monkeypatch.setattr(models, "_bf16_noted", False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert weights_dtype(True) == "float32" and weights_dtype(False) == "float32"
    with models.bf16_autocast("cpu", True):
        assert not torch.is_autocast_enabled("cpu")
    assert capsys.readouterr().err.count("no native bf16") == 1  # one note per process, however often asked
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert weights_dtype(True) == "bfloat16"
    with models.bf16_autocast("cpu", True):
        assert torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setenv("PRM_BF16", "force")
    assert weights_dtype(True) == "bfloat16"


def test_a_longer_prompt_joining_the_batch_leaves_the_running_rows_unchanged(tiny_model_dir):
    # Continuous batching merges a new prompt's cache into the running one, left-padding both to the longer width.
    # A new prompt longer than the running rows' context once misaligned the running rows' values (their keys were
    # padded, their values read stale buffer columns): greedy samples then differed from one-by-one ones.
    from prm.generate.sampler import _Batch
    from prm.models import load

    model, tok = load(str(tiny_model_dir))
    short = tok("Tom has 12 apples.", add_special_tokens=False).input_ids
    long = tok(build_prompt(tok, "Mia has 17 marbles and 3 more bags of 4. How many?"), add_special_tokens=False)
    assert len(long.input_ids) > len(short) + 8
    alone, mixed = _Batch(model, "cpu"), _Batch(model, "cpu")
    for b in (alone, mixed):
        b.admit([short], [0], 0, False)
        for t in (5, 6, 7):
            b.step([t] * len(b.pos), False)
    mixed.admit([long.input_ids], [0, 0], 0, False)
    alone.step([8], False)
    mixed.step([8, 9, 9], False)
    assert mixed.logits.shape[0] == 3
    assert torch.allclose(alone.logits[0], mixed.logits[0], atol=1e-4)

"""The training-free baseline scorer: the result-span finder and the layout (pure), the scored-file helpers, and the
tiny random Llama: one score per step, batching-independent, equal to a hand computation from a full forward pass,
the LM head applied to the scored positions only, and `prm score-baseline` end to end."""

from __future__ import annotations

import math

import pytest
import torch

from prm import cli
from prm.config import config_path_for
from prm.records import RecordError, StepRecord, read_records
from prm.score import attach_scores, likelihood_scores, read_scores, result_span
from prm.score.baseline import encode, layout_text, span_tokens, target_span

# ---------------------------------------------------------------------------------------------------------------------
# pure helpers


@pytest.mark.parametrize(
    ("step", "result"),
    [
        ("After selling 7, Zoe has 10 - 7 = 3 coins.", "3"),
        ("Winning 42 coins gives Zoe 45 + 42 = 87 coins.", "87"),
        ("12 + 5 = 17 apples, and 17 * 2 = 34 in all.", "34"),  # the last equation
        ("so x = y, then 4 * 2 = 8.", "8"),  # the last '=' that a number follows
        ("It costs 3 - 5 = -2 dollars", "-2"),
        ("The total is 2 * 1.25 = 2.5.", "2.5"),
        ("Natalia sold 48/2 = <<48/2=24>>24 clips.", "24"),
        ("= $1,250 in all", "1,250"),
        ("The answer is 18.", "18"),
        ("So the final answer is: $1,000.", "1,000"),
        ("#### 72", "72"),
        ("The answer is 7, since 3 + 4 = 7", "7"),
    ],
)
def test_result_span_finds_the_written_result(step, result):
    span = result_span(step)
    assert span is not None and step[span[0] : span[1]] == result
    if "=" in step and "answer" not in step:
        assert span[0] > step.rindex("=") - 3  # after the last '=' (or the last one a number follows)


@pytest.mark.parametrize("step", ["He has some apples.", "x = y", "The answer is seven.", "3 + 4 is 7"])
def test_result_span_none_and_fallback_to_the_whole_step(step):
    assert result_span(step) is None
    assert target_span(step, "result") == (0, len(step)) == target_span(step, "step")


def test_result_span_picks_the_equation_over_the_answer_phrase():
    step = "12 + 5 = 17 so the answer is 9"
    assert step[slice(*result_span(step))] == "17"
    assert target_span("3 + 4 = 7", "step") == (0, 9)
    with pytest.raises(ValueError, match="unknown mode"):
        target_span("3 + 4 = 7", "tokens")


def test_layout_text_and_span_tokens():
    text, starts = layout_text(None, "Q?", ["a = 1", "b"])
    assert text == "Q?\na = 1\nb" and starts == [3, 9]
    assert [text[s : s + len(x)] for s, x in zip(starts, ["a = 1", "b"], strict=True)] == ["a = 1", "b"]
    offsets = [(0, 2), (2, 3), (3, 6), (6, 7), (0, 0)]
    assert span_tokens(offsets, 3, 7) == [2, 3]
    assert span_tokens(offsets, 6, 7) == [3]
    assert span_tokens(offsets, 0, 2) == []  # token 0 has nothing before it to predict it
    assert span_tokens(offsets, 1, 3) == [1]


def test_attach_and_read_scores():
    r = StepRecord("a", "p", ["s1", "s2"], [True, False])
    assert attach_scores(r, [-1, 0.5], "x") is r and r.meta == {"scores": [-1.0, 0.5], "scorer": "x"}
    assert read_scores(r) == [-1.0, 0.5] and read_scores(r.to_dict()) == [-1.0, 0.5]
    with pytest.raises(ValueError, match="1 scores for 2 steps"):
        attach_scores(r, [0.1], "x")
    with pytest.raises(ValueError, match="not finite"):
        attach_scores(r, [0.1, math.nan], "x")
    for meta, field in [
        ({}, "meta.scores"),
        ({"scores": [1.0]}, "meta.scores"),
        ({"scores": "0.1 0.2"}, "meta.scores"),
        ({"scores": [0.1, None]}, "meta.scores[1]"),
        ({"scores": [True, 0.2]}, "meta.scores[0]"),
    ]:
        bad = StepRecord("b", "p", ["s1", "s2"], meta=meta)
        with pytest.raises(RecordError) as e:
            read_scores(bad, path="f.jsonl", line=7)
        assert (e.value.path, e.value.line, e.value.field) == ("f.jsonl", 7, field)
        assert str(e.value).startswith(f"f.jsonl:7: field '{field}'")


# ---------------------------------------------------------------------------------------------------------------------
# the tiny random Llama


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from prm.models import load

    return load(str(tiny_model_dir))


RECORDS = [
    StepRecord("r0", "Tom has 12 apples and buys 5 more.", ["12 + 5 = 17 apples.", "The answer is 17."]),
    StepRecord("r1", "Mia has 17 marbles.", ["She gives away 4, so 17 - 4 = 13.", "Then 13 * 2 = 26.", "Done."]),
    StepRecord("r2", "How many?", ["3 packs of 4 is 3 * 4 = 12 pencils."]),
    StepRecord("r3", "Leah has 45 rolls in 5 bags. " * 4, ["Each bag holds 45 / 5 = 9 rolls.", "The answer is 9."]),
]


@pytest.mark.parametrize("mode", ["result", "step"])
def test_one_finite_score_per_step(tiny, mode):
    model, tok = tiny
    scores = likelihood_scores(model, tok, RECORDS, mode=mode, batch_size=2)
    assert [len(s) for s in scores] == [len(r.steps) for r in RECORDS]
    assert all(math.isfinite(x) and x <= 0 for s in scores for x in s)


@pytest.mark.parametrize(("mode", "layout"), [("result", "plain"), ("step", "plain"), ("result", "chat")])
def test_batched_equals_one_by_one(tiny, mode, layout):
    model, tok = tiny
    alone = [likelihood_scores(model, tok, [r], mode=mode, layout=layout)[0] for r in RECORDS]
    for batch_size in (2, 3, 16):
        batched = likelihood_scores(model, tok, RECORDS, mode=mode, layout=layout, batch_size=batch_size)
        for a, b in zip(alone, batched, strict=True):
            assert b == pytest.approx(a, abs=1e-4)


POOL = [
    StepRecord(f"p{k}", problem, steps)
    for k, (problem, steps) in enumerate(
        [
            ("Tom has 12 apples and buys 5 more.", ["12 + 5 = 17 apples.", "The answer is 17."]),
            ("Tom has 12 apples and buys 5 more.", ["12 + 5 = 18 apples.", "The answer is 18."]),
            ("Tom has 12 apples and buys 5 more.", ["12 + 5 = 17 apples.", "17 * 1 = 17.", "The answer is 17."]),
            ("Mia has 17 marbles.", ["She gives away 4, so 17 - 4 = 13.", "Then 13 * 2 = 26.", "Done."]),
            ("Tom has 12 apples and buys 5 more.", ["12 - 5 = 7 apples.", "The answer is 7."]),
            ("Mia has 17 marbles.", ["She gives away 4, so 17 - 4 = 12.", "The answer is 12."]),
        ]
    )
]


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
@pytest.mark.parametrize("layout", ["plain", "chat"])
def test_prefix_trees_score_as_separate_rows_from_fewer_tokens(tiny, kernel, layout):
    model, tok = tiny
    before = model.config._attn_implementation
    model.set_attn_implementation(kernel)
    seen = {True: 0, False: 0}
    scores = {}
    for shared in (False, True):
        scores[shared] = likelihood_scores(
            model,
            tok,
            POOL,
            layout=layout,
            mode="step",
            batch_size=3,  # rows of at most 3 records: Tom's 4 traces take two rows
            share_prefixes=shared,
            batch_tokens=120,  # and more than one batch
            on_batch=lambda n, t, shared=shared: seen.__setitem__(shared, seen[shared] + t),
        )
    model.set_attn_implementation(before)
    for a, b in zip(scores[False], scores[True], strict=True):
        assert b == pytest.approx(a, abs=1e-4)
    assert seen[True] < 0.8 * seen[False]  # the problem's tokens are computed once per row


def test_matches_a_full_forward_by_hand(tiny):
    model, tok = tiny
    r = RECORDS[1]
    text = "Mia has 17 marbles.\nShe gives away 4, so 17 - 4 = 13.\nThen 13 * 2 = 26.\nDone."
    enc = tok(text, return_offsets_mapping=True)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logp = model(ids).logits.log_softmax(-1)[0]  # (T, V): every position, the full vocabulary

    def mean_logprob(start: int, end: int, expect: str) -> float:
        toks = [t for t, (a, b) in enumerate(enc.offset_mapping) if a < end and b > start]
        assert tok.decode([enc.input_ids[t] for t in toks]).strip() == expect  # the span maps to these tokens
        return sum(logp[t - 1, enc.input_ids[t]].item() for t in toks) / len(toks)

    s0, s1, s2 = text.index("She"), text.index("Then"), text.index("Done")
    result = [
        mean_logprob(text.index("13."), text.index("13.") + 2, "13"),
        mean_logprob(text.index("26"), text.index("26") + 2, "26"),
        mean_logprob(s2, s2 + 5, "Done."),  # no result written: the whole step
    ]
    step = [
        mean_logprob(s0, s1 - 1, "She gives away 4, so 17 - 4 = 13."),
        mean_logprob(s1, s2 - 1, "Then 13 * 2 = 26."),
        result[2],
    ]
    batch = [RECORDS[0], r, RECORDS[3]]  # padded beside shorter and longer records
    assert likelihood_scores(model, tok, batch, mode="result", batch_size=3)[1] == pytest.approx(result, abs=1e-4)
    assert likelihood_scores(model, tok, batch, mode="step", batch_size=3)[1] == pytest.approx(step, abs=1e-4)


def test_lm_head_sees_only_the_scored_positions(tiny):
    model, tok = tiny
    rows = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: rows.append(args[0].shape))
    try:
        likelihood_scores(model, tok, RECORDS, mode="result", batch_size=4)
    finally:
        hook.remove()
    scored = sum(len(t) for r in RECORDS for t in encode(tok, r, "result").targets)
    assert all(len(shape) == 2 for shape in rows)  # (N, H): gathered states, never (B, T, H)
    assert sum(shape[0] for shape in rows) == scored
    assert scored < sum(len(encode(tok, r).ids) for r in RECORDS) / 2


def test_bf16_is_close_to_fp32(tiny):
    model, tok = tiny
    fp32 = likelihood_scores(model, tok, RECORDS, mode="step")
    bf16 = likelihood_scores(model, tok, RECORDS, mode="step", bf16=True)
    for a, b in zip(fp32, bf16, strict=True):
        assert b == pytest.approx(a, abs=0.1)


def test_score_baseline_command_end_to_end(tmp_path, tiny_model_dir, capsys):
    traces = tmp_path / "traces.jsonl"
    assert cli.main(["synth", "--n", "12", "--corrupt", "0.5", "--output", str(traces)]) == 0
    scored = tmp_path / "scored.jsonl"
    args = ["score-baseline", "--input", str(traces), "--output", str(scored), "--model", str(tiny_model_dir)]
    assert cli.main([*args, "--mode", "step", "--batch_size", "5", "--bf16", "false", "--progress", "false"]) == 0
    assert "prm score-baseline: scored" in capsys.readouterr().out
    before, after = read_records(traces), read_records(scored)
    assert [r.id for r in after] == [r.id for r in before]
    for r, b in zip(after, before, strict=True):
        assert r.meta["scorer"] == "loglik-step" and len(read_scores(r)) == len(r.steps)
        kept = {k: v for k, v in r.meta.items() if k not in ("scores", "scorer")}
        assert r.steps == b.steps and r.labels == b.labels and kept == b.meta  # the record is otherwise unchanged
    config = config_path_for(scored).read_text()
    assert "mode: step" in config and "batch_size: 5" in config
    # a bad flag value is a config error naming the key, not a traceback
    assert cli.main([*args, "--mode", "tokens"]) == 2
    assert "mode" in capsys.readouterr().err

"""The PRM: step-tag encoding, readouts, training with accelerate, checkpoints that plain peft loads, exact resume
after a SIGKILL, and one-pass scoring equal to per-prefix scoring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from prm import cli
from prm.fit import read_evals
from prm.fit.loop import log_until
from prm.fit.rows import length_batches, prefix_tree
from prm.model.encode import STEP_TAG, add_step_tag, encode, equation_span, result_span
from prm.model.io import LoraSpec, build, load, save
from prm.model.prm import Spec, collate
from prm.records import read_records
from prm.score.prm_scorer import PRMScorer


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from prm.models import load_tokenizer

    t = load_tokenizer(str(tiny_model_dir))
    add_step_tag(t)
    return t


@pytest.mark.parametrize("nb", ["ки", " ", "\n\n", "7", STEP_TAG, "数学", "", "x ки 12\n"])
def test_step_tag_is_one_id_whatever_its_neighbours(tok, nb):
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    ids = tok(nb + STEP_TAG + nb, add_special_tokens=False).input_ids
    assert ids.count(tag) == 1 + 2 * nb.count(STEP_TAG)
    assert tok(STEP_TAG, add_special_tokens=False).input_ids == [tag]


def test_spans():
    s = "Mia gives away 4, so she has 17 - 4 = 13 marbles."
    assert s[slice(*result_span(s))] == "13" and s[slice(*equation_span(s))] == "17 - 4 = 13"
    assert "The answer is 42."[slice(*result_span("The answer is 42."))] == "42"
    assert result_span("No numbers here.") is None and equation_span("No numbers here.") is None


def test_encode_keeps_whole_steps_and_marks_spans(tok):
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    steps = ["He buys 4, so 3 + 4 = 7 apples.", "The answer is 7."]
    enc = encode(tok, tag, "Tom has 3 apples.", steps, 512)
    assert enc.kept == 2 and enc.dropped == 0 and [enc.input_ids[t] for t in enc.tags] == [tag, tag]
    assert tok.decode([enc.input_ids[i] for i in enc.result_tokens[0]]).strip() == "7"
    assert tok.decode([enc.input_ids[i] for i in enc.equation_tokens[0]]).strip() == "3 + 4 = 7"
    parts = [tok.decode([enc.input_ids[i] for i in p]).strip() for p in enc.operation_tokens[0]]
    assert parts == ["3", "+", "4"] and enc.operation_tokens[1] == ([], [], [])
    short = encode(tok, tag, "Tom has 3 apples.", steps, enc.tags[0] + 2)
    assert short.kept == 1 and short.dropped == 1 and len(short.input_ids) == enc.tags[0] + 1


def test_length_batches_respect_budget():
    lengths = [5, 100, 6, 90, 50, 51, 7]
    batches = length_batches(lengths, 200)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert all(len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 200 for b in batches)


def test_length_batches_cap_items_and_keep_every_index():
    lengths = [5, 6, 7, 8, 9, 10, 11]
    batches = length_batches(lengths, 10_000, max_items=3)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(i for b in batches for i in b) == list(range(7))


@pytest.mark.parametrize("readout", ["head", "tokens"])
def test_readouts_give_one_logit_per_tag_and_save_load_round_trip(tmp_path, tiny_model_dir, readout):
    prm, tok = build(Spec(base=str(tiny_model_dir), readout=readout, label_tokens=("7", "3")), LoraSpec(r=4))
    encs = [
        encode(tok, prm.tag_id, "Tom has 3 apples.", ["3 + 4 = 7", "The answer is 7."], 256),
        encode(tok, prm.tag_id, "Mia?", ["12 - 5 = 7 marbles"], 256),
    ]
    batch = collate(encs, tok.pad_token_id)
    out = prm(batch)
    assert out.shape == (3,)
    out.sum().backward()
    grads = {n for n, p in prm.named_parameters() if p.grad is not None}
    assert any("lora_A" in n for n in grads) and any("trainable_tokens" in n for n in grads)
    with torch.no_grad():
        if prm.feat is not None:
            prm.feat.weight.fill_(0.5)
    from prm.model.io import save

    save(prm, tok, tmp_path / "ck")
    prm2, _ = load(tmp_path / "ck")
    prm.eval()
    with torch.no_grad():
        assert torch.allclose(prm(batch), prm2(batch), atol=1e-5)
    assert not list((tmp_path / "ck").glob("*.bin")) and not list((tmp_path / "ck").glob("*.pt"))


def test_save_from_a_gathered_state_dict_writes_those_weights(tmp_path, tiny_model_dir):
    """Sharded training (FSDP) saves from the full state gathered across processes, not from the module's own
    parameters (only its shard there): the checkpoint must hold the gathered values under the usual names."""
    from prm.model.io import save

    prm, tok = build(Spec(base=str(tiny_model_dir), features=True), LoraSpec(r=4))
    gathered = {k: v.detach().clone() for k, v in prm.state_dict().items()}
    for k in gathered:
        if "lora_B" in k or k.startswith(("head.", "feat.")):
            gathered[k] += 0.25  # differs from the live module, so the test tells which one was written
    save(prm, tok, tmp_path / "plain")
    save(prm, tok, tmp_path / "gathered", state_dict=gathered)
    a, b = load(tmp_path / "plain")[0].state_dict(), load(tmp_path / "gathered")[0].state_dict()
    moved = [k for k in a if not torch.equal(a[k], b[k])]
    assert moved and all("lora_B" in k or k.startswith(("head.", "feat.")) for k in moved)
    assert all(torch.allclose(b[k], a[k] + 0.25) for k in moved)


def test_operation_features_add_three_columns_and_keep_the_first_four(tmp_path, tiny_model_dir):
    """The `operation` feature set reads the operands and the operator apart; its first four features are the
    `equation` set's, exactly, and it saves and loads with its own width (an old checkpoint loads as `equation`)."""

    recs = [("Tom has 3 apples.", ["He buys 4, so 3 × 4 = 12 apples.", "The answer is 12."])]
    old, tok = build(Spec(base=str(tiny_model_dir)), LoraSpec(r=4))
    new = build(Spec(base=str(tiny_model_dir), feature_set="operation"), LoraSpec(r=4))[0]
    enc = [encode(tok, old.tag_id, p, s, 512) for p, s in recs]
    batch = collate(enc, tok.pad_token_id)
    lm_w = old._lm_weight()
    with torch.no_grad():
        hidden = old._hidden(batch)
        f4, f7 = old.features(hidden, lm_w, batch, 4), new.features(hidden, lm_w, batch, 7)
    assert f4.shape == (2, 4) and f7.shape == (2, 7) and torch.equal(f7[:, :4], f4)
    assert (f7[0, 4:] < 0).all() and (f7[1, 4:] == 0).all()  # log-probs of "3", "×", "4"; the answer line has none
    save(new, tok, tmp_path / "op")
    assert load(tmp_path / "op")[0].feat.weight.shape == (1, 7)
    spec = json.loads((tmp_path / "op" / "prm_spec.json").read_text())
    del spec["feature_set"]
    (tmp_path / "op" / "prm_spec.json").write_text(json.dumps(spec))
    with pytest.raises(RuntimeError, match="size mismatch"):  # read as a 4-feature checkpoint: a clear mismatch
        load(tmp_path / "op")


def test_calc_feature_is_the_calculators_verdict_in_every_layout(tiny_model_dir):
    """The `calc` set appends the calculator's verdict per step (1 checks, -1 wrong, 0 nothing to check) to the
    `operation` set's seven features, the same in a padded batch and in a shared prefix tree."""
    from prm.model.prm import collate_shared

    prm, tok = build(Spec(base=str(tiny_model_dir), feature_set="calc"), LoraSpec(r=4))
    steps = [["He buys 4, so 3 + 4 = 7 apples.", "The answer is 7."], ["He buys 4, so 3 + 4 = 8 apples.", "Done."]]
    enc = [encode(tok, prm.tag_id, "Tom has 3 apples.", s, 512) for s in steps]
    assert [e.calc for e in enc] == [[1.0, 0.0], [-1.0, 0.0]]
    lm_w = prm._lm_weight()
    with torch.no_grad():
        flat = collate(enc, tok.pad_token_id)
        f8 = prm.features(prm._hidden(flat), lm_w, flat, 8)
        tree = collate_shared([enc], tok.pad_token_id)
        f8_tree = prm.features(prm._hidden(tree), lm_w, tree, 8)
        f7 = prm.features(prm._hidden(flat), lm_w, flat, 7)
    assert f8[:, 7].tolist() == [1.0, 0.0, -1.0, 0.0] and torch.equal(f8[:, :7], f7)
    assert torch.allclose(f8_tree, f8, atol=1e-4)
    assert prm.feat.weight.shape == (1, 8) and prm.feat.weight[0, 7] > 0  # a step that checks starts out favoured


def test_step_feature_is_the_mean_log_probability_of_the_whole_step(tiny_model_dir):
    """The `step` set appends the mean log-probability of every token of the step (its leading newline left out) to
    the `calc` set's eight features: the value the LM head gives when the whole vocabulary is projected, the same in
    a shared prefix tree, and starting with a positive weight (a likelier step is more likely right)."""
    from prm.model.prm import collate_shared

    prm, tok = build(Spec(base=str(tiny_model_dir), feature_set="step"), LoraSpec(r=4))
    steps = [["He buys 4, so 3 + 4 = 7 apples.", "The answer is 7."], ["He eats 1, so 3 - 1 = 2 apples.", "Done."]]
    enc = [encode(tok, prm.tag_id, "Tom has 3 apples.", s, 512) for s in steps]
    assert tok.decode([enc[0].input_ids[i] for i in enc[0].step_tokens[0]]) == steps[0][0]
    assert tok.decode([enc[1].input_ids[i] for i in enc[1].step_tokens[1]]) == "Done."
    lm_w = prm._lm_weight()
    with torch.no_grad():
        flat = collate(enc, tok.pad_token_id)
        hidden = prm._hidden(flat)
        f9, f8 = prm.features(hidden, lm_w, flat, 9), prm.features(hidden, lm_w, flat, 8)
        tree = collate_shared([enc], tok.pad_token_id)
        f9_tree = prm.features(prm._hidden(tree), lm_w, tree, 9)
        logp = (hidden @ lm_w.T).float().log_softmax(-1)
    want = [
        logp[b, [i - 1 for i in e.step_tokens[j]], [e.input_ids[i] for i in e.step_tokens[j]]].mean().item()
        for b, e in enumerate(enc)
        for j in range(e.kept)
    ]
    assert f9[:, 8].tolist() == pytest.approx(want, abs=1e-4) and torch.equal(f9[:, :8], f8)
    assert torch.allclose(f9_tree, f9, atol=1e-4)
    assert prm.feat.weight.shape == (1, 9) and prm.feat.weight[0, 8] > 0


# Every tiny training run: fp32 (exact comparisons), quiet, a small adapter.
TINY_RUN = ["--bf16", "false", "--progress", "false", "--lora_r", "4"]


def _data(tmp_path):
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    # pairs: the right and wrong solution of a problem share a row in training (share_prefixes)
    assert cli.main(["synth", "--n", "60", "--pairs", "true", "--corrupt", "0.5", "--output", str(train)]) == 0
    assert cli.main(["synth", "--n", "30", "--corrupt", "0.5", "--split", "test", "--output", str(val)]) == 0
    return train, val


def test_train_save_reload_with_plain_peft_and_score(tmp_path, tiny_model_dir):
    train, val = _data(tmp_path)
    out = tmp_path / "run"
    args = [
        "train",
        "--train",
        str(train),
        "--val",
        str(val),
        "--output",
        str(out),
        "--base",
        str(tiny_model_dir),
        "--max_steps",
        "6",
        "--batch_tokens",
        "1024",
        "--eval_every",
        "3",
        "--log_every",
        "1",
        *TINY_RUN,
    ]
    assert cli.main(args) == 0
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "readout.safetensors",
        "prm_spec.json",
        "tokenizer.json",
        "config.yaml",
        "train_report.json",
        "log.jsonl",
    ):
        assert (out / name).exists(), name
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "lr" in r] == [1, 2, 3, 4, 5, 6]
    report = json.loads((out / "train_report.json").read_text())
    assert report["attention"] == "eager"  # auto on a CPU
    assert report["rows"]["rows"] < report["rows"]["records"] and report["computed_tokens"] < report["tokens"]
    assert any("auroc_first_error_all" in r for r in log)

    # plain peft, no prm code: the tokenizer knows the tag, the base is resized, the adapter loads
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base.resize_token_embeddings(len(t))
    assert isinstance(PeftModel.from_pretrained(base, out), PeftModel)

    scored = tmp_path / "scored.jsonl"
    assert cli.main(["score", "--model", str(out), "--input", str(val), "--output", str(scored)]) == 0
    recs = read_records(scored)
    assert all(len(r.meta["scores"]) == len(r.steps) and all(0 <= x <= 1 for x in r.meta["scores"]) for r in recs)


def test_one_pass_scores_equal_per_prefix_scores(tiny_model_dir):
    prm, tok = build(Spec(base=str(tiny_model_dir)), LoraSpec(r=4))
    with torch.no_grad():
        prm.head.bias.fill_(0.3)
        prm.feat.weight.normal_()
    scorer = PRMScorer(prm, tok)
    steps = ["Tom buys 4, so 3 + 4 = 7.", "He eats 2, so 7 - 2 = 5.", "Then 5 * 3 = 15.", "The answer is 15."]
    full = scorer.score("Tom has 3 apples.", steps)
    prefixes = [scorer.score("Tom has 3 apples.", steps[: i + 1])[-1] for i in range(len(steps))]
    assert full == pytest.approx(prefixes, abs=1e-4)
    batched = scorer.score_batch([("Tom has 3 apples.", steps), ("Mia?", steps[:2])])
    assert batched[0] == pytest.approx(full, abs=1e-5)


def test_pool_scoring_in_prefix_trees_equals_separate_rows(tiny_model_dir):
    """A best-of-N pool scored as prefix trees (traces of one problem share rows) gives the scores of separate rows,
    from fewer tokens; traces in any order, of several problems, some longer than others."""
    from prm.score.prm_scorer import shared_rows

    # the widest feature set: every kind of feature token lies in the trees
    prm, tok = build(Spec(base=str(tiny_model_dir), feature_set="step"), LoraSpec(r=4))
    with torch.no_grad():
        prm.head.weight.normal_(std=0.5)
        prm.feat.weight.normal_()
    first = ["Tom buys 4, so 3 + 4 = 7.", "He eats 2, so 7 - 2 = 5.", "The answer is 5."]
    other = ["Tom buys 4, so 3 + 4 = 8.", "He eats 2, so 8 - 2 = 6.", "Then 6 * 2 = 12.", "The answer is 12."]
    items = []
    for k in range(6):
        items += [("Tom has 3 apples.", first[: 1 + k % 3]), ("Mia has 9 pens.", other[: 2 + k % 3])]
    items += [("Tom has 3 apples.", other), ("Tom has 3 apples.", first)]
    shared = PRMScorer(prm, tok, batch_tokens=256).score_batch(items)
    assert prm.sparse_trees  # the tiny model runs SDPA: the trees attend only where their mask lets them
    prm.sparse_trees = False
    dense = PRMScorer(prm, tok, batch_tokens=256).score_batch(items)
    separate = PRMScorer(prm, tok, batch_tokens=256, share_prefixes=False).score_batch(items)
    for a, b, c in zip(shared, separate, dense, strict=True):
        assert a == pytest.approx(b, abs=1e-4) and a == pytest.approx(c, abs=1e-5)
    scorer = PRMScorer(prm, tok)
    encoded = [scorer.encode(p, st) for p, st in items]
    rows = shared_rows(encoded, [p for p, _ in items], 4096, 16)
    assert sorted(i for r in rows for i in r.items) == list(range(len(items))) and len(rows) == 2
    assert sum(r.width for r in rows) < sum(len(e.input_ids) for e in encoded) / 3


def test_log_until_keeps_the_lines_up_to_the_checkpoint_step(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "eval_auroc": 0.6}\n{"step": 3, "loss": 1.0}\n{"ste')
    log_until(log, 2)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2]
    log_until(tmp_path / "none.jsonl", 5)  # a run killed before its first log line: nothing to trim, nothing made
    assert not (tmp_path / "none.jsonl").exists()


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, tiny_model_dir):
    train, val = _data(tmp_path)
    common = [
        "--train",
        str(train),
        "--base",
        str(tiny_model_dir),
        "--max_steps",
        "16",
        "--batch_tokens",
        "512",
        "--eval_every",
        "0",
        "--log_every",
        "1",
        "--save_every",
        "3",
        *TINY_RUN,
    ]
    full = tmp_path / "full"
    assert cli.main(["train", "--output", str(full), *common]) == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "prm", "train", "--output", str(killed), *common]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "checkpoint" / "train_state.json"
    deadline = time.time() + 120
    while time.time() < deadline and not state.exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert json.loads(state.read_text())["step"] < 16
    subprocess.run(
        [*cmd, "--resume", "true"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
        env=os.environ,
    )
    last = lambda d: [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines() if '"lr"' in x][-1]  # noqa: E731
    a, b = last(full), last(killed)
    assert a["step"] == b["step"] == 16
    # The resumed log holds every step once: the killed run's lines after its checkpoint are not repeated.
    steps = [json.loads(x)["step"] for x in (killed / "log.jsonl").read_text().splitlines() if '"lr"' in x]
    assert steps == list(range(1, 17))
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6)
    # Resuming under another schedule is refused: the checkpoint would continue on a schedule no run followed.
    other = [x if x != "16" else "20" for x in common]
    assert cli.main(["train", "--output", str(full), *other, "--resume", "true"]) == 2


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path, tiny_model_dir):
    """`accelerate launch --num_processes 2` on the CPU (gloo): both processes run the same number of steps, the
    main one writes a loadable checkpoint, and the token budget counts both processes' tokens."""
    import shutil

    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    assert launcher, "accelerate's launcher is installed with the project"
    train, val = _data(tmp_path)
    out = tmp_path / "ddp"
    cmd = [
        launcher,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "prm",
        "train",
        "--train",
        str(train),
        "--val",
        str(val),
        "--output",
        str(out),
        "--base",
        str(tiny_model_dir),
        "--max_tokens",
        "6000",
        "--epochs",
        "10",
        "--batch_tokens",
        "512",
        "--eval_every",
        "0",
        "--log_every",
        "1",
        "--save_every",
        "0",
        *TINY_RUN,
    ]
    # --cpu alone starts one process (accelerate runs several CPU processes only under MPI); torchrun's launcher
    # (--multi_gpu) with ACCELERATE_USE_CPU starts two that meet over gloo.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("prm train:") == 1  # the closing line comes from the main process only
    report = json.loads((out / "train_report.json").read_text())
    assert report["processes"] == 2 and report["tokens"] >= 6000 and report["steps"] >= 2
    logged = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if '"lr"' in x]
    assert [r["step"] for r in logged] == list(range(1, report["steps"] + 1))  # one log, from the main process
    from prm.score.prm_scorer import PRMScorer

    scores = PRMScorer.from_pretrained(out).score("Tom has 3 apples.", ["3 + 4 = 7", "The answer is 7."])
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_frozen_bf16_linears_give_the_same_bf16_scores(tiny_prm_dir):
    """Holding frozen weights in bf16 only skips autocast's per-call casts: scores under bf16 autocast are unchanged,
    and embeddings (tied to the output layer) stay fp32."""
    from prm.models import frozen_linears_to_bf16

    items = [("Tom has 3 apples. He buys 4 more.", ["3 + 4 = 7", "The answer is 7."]), ("Mia?", ["12 - 5 = 7"])]
    plain = PRMScorer(*load(tiny_prm_dir), bf16=True).score_batch(items)
    prm, tok = load(tiny_prm_dir)
    assert frozen_linears_to_bf16(prm) > 0
    assert prm.backbone.get_input_embeddings().weight.dtype == torch.float32
    flat = lambda scores: [x for s in scores for x in s]  # noqa: E731
    converted = PRMScorer(prm, tok, bf16=True).score_batch(items)
    assert flat(converted) == pytest.approx(flat(plain), abs=1e-6)
    loaded = PRMScorer.from_pretrained(tiny_prm_dir, bf16=True).score_batch(items)
    assert flat(loaded) == pytest.approx(flat(plain), abs=1e-6)


def test_unlabeled_tail_steps_are_left_out_without_changing_the_logits(tiny_model_dir):
    """Steps after the last labeled one carry no loss; attention is causal, so cutting them changes no kept logit."""
    from prm.model.encode import first_steps
    from prm.records import StepRecord
    from prm.train.config import TrainConfig
    from prm.train.loop import make_items

    prm, tok = build(Spec(base=str(tiny_model_dir), features=True), LoraSpec(r=4))
    prm.eval()
    steps = ["3 + 4 = 7", "7 * 2 = 15", "15 - 1 = 14", "The answer is 14."]
    full = encode(tok, prm.tag_id, "Tom has 3 apples.", steps, 256)
    cut = first_steps(full, 2)
    assert cut.kept == 2 and cut.input_ids[cut.tags[-1]] == prm.tag_id and len(cut.input_ids) == cut.tags[-1] + 1
    with torch.no_grad():
        a, b = prm(collate([full], tok.pad_token_id)), prm(collate([cut], tok.pad_token_id))
    assert torch.allclose(a[:2], b, atol=1e-5)
    rec = StepRecord(id="r", problem="Tom has 3 apples.", steps=steps, labels=[True, False, None, None])
    items, counts = make_items([rec], tok, prm.tag_id, TrainConfig(train="t", output="o", base=str(tiny_model_dir)))
    assert items[0].labels == [1.0, 0.0] and items[0].enc.kept == 2
    assert counts["unlabeled_tail_steps_left_out"] == 2 and counts["truncated_steps"] == 0
    soft = TrainConfig(train="t", output="o", loss="soft")
    assert make_items([rec], tok, prm.tag_id, soft)[1]["no_signal"] == 1  # no values: nothing for a soft loss
    valued = StepRecord(id="v", problem="Tom has 3 apples.", steps=steps[:3], values=[0.75, 0.0, None])
    assert make_items([valued], tok, prm.tag_id, soft)[0][0].values == [0.75, 0.0]  # the Q-value: the share
    best_of_k = TrainConfig(train="t", output="o", loss="soft", value_target="any")
    assert make_items([valued], tok, prm.tag_id, best_of_k)[0][0].values == [1.0, 0.0]  # 1 where any rollout reached it


def test_bf16_training_on_frozen_bf16_weights_runs_and_learns_something(tmp_path, tiny_model_dir):
    """The default precision: frozen linears held in bf16, every pass under accelerate's bf16 autocast."""
    train, val = _data(tmp_path)
    out = tmp_path / "bf16"
    args = ["train", "--train", str(train), "--val", str(val), "--output", str(out), "--base", str(tiny_model_dir)]
    args += ["--max_steps", "3", "--batch_tokens", "1024", "--eval_every", "0", "--progress", "false", "--lora_r", "4"]
    assert cli.main(args + ["--bf16", "true"]) == 0
    report = json.loads((out / "train_report.json").read_text())
    assert report["steps"] == 3 and report["tokens"] > 0 and report["final"]["loss"] > 0
    assert 0.0 <= report["final"]["auroc_steps"] <= 1.0
    from safetensors.torch import load_file

    adapter = load_file(out / "adapter_model.safetensors")
    assert adapter and all(v.dtype == torch.float32 for v in adapter.values())  # trained weights stay fp32


def test_forward_with_every_parameter_in_bf16_and_no_autocast(tiny_model_dir):
    """FSDP's mixed precision casts every parameter, the readout too, to bf16 and runs without autocast (it failed
    on a GPU with 'mat1 and mat2 must have the same dtype' before the features were cast to the readout's dtype)."""
    prm, tok = build(Spec(base=str(tiny_model_dir), features=True), LoraSpec(r=4))
    prm.to(torch.bfloat16)
    enc = encode(tok, prm.tag_id, "Tom has 3 apples.", ["3 + 4 = 7", "The answer is 7."], 256)
    out = prm(collate([enc], tok.pad_token_id))
    assert out.shape == (2,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert prm.feat.weight.grad is not None


def test_prefix_tree_shares_common_prefixes_only():
    from prm.fit.rows import prefix_tree

    tokens, parent, paths = prefix_tree([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3, 4], [2, 2]])
    assert tokens == [1, 2, 3, 4, 5, 2, 2]
    assert parent == [-1, 0, 1, 2, 1, -1, 5]
    assert paths == [[0, 1, 2, 3], [0, 1, 4], [0, 1, 2, 3], [5, 6]]  # a repeated sequence adds nothing
    for path, seq in zip(paths, [[1, 2, 3, 4], [1, 2, 5], [1, 2, 3, 4], [2, 2]], strict=True):
        assert [tokens[i] for i in path] == seq and all(parent[b] == a for a, b in zip(path, path[1:], strict=False))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_rows_give_the_same_logits_and_gradients_as_separate_rows(tiny_model_dir, attn):
    """Traces of one problem in one row (a prefix tree under a tree mask) see exactly their own context."""
    from prm.model.prm import collate_shared

    prm, tok = build(Spec(base=str(tiny_model_dir), features=True), LoraSpec(r=4, dropout=0.0))
    prm.backbone.set_attn_implementation(attn)
    with torch.no_grad():  # LoRA B starts at zero; give the adapter an effect to compare gradients through
        for n, p in prm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    prob = "Tom has 3 apples. He buys 4 more, then doubles them."
    encs = [
        encode(tok, prm.tag_id, prob, ["3 + 4 = 7", "7 * 2 = 14", "The answer is 14."], 256),
        encode(tok, prm.tag_id, prob, ["3 + 4 = 7", "7 * 2 = 15", "The answer is 15."], 256),
        encode(tok, prm.tag_id, prob, ["3 + 4 = 8", "8 * 2 = 16"], 256),
        encode(tok, prm.tag_id, "Mia has 12 marbles and loses 5.", ["12 - 5 = 7", "The answer is 7."], 256),
    ]
    separate = collate(encs, tok.pad_token_id)
    shared = collate_shared([encs[:3], encs[3:]], tok.pad_token_id)
    assert shared["input_ids"].shape[0] == 2
    problem_only = len(encode(tok, prm.tag_id, prob, [], 256).input_ids)
    width = len(prefix_tree([e.input_ids for e in encs[:3]])[0])
    assert shared["input_ids"].shape[1] == width  # the widest row is the three traces of one problem
    assert width <= sum(len(e.input_ids) for e in encs[:3]) - 2 * problem_only  # the problem is stored once
    assert torch.equal(shared["feat_kind"], separate["feat_kind"]) and shared["feat_b"].numel() > 0

    def run(batch):
        prm.zero_grad()
        out = prm(batch)
        (out * torch.arange(1, out.numel() + 1)).sum().backward()
        return out.detach(), {n: p.grad.clone() for n, p in prm.named_parameters() if p.grad is not None}

    a, ga = run(separate)
    b, gb = run(shared)
    assert a.shape == (10,) and torch.allclose(a, b, atol=1e-5)
    bad = {n: (ga[n] - gb[n]).abs().max().item() for n in ga if not torch.allclose(ga[n], gb[n], rtol=1e-4, atol=1e-5)}
    assert ga.keys() == gb.keys() and not bad, bad


def test_packs_group_one_problem_within_the_caps(tiny_model_dir):
    from prm.fit.rows import epoch_batches, packs
    from prm.records import StepRecord
    from prm.train.config import TrainConfig
    from prm.train.loop import make_items

    _, tok = build(Spec(base=str(tiny_model_dir)), LoraSpec(r=4))
    recs = [
        StepRecord(
            id=f"{p}/{k}", problem=f"Problem {p}: Tom has {p} apples.", steps=[f"{p} + {k} = {p + k}"], labels=[True]
        )
        for p in range(3)
        for k in range(5)
    ]
    cfg = TrainConfig(train="t", output="o", base=str(tiny_model_dir), batch_size=4)
    items, _ = make_items(recs, tok, 0, cfg)
    rows = packs(items, cfg)
    assert sorted(i for r in rows for i in r.items) == list(range(15))
    assert all(len({items[i].problem for i in r.items}) == 1 and len(r.items) <= 4 for r in rows)
    assert sorted(len(r.items) for r in rows) == [1, 1, 1, 4, 4, 4]
    for batch in epoch_batches(items, cfg, 0, rows=rows):  # batch_size caps records, not rows
        assert sum(len(r.items) for r in batch) <= 4
    # two-step records: one is 55 tokens, the tree of 2 is 74, of 3 is 92, of 4 is 110 (tiny tokenizer)
    longer = [
        StepRecord(id=r.id, problem=r.problem, steps=[*r.steps, f"Then {k} * 2 = {2 * k} apples."], labels=[True, True])
        for k, r in enumerate(recs)
    ]
    narrow = TrainConfig(train="t", output="o", base=str(tiny_model_dir), batch_tokens=100)
    long_items, _ = make_items(longer, tok, 0, narrow)
    rows = packs(long_items, narrow)
    widths = [len(prefix_tree([long_items[i].input_ids for i in r.items])[0]) for r in rows]
    assert [r.width for r in rows] == widths  # each row carries its tree's size
    assert sorted(len(r.items) for r in rows) == [2, 2, 2, 3, 3, 3] and max(widths) <= 100  # the width cap splits
    alone = TrainConfig(train="t", output="o", base=str(tiny_model_dir), share_prefixes=False)
    assert [r.items for r in packs(items, alone)] == [[i] for i in range(15)]


def test_unshared_rows_compute_every_record_token(tmp_path, tiny_model_dir):
    train, _ = _data(tmp_path)
    out = tmp_path / "plain"
    args = ["train", "--train", str(train), "--output", str(out), "--base", str(tiny_model_dir), "--max_steps", "3"]
    args += ["--batch_tokens", "1024", "--eval_every", "0", "--share_prefixes", "false", *TINY_RUN]
    assert cli.main(args) == 0
    report = json.loads((out / "train_report.json").read_text())
    assert report["rows"]["rows"] == report["rows"]["records"] and report["computed_tokens"] == report["tokens"] > 0


def test_read_evals_keeps_evaluations_and_the_final_one_once(tmp_path):
    """Both training commands draw their curves from this: lines without a held-out figure are left out, and the
    end-of-run evaluation that repeats the last periodic one (same tokens) counts once; a later one is kept."""
    lines = [
        {"step": 10, "tokens": 100, "loss": 0.9},
        {"step": 20, "tokens": 200, "loss": 0.8, "val_loss": 0.7},
        {"step": 20, "tokens": 200, "val_loss": 0.7},
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "\n")
    assert [r["tokens"] for r in read_evals(tmp_path, ["val_loss"])] == [200]
    lines[2]["tokens"] = 250
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert [r["tokens"] for r in read_evals(tmp_path, ["val_loss"])] == [200, 250]
    assert read_evals(tmp_path, ["eval_accuracy"]) == []


@pytest.mark.parametrize("features_from", ["adapted", "base"])
def test_scoring_merges_the_adapter_with_the_same_scores(tmp_path, tiny_model_dir, features_from):
    """`PRMScorer.from_pretrained` folds LoRA (and the tag's trained embedding) into the weights when the features
    read the adapted pass: the same scores from plain linear layers. With `features_from: base` it keeps the adapter,
    which the features switch off."""
    from prm.model.io import LoraSpec, build, save
    from prm.model.prm import Spec

    prm, tok = build(Spec(base=str(tiny_model_dir), features=True, features_from=features_from), LoraSpec(r=4))
    with torch.no_grad():  # a trained adapter: B is zero at initialisation, which would make merging trivial
        for name, p in prm.backbone.named_parameters():
            if "lora_B" in name or "trainable_tokens" in name:
                p.normal_(std=0.05)
    save(prm, tok, tmp_path / "prm")
    items = [("Tom has 3 apples. He buys 4 more.", ["3 + 4 = 7", "The answer is 7."]), ("Mia?", ["12 - 5 = 7"])]
    kept = PRMScorer.from_pretrained(tmp_path / "prm", merge=False)
    merged = PRMScorer.from_pretrained(tmp_path / "prm")
    has_lora = lambda s: any("lora" in n for n, _ in s.prm.named_parameters())  # noqa: E731
    assert has_lora(kept) and has_lora(merged) == (features_from == "base")
    flat = lambda scores: [x for s in scores for x in s]  # noqa: E731
    assert flat(merged.score_batch(items)) == pytest.approx(flat(kept.score_batch(items)), abs=1e-4)


@pytest.mark.parametrize("size", [1, 4, 64])
def test_sparse_tree_attention_equals_sdpa_under_the_tree_mask(size):
    """The chunked kernel gives plain SDPA's output on tree rows: several rows of different widths (padding), grouped
    key/value heads, chunks that do not divide the width."""
    from types import SimpleNamespace

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from prm.fit.rows import tree_rows
    from prm.model.tree_attention import _attention, tree_plan

    torch.manual_seed(0)
    groups = [[[1, 2, 3, 4, 5], [1, 2, 3, 6], [1, 2, 7, 8, 9, 10]], [[11, 12], [11, 13, 14]], [[20, 21, 22]]]
    _, mask, _, _ = tree_rows(groups, 0)
    rows, width = mask.shape[0], mask.shape[-1]
    q, k, v = torch.randn(rows, 6, width, 8), torch.randn(rows, 2, width, 8), torch.randn(rows, 2, width, 8)
    module = SimpleNamespace(num_key_value_groups=3, is_causal=True)
    want, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    plan = tree_plan(mask, size)
    assert plan.keys.shape[0] == rows * -(-width // size)
    got, _ = _attention(module, q, k, v, mask, scaling=0.3, tree_plan=plan)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6)
    if size == 4:  # a chunk of the last trace's tokens needs the shared prompt and itself, not the other traces
        assert plan.keys.shape[1] < width
    with pytest.raises(ValueError, match="softcap"):  # what the chunks do not apply goes to SDPA, which refuses it
        _attention(module, q, k, v, mask, scaling=0.3, tree_plan=plan, softcap=30.0)

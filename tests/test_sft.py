"""Policy fine-tuning (`prm sft`): the prompt/target encoding, the loss against the model's own, shared rows, the
policy folder wherever a policy is named, and exact resume after a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from prm import cli
from prm.generate.prompt import DEFAULT_SHOTS, DEFAULT_SYSTEM, Shot, build_prompt, policy_prompt
from prm.models import load_model, load_tokenizer
from prm.records import StepRecord, read_records
from prm.sft.command import Imitation
from prm.sft.config import SFTConfig
from prm.sft.data import encode_example, end_of_turn, kept, make_examples

# Every tiny run: fp32 (exact comparisons), quiet, a small adapter.
TINY_RUN = ["--bf16", "false", "--progress", "false", "--lora_r", "4", "--lora_alpha", "8"]


@pytest.fixture
def tok(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def test_end_of_turn_from_the_chat_template(tok):
    assert end_of_turn(tok) == "<|im_end|>"


def test_end_of_turn_without_a_template_is_eos(tok):
    tok.chat_template = None
    assert end_of_turn(tok) == tok.eos_token


def test_example_is_the_generate_prompt_then_the_solution_and_end_of_turn(tok):
    steps = ["Tom buys 5 more, so he has 12 + 5 = 17 apples.", "The answer is 17."]
    ex = encode_example(tok, "Tom has 12 apples.", steps, DEFAULT_SYSTEM, ())
    prompt = build_prompt(tok, "Tom has 12 apples.", shots=(), system=DEFAULT_SYSTEM)
    assert ex.input_ids[: ex.start] == tok(prompt, add_special_tokens=False).input_ids
    assert tok.decode(ex.input_ids[ex.start :]) == "\n".join(steps) + "<|im_end|>"
    assert ex.input_ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")  # one token: the policy learns to stop
    shot = Shot("Ava has 2.", "2 + 1 = 3.\nThe answer is 3.")
    assert encode_example(tok, "Tom has 12 apples.", steps, DEFAULT_SYSTEM, (shot,)).start > ex.start


def test_which_records_are_kept():
    gold = StepRecord("g", "p", ["2 + 3 = 5.", "The answer is 5."], labels=[True, True], answer="5")
    slip = StepRecord("s", "p", ["2 + 3 = 6.", "The answer is 6."], labels=[False, None], answer="5")
    lucky = StepRecord("l", "p", ["2 + 4 = 6.", "The answer is 5."], labels=[False, None], answer="5")
    trace = StepRecord("t", "p", ["The answer is 5."], answer="5", meta={"correct": False})  # meta wins
    unknown = StepRecord("u", "p", ["The answer is 5."])  # no gold answer: cannot be judged right
    assert [kept(r, "answer") for r in (gold, slip, lucky, trace, unknown)] == [True, False, False, False, False]
    assert [kept(r, "steps") for r in (gold, slip, lucky, trace, unknown)] == [True, False, False, False, False]
    assert all(kept(r, "all") for r in (gold, slip, lucky, trace, unknown))
    with pytest.raises(ValueError, match="keep"):
        kept(gold, "some")


def test_make_examples_counts_what_it_leaves_out(tok):
    recs = [
        StepRecord("a", "Tom has 3.", ["3 + 4 = 7.", "The answer is 7."], answer="7"),
        StepRecord("b", "Tom has 3.", ["3 + 4 = 8.", "The answer is 8."], answer="7"),
        StepRecord("c", "Tom has 3." * 200, ["3 + 4 = 7.", "The answer is 7."], answer="7"),
    ]
    examples, counts = make_examples(recs, tok, SFTConfig(train="t", output="o", max_length=300, batch_tokens=512))
    assert len(examples) == 1 and counts == {"records": 3, "kept": 1, "not_kept": 1, "too_long": 1}


def test_loss_equals_the_models_own_loss_on_the_target(tiny_model_dir, tok):
    """Only target positions meet the LM head: the result must equal transformers' loss with the prompt masked."""
    lm = load_model(str(tiny_model_dir))
    examples = [
        encode_example(tok, "Tom has 12 apples.", ["12 + 5 = 17.", "The answer is 17."], DEFAULT_SYSTEM, ()),
        encode_example(tok, "Mia has 4 pens.", ["4 * 2 = 8.", "The answer is 8."], DEFAULT_SYSTEM, ()),
    ]
    ours = Imitation(lm)([[e] for e in examples], tok.pad_token_id)
    total, count = 0.0, 0
    for e in examples:
        ids = torch.tensor([e.input_ids])
        labels = ids.clone()
        labels[0, : e.start] = -100
        n = len(e.input_ids) - e.start
        total += lm(input_ids=ids, labels=labels).loss.item() * n
        count += n
    assert ours.item() == pytest.approx(total / count, rel=1e-5)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_rows_give_the_same_loss_and_gradients(tiny_model_dir, tok, attn):
    """k samples of one problem in one prefix-tree row compute their prompt once, with the same loss and gradients
    as one row each."""
    lm = load_model(str(tiny_model_dir))
    lm.set_attn_implementation(attn)
    problem = "Tom has 12 apples. He buys 5 more."
    examples = [
        encode_example(tok, problem, steps, DEFAULT_SYSTEM, ())
        for steps in (["12 + 5 = 17.", "The answer is 17."], ["12 + 5 = 18.", "The answer is 18."], ["17."])
    ]
    model = Imitation(lm)
    grads = []
    for rows in ([[e] for e in examples], [examples]):
        model.zero_grad()
        loss = model(rows, tok.pad_token_id)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in lm.parameters()]))
    (a, ga), (b, gb) = grads
    assert b == pytest.approx(a, rel=1e-5)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(ga, gb, strict=True))


def _gold(tmp_path, n=24):
    path = tmp_path / "gold.jsonl"
    assert cli.main(["synth", "--n", str(n), "--max_steps", "2", "--output", str(path)]) == 0
    return path


def test_sft_writes_a_policy_that_loads_wherever_a_policy_is_named(tmp_path, tiny_model_dir, tiny_problems):
    gold = _gold(tmp_path)
    out = tmp_path / "policy"
    args = ["sft", "--train", str(gold), "--base", str(tiny_model_dir), "--output", str(out), "--max_steps", "3"]
    assert cli.main([*args, "--batch_tokens", "1024", "--eval_problems", str(tiny_problems), *TINY_RUN]) == 0
    meta = json.loads((out / "policy.json").read_text())
    assert meta["base"] == str(tiny_model_dir) and meta["kind"] == "lora" and meta["shots"] == []
    assert meta["train_report"]["steps"] == 3
    assert (out / "adapter_model.safetensors").exists() and (out / "config.yaml").exists()
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert "eval_accuracy" in log[-1] and 0.0 <= log[-1]["eval_accuracy"] <= 1.0
    assert (out / "curve.png").stat().st_size > 0  # the learning curve, drawn when there were evaluations
    # The policy is its base with the adapter merged: not the base's weights any more.
    policy, base = load_model(str(out)), load_model(str(tiny_model_dir))
    ids = torch.tensor([[5, 6, 7, 8]])
    assert not torch.allclose(policy(ids).logits, base(ids).logits)
    from peft import PeftModel

    plain = PeftModel.from_pretrained(load_model(str(tiny_model_dir)), out).eval()  # plain peft reads it too
    assert torch.allclose(policy(ids).logits, plain(ids).logits, atol=1e-5)
    # Prompted as it was trained (zero-shot) unless told otherwise; other models keep the two built-in examples.
    assert policy_prompt(str(out)) == (DEFAULT_SYSTEM, ())
    assert policy_prompt(str(tiny_model_dir)) == (DEFAULT_SYSTEM, DEFAULT_SHOTS)
    assert policy_prompt(str(out), system="", shots=DEFAULT_SHOTS[:1]) == ("", DEFAULT_SHOTS[:1])
    # As a policy for prm generate, and as a backbone of prm train and of another prm sft.
    traces = tmp_path / "traces.jsonl"
    gen = ["generate", "--model", str(out), "--input", str(tiny_problems), "--output", str(traces), "--n", "2"]
    assert cli.main([*gen, "--sampling.max_new_tokens", "8", "--progress", "false"]) == 0
    assert len(read_records(traces)) == 6
    again = tmp_path / "again"
    assert (
        cli.main(
            ["sft", "--train", str(gold), "--base", str(out), "--output", str(again), "--max_steps", "1", *TINY_RUN]
        )
        == 0
    )
    assert json.loads((again / "policy.json").read_text())["base"] == str(out)
    load_model(str(again))  # an adapter on an adapter: merged in turn
    pairs = tmp_path / "pairs.jsonl"
    assert cli.main(["synth", "--n", "8", "--pairs", "true", "--max_steps", "2", "--output", str(pairs)]) == 0
    prm_dir = tmp_path / "prm"
    train = ["train", "--train", str(pairs), "--base", str(out), "--output", str(prm_dir), "--max_steps", "2"]
    assert cli.main([*train, "--eval_every", "0", *TINY_RUN]) == 0
    assert json.loads((prm_dir / "prm_spec.json").read_text())["base"] == str(out)


def test_full_fine_tuning_saves_a_whole_model(tmp_path, tiny_model_dir):
    out = tmp_path / "full"
    args = ["sft", "--train", str(_gold(tmp_path)), "--base", str(tiny_model_dir), "--output", str(out)]
    assert cli.main([*args, "--lora", "false", "--lr", "1e-3", "--max_steps", "2", *TINY_RUN]) == 0
    assert (out / "model.safetensors").exists() and json.loads((out / "policy.json").read_text())["kind"] == "full"
    policy, base = load_model(str(out)), load_model(str(tiny_model_dir))
    ids = torch.tensor([[5, 6, 7]])
    assert not torch.allclose(policy(ids).logits, base(ids).logits)


def test_nothing_to_train_on_is_one_error_line(tmp_path, tiny_model_dir, capsys):
    recs = tmp_path / "wrong.jsonl"
    recs.write_text(json.dumps({"id": "a", "problem": "p", "steps": ["The answer is 3."], "answer": "4"}) + "\n")
    args = ["sft", "--train", str(recs), "--base", str(tiny_model_dir), "--output", str(tmp_path / "o"), *TINY_RUN]
    assert cli.main(args) == 2
    assert "no record to train on with keep=answer" in capsys.readouterr().err


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, tiny_model_dir):
    common = ["--train", str(_gold(tmp_path, 60)), "--base", str(tiny_model_dir), "--max_steps", "14"]
    common += [
        "--batch_tokens",
        "512",
        "--max_length",
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
    assert cli.main(["sft", "--output", str(full), *common]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "prm", "sft", "--output", str(killed), *common]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "checkpoint" / "train_state.json"
    deadline = time.time() + 120
    while time.time() < deadline and not state.exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (killed / "policy.json").exists()  # the folder of a killed run never looks complete
    subprocess.run([*cmd, "--resume", "true"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = lambda d: [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines() if '"lr"' in x][-1]  # noqa: E731
    a, b = last(full), last(killed)
    assert a["step"] == b["step"] == 14
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6)
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.allclose(load_model(str(full))(ids).logits, load_model(str(killed))(ids).logits, atol=1e-5)

"""prm.rewards: the stated rules (pure), the TRL- and verl-shaped reward functions on the tiny PRM, and, where TRL is
installed (the bench environment), one GRPO step of the real GRPOTrainer with the PRM as its reward."""

from __future__ import annotations

import pytest

from prm.records import split_steps
from prm.rewards import Rewarder, for_trl, for_verl, response_text, split_query, trace_reward, user_text

PROBLEM = "Tom has 3 apples and buys 4 more. How many apples does he have?"
STEPS = ["Tom has 3 + 4 = 7 apples.", "The answer is 7."]


def test_split_steps_rules():
    assert split_steps(" a \n\n b\n") == ["a", "b"]
    assert split_steps("a\nb\n \nc", "blank") == ["a\nb", "c"]
    with pytest.raises(ValueError, match="unknown step split"):
        split_steps("a", "words")


@pytest.mark.parametrize(
    "prompt",
    [
        f"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{PROBLEM}<|im_end|>\n<|im_start|>assistant\n",
        f"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{PROBLEM}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        f"<bos><start_of_turn>user\n{PROBLEM}<end_of_turn>\n<start_of_turn>model\n",
    ],
)
def test_chat_templates_give_the_problem_and_response(prompt):
    assert user_text(prompt) == PROBLEM
    assert split_query(prompt + "\n".join(STEPS) + "<|im_end|>") == (PROBLEM, "\n".join(STEPS))


def test_user_text_of_conversations_and_plain_prompts():
    convo = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": PROBLEM},
    ]
    assert user_text(convo) == PROBLEM and user_text([]) == "" and user_text(PROBLEM + "\n") == PROBLEM
    assert response_text([{"role": "assistant", "content": STEPS[0]}]) == STEPS[0]
    assert response_text("7</s>") == "7"


def test_trace_reward_aggregates():
    assert trace_reward([0.8, 0.4, 0.9]) == 0.4
    assert trace_reward([0.8, 0.5], "prod") == pytest.approx(0.4)
    assert trace_reward([0.8, 0.5], "last") == 0.5 and trace_reward([0.8, 0.4], "mean") == pytest.approx(0.6)
    assert trace_reward([], "mean") == 0.0
    with pytest.raises(ValueError, match="unknown aggregate"):
        trace_reward([0.5], "max")


class FakeScorer:
    """Scores step i of a trace as 1 / (i + 2), and records what it was asked."""

    def __init__(self):
        self.asked = []

    def score_batch(self, items):
        self.asked.extend(items)
        return [[1 / (i + 2) for i in range(len(steps))] for _, steps in items]


def test_rewarder_skips_empty_responses():
    fake = FakeScorer()
    r = Rewarder(fake, how="last")
    assert r.rewards(["p", "q"], ["a\nb\nc", "  \n"]) == [0.25, 0.0]
    assert fake.asked == [("p", ["a", "b", "c"])]
    with pytest.raises(ValueError, match="unknown aggregate"):
        Rewarder(fake, how="best")


def test_for_trl_and_for_verl_match_the_scorer(tiny_prm_dir):
    from prm.score.prm_scorer import PRMScorer

    want = PRMScorer.from_pretrained(tiny_prm_dir).score(PROBLEM, STEPS)
    reward = for_trl(tiny_prm_dir)
    assert reward.__name__ == "prm_reward"  # TRL logs each reward function under its name
    plain = reward(prompts=[PROBLEM], completions=["\n".join(STEPS)], completion_ids=[[1]], answer=["7"])
    convo = reward(
        prompts=[[{"role": "user", "content": PROBLEM}]],
        completions=[[{"role": "assistant", "content": "\n".join(STEPS)}]],
    )
    assert plain == pytest.approx([min(want)], abs=1e-5) and convo == plain
    compute_score = for_verl(tiny_prm_dir, how="last")
    one = compute_score("synth", "\n".join(STEPS) + "<|im_end|>", "7", {"question": PROBLEM})
    assert one == pytest.approx(want[-1], abs=1e-5)
    batch = compute_score(["synth"] * 2, ["\n".join(STEPS), ""], ["7", "7"], [{"question": PROBLEM}] * 2)
    assert batch == pytest.approx([want[-1], 0.0], abs=1e-5)


def test_for_trl_in_real_grpo_trainer(tiny_prm_dir, tiny_model_dir, tmp_path):
    """TRL's GRPOTrainer calls the reward with its own arguments for one optimizer step (only where trl is installed:
    it is never a dependency of this project; `make bench-trl` builds the environment that has it)."""
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    calls = []
    reward = for_trl(tiny_prm_dir)

    def prm_reward(prompts, completions, **kwargs):
        out = reward(prompts, completions, **kwargs)
        calls.append(out)
        return out

    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
    )
    trainer = trl.GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[prm_reward],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": PROBLEM}] * 4),
    )
    trainer.train()
    assert calls and all(0.0 <= x <= 1.0 for batch in calls for x in batch)

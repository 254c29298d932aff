"""Best-of-N: selectors and the draw protocol (pure), the reports (HTML parsed, rendered where Chromium is), and
`prm bon` on a scored file written here."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from prm import cli
from prm.bon.report import html_report, markdown_table
from prm.bon.select import (
    Candidate,
    accuracy_curve,
    aggregate,
    answer_key,
    calc_vote,
    calc_weighted_vote,
    judge_vote,
    majority,
    oracle,
    powers_of_two,
    random_pick,
    select_by_score,
    standard_selectors,
    weighted_vote,
)
from prm.records import StepRecord, read_records, write_records


def C(answer, correct, *scores, **extra):  # noqa: N802 - a short constructor for readable pools
    return Candidate(answer, correct, tuple(scores), 10, {k: tuple(v) for k, v in extra.items()})


def test_aggregates():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "min") == 0.5 and aggregate(s, "last") == 0.8
    assert aggregate(s, "mean") == pytest.approx(2.2 / 3)
    assert aggregate(s, "prod") == pytest.approx(math.log(0.9 * 0.5 * 0.8))
    assert aggregate([-1.0, -2.0], "prod") == -3.0  # log-scores add
    with pytest.raises(ValueError, match="unknown aggregate"):
        aggregate(s, "max")
    with pytest.raises(ValueError):
        aggregate([], "min")


def test_answer_key_groups_equal_numbers():
    assert answer_key("7") == answer_key("7.0") == answer_key("14/2") == answer_key("$7")
    assert answer_key("3/4") == "3/4" and answer_key("") is None and answer_key(None) is None


def test_selectors_pick_and_share_ties():
    pool = [C("7", True, 0.9, 0.8), C("6", False, 0.95, 0.2), C("6", False, 0.3, 0.9)]
    assert select_by_score(pool, "min") == 1.0  # min: 0.8 beats 0.2 and 0.3
    assert select_by_score(pool, "last") == 0.0  # last: 0.9 (the wrong third) wins
    assert majority(pool) == 0.0  # "6" twice
    assert weighted_vote(pool, "min") == 1.0  # 0.8 for "7" against 0.2 + 0.3 for "6"
    assert random_pick(pool) == pytest.approx(1 / 3) and oracle(pool) == 1.0
    tie = [C("7", True, 0.5), C("6", False, 0.5)]
    assert select_by_score(tie, "min") == 0.5 and majority(tie) == 0.5  # a tie is a coin flip, never a win
    assert majority([C(None, False, 0.9), C(None, False, 0.1)]) == 0.0  # no answers, no vote


def test_calculator_and_step_judge_votes_filter_before_voting():
    def c(answer, correct, calc_ok=True, steps_right=None):
        return Candidate(answer, correct, (0.5,), calc_ok=calc_ok, steps_right=steps_right)

    # "6" wins the plain vote 3 to 2; its samples all hold a wrong equation, or a wrong step by the labels
    pool = [c("6", False, False, False), c("6", False, False, False), c("6", False, True, False)]
    pool += [c("7", True, True, True), c("7", True, True, True)]
    assert majority(pool) == 0.0
    assert calc_vote(pool) == 1.0  # among the 3 that check: "7" twice, "6" once
    assert judge_vote(pool) == 1.0
    # nothing passes the filter: the vote falls back to every candidate
    assert calc_vote([c("6", False, False), c("6", False, False), c("7", True, False)]) == 0.0
    assert judge_vote([c("6", False, steps_right=False), c("7", True, steps_right=False)]) == 0.5
    assert "judge-vote" not in standard_selectors() and "judge-vote" in standard_selectors(judge=True)
    assert "calc" in standard_selectors()


def test_calc_then_prm_vote_needs_both():
    def c(answer, correct, score, calc_ok=True):
        return Candidate(answer, correct, (score,), calc_ok=calc_ok)

    # "6": two confident samples with a wrong equation and one that checks but the PRM doubts; "7": two that check
    pool = [c("6", False, 0.9, False), c("6", False, 0.9, False), c("6", False, 0.1)]
    pool += [c("7", True, 0.4), c("7", True, 0.4)]
    assert weighted_vote(pool) == 0.0  # 1.9 for "6" against 0.8
    assert calc_weighted_vote(pool) == 1.0  # among those that check: 0.8 for "7" against 0.1
    # a three-way case where the calculator's plain vote is wrong and the PRM's weights fix it
    mixed = [c("6", False, 0.1), c("6", False, 0.1), c("7", True, 0.9), c("8", False, 0.9, False)]
    assert calc_vote(mixed) == 0.0 and calc_weighted_vote(mixed) == 1.0
    assert standard_selectors()["prm-calc-vote"] is calc_weighted_vote


def test_extra_scorers_become_selectors():
    pool = [C("7", True, 0.1, orm=[0.9]), C("6", False, 0.8, orm=[0.2])]
    sel = standard_selectors(extra=["orm"])
    assert {"prm-min", "prm-prod", "prm-last", "prm-mean", "prm-vote", "orm-min", "orm-last"} <= set(sel)
    assert sel["orm-last"](pool) == 1.0 and sel["prm-min"](pool) == 0.0


def test_powers_of_two():
    assert powers_of_two(1) == [1] and powers_of_two(16) == [1, 2, 4, 8, 16] and powers_of_two(6) == [1, 2, 4, 6]


def test_accuracy_curve_protocol():
    # Problem A: one correct candidate of four, and the PRM ranks it first; problem B: none correct.
    a = [C("1", True, 0.9), C("2", False, 0.1), C("3", False, 0.2), C("2", False, 0.3)]
    b = [C("5", False, 0.5)] * 4
    sel = standard_selectors()
    curve = accuracy_curve([a, b], [1, 2, 4], sel, trials=400, seed=1)
    # At N = 1 every selector is pass@1 = (1/4 + 0) / 2; at N = 4 the PRM finds A's answer, majority does not.
    for name in sel:
        assert curve[name]["mean"][0] == pytest.approx(0.125, abs=0.03)
    assert curve["prm-min"]["mean"][2] == 0.5 and curve["prm-min"]["std"][2] == 0.0
    assert curve["majority"]["mean"][2] == 0.0 and curve["oracle"]["mean"][2] == 0.5
    # N = 2: P(A's correct one is drawn) = 1/2, then the PRM takes it -> 0.25 on average, with spread over draws.
    assert curve["prm-min"]["mean"][1] == pytest.approx(0.25, abs=0.04) and curve["prm-min"]["std"][1] > 0
    assert curve["random"]["mean"][2] == pytest.approx(0.125)
    # Over problems: PRM-min scores 1 on A and 0 on B; resampling two problems gives a mean of 0, 1/2 or 1.
    assert curve["prm-min"]["problem_std"][2] == pytest.approx(math.sqrt(1 / 8), abs=0.03)
    assert curve["oracle"]["problem_std"][2] == pytest.approx(math.sqrt(1 / 8), abs=0.03)
    again = accuracy_curve([a, b], [1, 2, 4], sel, trials=400, seed=1)
    assert again == curve  # seeded
    with pytest.raises(ValueError, match="every N"):
        accuracy_curve([a, b], [8], sel)


def test_markdown_table():
    curve = {"prm-min": {"mean": [0.1, 0.25], "std": [0.01, 0.0]}, "oracle": {"mean": [0.1, 0.5], "std": [0, 0]}}
    table = markdown_table([1, 2], curve)
    assert table.splitlines()[0] == "| N | prm-min | oracle |"
    assert "| 2 | 25.0 ± 0.0 | 50.0 ± 0.0 |" in table


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections = 0
        self.steps: list[str] = []
        self.selected = 0
        self.external: list[str] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "") or ""
        self.sections += tag == "section"
        self.selected += "selected" in cls.split() and tag == "div"
        self.scripts += tag == "script"
        if tag == "div" and "step" in cls.split():
            self.steps.append(a.get("style", ""))
        for key in ("src", "href"):
            if key in a and not (a[key] or "").startswith(("data:", "#")):
                self.external.append(a[key])

    def handle_data(self, data):
        self.text.append(data)


def _problems():
    return [
        {
            "problem": "Tom has 3 <apples> & 4 pears.",
            "answer": "7",
            "majority": "6",
            "candidates": [
                {
                    "steps": ["3 + 4 = 7", "The answer is 7."],
                    "scores": [0.9, 0.8],
                    "score": 0.8,
                    "answer": "7",
                    "correct": True,
                    "selected": True,
                },
                {
                    "steps": ["3 + 3 = 6", "The answer is 6."],
                    "scores": [0.1, 0.7],
                    "score": 0.1,
                    "answer": "6",
                    "correct": False,
                    "selected": False,
                },
            ],
        },
        {
            "problem": "Two?",
            "answer": "2",
            "majority": None,
            "candidates": [
                {
                    "steps": ["The answer is 2."],
                    "scores": [0.5],
                    "score": 0.5,
                    "answer": "2",
                    "correct": True,
                    "selected": True,
                }
            ],
        },
    ]


def test_html_report_is_self_contained_and_coloured(tmp_path):
    plot = tmp_path / "p.png"
    plot.write_bytes(b"\x89PNG fake")
    page = tmp_path / "r.html"
    html_report(
        page,
        title="T",
        summary="S",
        table_md="| N | a |\n|---:|---:|\n| 1 | 5.0 ± 0.0 |\n",
        plot=plot,
        problems=_problems(),
    )
    p = _Page()
    p.feed(page.read_text())
    assert p.sections == 2 and p.selected == 2 and p.scripts == 0 and p.external == []
    assert len(p.steps) == 5
    assert p.steps[0] == "background:hsl(108, 70%, 85%)" and p.steps[2] == "background:hsl(12, 70%, 85%)"
    text = "".join(p.text)
    assert "Tom has 3 <apples> & 4 pears." in text  # escaped in the file, intact once parsed
    assert "<apples>" not in page.read_text()
    assert "data:image/png;base64," in page.read_text()


@pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")), reason="no Chromium here"
)
def test_html_report_renders_in_chromium(tmp_path):
    browser = next(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b))
    page = tmp_path / "r.html"
    html_report(
        page, title="T", summary="S", table_md="| N | a |\n|---:|---:|\n| 1 | 1 |\n", plot=None, problems=_problems()
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1000,800",
            page.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert shot.read_bytes()[:4] == b"\x89PNG"


def _pool(tmp_path, n_problems=3, n=4):
    records = []
    for p in range(n_problems):
        for k in range(n):
            correct = k == 0
            records.append(
                StepRecord(
                    id=f"p{p}/{k}",
                    problem=f"Problem {p}",
                    steps=["2 + 2 = 4", f"The answer is {4 if correct else k}."],
                    answer="4",
                    source="generate",
                    meta={
                        "problem_id": f"p{p}",
                        "sample": k,
                        "prediction": "4" if correct else str(k),
                        "correct": correct,
                        "tokens": 12,
                        "scores": [0.9, 0.9 if correct else 0.2],
                        "scorer": "test",
                    },
                )
            )
    path = tmp_path / "pool.jsonl"
    write_records(records, path)
    return path, records


def test_bon_command_writes_reports(tmp_path, capsys):
    path, records = _pool(tmp_path)
    other = tmp_path / "other.jsonl"
    for r in records:
        r.meta["scores"] = [0.5, 0.1 if r.meta["correct"] else 0.6]
    write_records(records, other)
    out = tmp_path / "bon"
    assert (
        cli.main(["bon", "--traces", str(path), "--baselines", f"orm={other}", "--output", str(out), "--trials", "20"])
        == 0
    )
    res = json.loads((out / "bon.json").read_text())
    assert res["ns"] == [1, 2, 4] and res["problems"] == 3 and res["policy_accuracy"] == 0.25
    assert res["selectors"]["prm-last"]["mean"][-1] == 1.0  # the PRM always ranks the right one first
    assert res["selectors"]["orm-last"]["mean"][-1] == 0.0  # the baseline ranks it last
    assert res["selectors"]["oracle"]["mean"][-1] == 1.0
    for f in ("bon.md", "bon.png", "report.html", "config.yaml"):
        assert (out / f).stat().st_size > 0
    assert "| N | prm-min |" in capsys.readouterr().out


def test_bon_ranking_against_step_labels(tmp_path, capsys):
    path, records = _pool(tmp_path, 2, 4)
    for r in records:  # steps right only in sample 1 (a wrong answer): the PRM ranks it low
        r.labels = [True, True] if r.meta["sample"] == 1 else [True, False]
    labels = tmp_path / "labels.jsonl"
    write_records(records, labels)
    out = tmp_path / "bon"
    assert cli.main(["bon", "--traces", str(path), "--labels", str(labels), "--output", str(out), "--trials", "5"]) == 0
    rk = json.loads((out / "bon.json").read_text())["ranking"]
    assert rk["solutions"] == 8 and rk["steps_right"]["count"] == 2 and rk["answer_right"]["count"] == 2
    assert rk["answer_right"]["auroc"]["min"] == 1.0  # the right answers score 0.9, the rest 0.2
    # each step-right solution (min 0.2) ties with the 4 other 0.2s and loses to the two 0.9s: (4 x 1/2) / 6
    assert rk["steps_right"]["auroc"]["min"] == pytest.approx(1 / 3)
    # steps: 8 right first steps at 0.9 and 2 right second steps at 0.2, against wrong second steps 2 x 0.9, 4 x 0.2
    assert rk["step_auroc"] == pytest.approx((8 * 5 / 6 + 2 * 2 / 6) / 10)
    # calibration: the 10 steps at 0.9 are right 8 times (off by 0.1), the 6 at 0.2 right twice (off by 2/6 - 0.2)
    assert rk["step_ece"] == pytest.approx(10 / 16 * 0.1 + 6 / 16 * (2 / 6 - 0.2))
    printed = capsys.readouterr().out
    assert "for the 2 with no wrong step" in printed
    res = json.loads((out / "bon.json").read_text())
    assert res["selectors"]["judge-vote"]["mean"][-1] == 0.0  # only the wrong answer "1" has every step right
    assert res["first_errors"] == {"unknown": 6} and "6 in all" in printed  # these labels give no reasons
    # Every wrong step here is a first error, so the one kind's AUROC is the step AUROC.
    by_kind = rk["step_auroc_by_kind"]
    assert list(by_kind) == ["unknown"] and by_kind["unknown"]["count"] == 6
    assert by_kind["unknown"]["auroc"] == pytest.approx(rk["step_auroc"])
    assert "first errors of each kind: unknown 0." in printed
    # Log-probability scores (a training-free likelihood's scored file) rank the same and have no calibration error.
    for r in records:
        r.meta["scores"] = [math.log(s) for s in r.meta["scores"]]
    logs = tmp_path / "loglik.jsonl"
    write_records(records, logs)
    assert cli.main(["bon", "--traces", str(logs), "--labels", str(labels), "--output", str(out), "--trials", "5"]) == 0
    rk_log = json.loads((out / "bon.json").read_text())["ranking"]
    assert rk_log["step_ece"] is None and rk_log["step_auroc"] == pytest.approx(rk["step_auroc"])
    assert rk_log["step_auroc_by_kind"]["unknown"]["auroc"] == pytest.approx(by_kind["unknown"]["auroc"])


def test_bon_calc_selector_reads_the_equations(tmp_path):
    path, records = _pool(tmp_path, 2, 4)
    for r in records:  # the right sample writes 2 + 2 = 5 and the wrong ones check: the calculator votes them
        r.steps[0] = "2 + 2 = 5" if r.meta["correct"] else "2 + 2 = 4"
    write_records(records, path)
    out = tmp_path / "bon"
    assert cli.main(["bon", "--traces", str(path), "--output", str(out), "--trials", "5"]) == 0
    res = json.loads((out / "bon.json").read_text())
    assert res["selectors"]["calc"]["mean"][-1] == 0.0 and res["selectors"]["majority"]["mean"][-1] > 0.0


def test_first_error_kinds_from_gold_reasons():
    from prm.bon.command import first_error_kinds

    def r(reason, labels):
        return StepRecord("x", "p", ["a", "b"], labels=labels, meta={"label": {"reason": reason}})

    recs = [r("wrong arithmetic: 2 + 2 = 5", [False, None]), r("off the gold chain: 2 * 2 = 4", [True, False])]
    recs += [r("wrong arithmetic: 3 * 3 = 8", [False, None]), r("", [True, True])]
    assert first_error_kinds(recs) == {"arithmetic slip (the calculator sees it)": 2, "wrong operation or operand": 1}


def test_bon_command_errors_name_file_and_line(tmp_path, capsys):
    path, records = _pool(tmp_path, 1, 2)
    del records[1].meta["problem_id"]
    write_records(records, path)
    assert cli.main(["bon", "--traces", str(path), "--output", str(tmp_path / "o")]) == 2
    assert f"{path}:2: field 'meta.problem_id'" in capsys.readouterr().err
    records[1].meta["problem_id"] = "p0"
    del records[0].meta["scores"]
    write_records(records, path)
    assert cli.main(["bon", "--traces", str(path), "--output", str(tmp_path / "o")]) == 2
    assert f"{path}:1: field 'meta.scores'" in capsys.readouterr().err
    assert cli.main(["bon", "--output", str(tmp_path / "o")]) == 2  # neither traces nor problems
    assert "give exactly one of traces and problems" in capsys.readouterr().err
    path, _ = _pool(tmp_path, 1, 2)
    assert cli.main(["bon", "--traces", str(path), "--n_max", "5", "--output", str(tmp_path / "o")]) == 2
    assert "smallest pool" in capsys.readouterr().err


def test_bon_samples_and_scores_its_own_pool(tmp_path, tiny_model_dir, tiny_prm_dir, tiny_problems):
    out = tmp_path / "bon"
    args = [
        "bon",
        "--problems",
        str(tiny_problems),
        "--policy",
        str(tiny_model_dir),
        "--n_max",
        "2",
        "--prm",
        str(tiny_prm_dir),
        "--output",
        str(out),
        "--trials",
        "3",
        "--progress",
        "false",
    ]
    assert cli.main(args) == 0
    pool = read_records(out / "pool.scored.jsonl")  # (random text may hold U+2028, which str.splitlines splits on)
    assert len(pool) == 3 * 2 and all(len(r.meta["scores"]) == len(r.steps) for r in pool)
    assert json.loads((out / "bon.json").read_text())["ns"] == [1, 2]

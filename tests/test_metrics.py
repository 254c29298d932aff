"""prm.eval.metrics: AUROC against a brute-force count, accuracy and F1, ECE and the reliability plot, ProcessBench F1
and its threshold search, the position floor, and the (score, label) collectors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prm.eval.metrics import (
    ProcessBenchResult,
    auroc,
    best_threshold,
    ece,
    f1_wrong,
    first_error_auroc,
    first_error_steps,
    first_error_steps_by_kind,
    fit_position_floor,
    labeled_steps,
    position_floor_scores,
    processbench,
    processbench_f1,
    reliability_bins,
    reliability_plot,
    step_accuracy,
)
from prm.records import StepRecord


def rec(labels, rid=None, kind=None) -> StepRecord:
    meta = {"error": {"kind": kind, "step": labels.index(False)}} if kind else {}
    return StepRecord(rid or f"r{id(labels)}", "problem", [f"step {i}" for i in range(len(labels))], labels, meta=meta)


def brute_auroc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


# ---------------------------------------------------------------------------------------------------------------------
# AUROC, accuracy, F1


def test_auroc_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(2, 60))
        labels = rng.random(n) < rng.uniform(0.2, 0.8)
        labels[0], labels[1] = True, False
        # Rounded scores make ties common, which is where rank-based AUROC goes wrong if done carelessly.
        scores = np.round(rng.random(n) + 0.4 * labels, 1 if trial % 2 else 6)
        assert auroc(scores, labels) == pytest.approx(brute_auroc(scores.tolist(), labels.tolist()), abs=1e-12)


def test_auroc_known_values():
    y = [True, True, False, False]
    assert auroc([0.9, 0.8, 0.2, 0.1], y) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], y) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], y) == 0.5
    assert auroc([0.9, 0.5, 0.5, 0.1], y) == pytest.approx(0.875)  # 3 wins and 1 tie out of 4 pairs
    assert auroc(np.array([3, 1]), np.array([True, False])) == 1.0  # any monotone score, not only probabilities


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([0.1, 0.2], [True, True], "both classes"),
        ([0.1, 0.2], [False, False], "both classes"),
        ([], [], "both classes"),
        ([0.1, float("nan")], [True, False], "NaN"),
        ([0.1, 0.2], [1, 0], "bools"),
        ([0.1], [True, False], "labels"),
    ],
)
def test_auroc_rejects_bad_input(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        auroc(scores, labels)


def test_step_accuracy_and_f1_wrong():
    scores = [0.9, 0.8, 0.4, 0.3, 0.6, 0.1]
    labels = [True, True, True, False, False, False]
    # Predicted wrong (< 0.5): steps 2, 3, 5; truly wrong: 3, 4, 5. tp 2, fp 1, fn 1.
    assert step_accuracy(scores, labels, 0.5) == pytest.approx(4 / 6)
    assert f1_wrong(scores, labels, 0.5) == pytest.approx(2 / 3)
    assert f1_wrong(scores, labels, 0.0) == 0.0  # nothing predicted wrong
    assert f1_wrong(scores, labels, 1.0) == pytest.approx(2 * 0.5 * 1 / 1.5)  # everything predicted wrong
    assert step_accuracy([0.5], [True], 0.5) == 1.0  # a score at the threshold counts as correct
    with pytest.raises(ValueError):
        step_accuracy([], [], 0.5)


# ---------------------------------------------------------------------------------------------------------------------
# Calibration


def test_ece_hand_made():
    # Bin [0.2, 0.3): four steps at 0.25, one correct: perfectly calibrated.
    assert ece([0.25] * 4, [True, False, False, False]) == pytest.approx(0.0)
    assert ece([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    assert ece([0.0, 0.0], [True, True]) == pytest.approx(1.0)
    # Bin of 0.9s: 3 steps, accuracy 2/3, gap 0.2333; bin of 0.2s: 1 step, accuracy 0, gap 0.2. Weighted by 3/4, 1/4.
    value = ece([0.9, 0.9, 0.9, 0.2], [True, True, False, False])
    assert value == pytest.approx(0.75 * abs(2 / 3 - 0.9) + 0.25 * 0.2)
    # One bin holds everything: ECE is the gap of the overall means.
    assert ece([0.2, 0.8], [True, False], n_bins=1) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ece([1.2], [True])
    with pytest.raises(ValueError, match="no steps"):
        ece([], [])


def test_reliability_bins_edges_and_counts():
    bins = reliability_bins([0.0, 0.05, 0.1, 0.55, 0.999, 1.0], [False, False, True, True, True, False], n_bins=10)
    assert len(bins) == 10 and [b.count for b in bins] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bins[0].lo == 0.0 and bins[9].hi == 1.0
    assert bins[0].accuracy == 0.0 and bins[0].confidence == pytest.approx(0.025)
    assert bins[2].accuracy is None and bins[2].confidence is None
    assert bins[9].accuracy == 0.5 and bins[9].confidence == pytest.approx(0.9995)


def test_reliability_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.random(500)
    bins = reliability_bins(p, rng.random(500) < p)
    out = tmp_path / "plots" / "reliability.png"
    reliability_plot(bins, out, "test PRM")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [f.name for f in out.parent.iterdir()] == ["reliability.png"]  # no temporary file left behind
    reliability_plot(reliability_bins([], []), tmp_path / "empty.png", "no steps")  # an empty diagram still draws
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------------------------------------------------
# ProcessBench


def processbench_records():
    return [
        rec([True, True, False, None], "e2"),  # first error at 2
        rec([False, None], "e0"),  # first error at 0
        rec([True, True, True], "ok1"),
        rec([True, True], "ok2"),
        rec([True, None, False], "skip"),  # a null before the first error: no ProcessBench label
    ]


def test_processbench_hand_made():
    records = processbench_records()
    scores = [
        [0.9, 0.8, 0.3, 0.2],  # predicted 2: right
        [0.7, 0.1],  # predicted 1, true 0: wrong
        [0.9, 0.6, 0.8],  # predicted -1: right
        [0.4, 0.9],  # predicted 0: wrong
        [0.1, 0.1, 0.1],
    ]
    result = processbench(scores, records, 0.5)
    assert result == ProcessBenchResult(0.5, 0.5, 0.5, 0.5, 2, 2, 1)
    # At 0.75 the first erroneous solution is flagged at step 2 still, the second at 0; ok1 is flagged at 1.
    result = processbench(scores, records, 0.75)
    assert (result.acc_erroneous, result.acc_correct) == (1.0, 0.0) and result.f1 == 0.0
    assert processbench_f1(scores, records, 0.35) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    with pytest.raises(ValueError, match="with and without"):
        processbench(scores[2:4], records[2:4], 0.5)
    with pytest.raises(ValueError, match="3 scores"):
        processbench([[0.1, 0.2, 0.3]] + scores[1:], records, 0.5)


def brute_best(scores, records):
    candidates = sorted({x for s in scores for x in s})
    candidates.append(np.nextafter(max(candidates), np.inf))
    f1s = [processbench_f1(scores, records, t) for t in candidates]
    best = int(np.argmax(f1s))
    return candidates[best], f1s[best]


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(30):
        records, scores = [], []
        for j in range(int(rng.integers(4, 25))):
            n = int(rng.integers(1, 6))
            k = int(rng.integers(-1, n)) if j > 1 else j - 1  # at least one correct and one erroneous solution
            labels = [True] * n if k < 0 else [True] * k + [False] + [None] * (n - k - 1)
            records.append(rec(labels, f"r{j}"))
            s = np.round(rng.random(n), 1)  # ties between records and steps
            if k >= 0:
                s[k] = s[k] * 0.5
            scores.append(s.tolist())
        t, f1 = best_threshold(scores, records)
        bt, bf1 = brute_best(scores, records)
        assert f1 == pytest.approx(bf1) and t == bt
        assert processbench_f1(scores, records, t) == pytest.approx(f1)


def test_best_threshold_separable():
    records = processbench_records()[:4]
    scores = [[0.9, 0.8, 0.2, 0.1], [0.3, 0.5], [0.9, 0.6, 0.8], [0.7, 0.9]]
    t, f1 = best_threshold(scores, records)
    assert f1 == 1.0 and t == 0.5  # right for t in (0.3, 0.6]: the lowest distinct score there
    assert processbench(scores, records, t).f1 == 1.0


# ---------------------------------------------------------------------------------------------------------------------
# Collectors


def test_collectors():
    records = [
        rec([True, False, None, False], "a", kind="off_by_k"),
        rec([False, False], "b", kind="stale_value"),
        rec([True, True], "c"),
        rec([None, True], "d"),
        rec([True, False], "e"),  # an error without a recorded kind
    ]
    scores = [[0.9, 0.1, 0.5, 0.4], [0.2, 0.3], [0.8, 0.7], [0.6, 0.65], [0.75, 0.05]]
    s, y = labeled_steps(records, scores)
    assert s.tolist() == [0.9, 0.1, 0.4, 0.2, 0.3, 0.8, 0.7, 0.65, 0.75, 0.05]
    assert y.tolist() == [True, False, False, False, False, True, True, True, True, False]
    s, y = first_error_steps(records, scores)
    # Correct steps before any error, then the first error of each erroneous record; later steps left out.
    assert sorted(s[y].tolist()) == [0.65, 0.7, 0.75, 0.8, 0.9]
    assert sorted(s[~y].tolist()) == [0.05, 0.1, 0.2]
    by_kind = first_error_steps_by_kind(records, scores)
    assert set(by_kind) == {"off_by_k", "stale_value", "unknown"}
    ks, ky = by_kind["stale_value"]
    assert ks[~ky].tolist() == [0.2] and ky.sum() == 5
    result = first_error_auroc(records, scores)
    assert result == {"all": 1.0, "off_by_k": 1.0, "stale_value": 1.0, "unknown": 1.0}
    assert first_error_auroc(records[2:4], scores[2:4]) == {}  # no error at all: nothing to report
    with pytest.raises(ValueError, match="2 steps but 3 scores"):
        labeled_steps(records[2:3], [[0.1, 0.2, 0.3]])


def test_first_error_auroc_on_synthetic_errors():
    from prm.synth import ERROR_KINDS, SynthConfig, generate

    records = list(generate(SynthConfig(n=300, seed=0, pairs=True)))
    # An oracle that knows the labels scores 1 on every kind; a constant scores 0.5.
    oracle = [[0.0 if lab is False else 1.0 for lab in r.labels] for r in records]
    result = first_error_auroc(records, oracle)
    assert set(result) == {"all", *ERROR_KINDS} and set(result.values()) == {1.0}
    assert set(first_error_auroc(records, [[0.3] * len(r.steps) for r in records]).values()) == {0.5}


# ---------------------------------------------------------------------------------------------------------------------
# Position floor


def test_position_floor_learns_a_position_pattern():
    # Records of 3 steps: step 0 always right, step 1 right 3 times in 4, step 2 right once in 4.
    # Records of 2 steps: both always right, so the floor must use the length too.
    rng = np.random.default_rng(3)
    train = []
    for j in range(800):
        if j % 2:
            labels = [True, bool(rng.random() < 0.75), bool(rng.random() < 0.25)]
        else:
            labels = [True, True]
        train.append(rec(labels, f"t{j}"))
    floor = fit_position_floor(train)
    three = floor.score(rec([None] * 3, "x"))
    assert three[0] > 0.99 and abs(three[1] - 0.75) < 0.06 and abs(three[2] - 0.25) < 0.06
    assert all(p > 0.99 for p in floor.score(rec([None] * 2, "y")))
    # An unseen length falls back to the position; an unseen position to the overall share.
    five = floor.score(rec([None] * 5, "z"))
    assert five[0] > 0.99 and 0.8 < five[1] < 0.92 and five[3] == pytest.approx(floor.overall, abs=0.01)
    test = [rec(r.labels, f"s{i}") for i, r in enumerate(train[:200])]
    s, y = labeled_steps(test, position_floor_scores(test, train))
    assert auroc(s, y) > 0.8  # position alone explains these labels well
    assert position_floor_scores(test) == [fit_position_floor(test).score(r) for r in test]
    with pytest.raises(ValueError, match="no labeled step"):
        fit_position_floor([rec([None, None], "u")])

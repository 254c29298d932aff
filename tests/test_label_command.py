"""`prm label`, `prm label-report` and the label bench suite end to end with a scripted completer: files, budget,
summary, consensus, refusing to resume with other settings, and resume after a real SIGKILL (byte-identical file)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prm import cli
from prm.bench.label import LabelBenchConfig, measure
from prm.config import config_path_for, load_config
from prm.label import LabelConfig, LabelReportConfig
from prm.label.report import run as report_run
from prm.label.report import synth_traces
from prm.records import read_records, write_records

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    """A small trace file (prm synth solutions, half with an injected error) and a noisy-oracle script."""
    traces = tmp_path / "traces.jsonl"
    write_records(synth_traces(24, 0, 2, 5, 0.5), traces)

    def script(name="script.json", **kw):
        path = tmp_path / name
        path.write_text(json.dumps({"oracle": [0.6, 0.1], "seed": 1, "tokens": 5, **kw}))
        return f"python:fakes:scripted:{path}"

    return traces, script


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_label_command_writes_records_budget_summary_and_consensus(files, tmp_path, capsys):
    traces, script = files
    out = tmp_path / "mc.jsonl"
    args = ["label", "--input", str(traces), "--output", str(out), "--completer", script(), "--k", "4"]
    args += ["--consensus", "calc", "--progress", "false"]
    assert cli.main(args) == 0
    records = read_records(out)
    assert [r.id for r in records] == [t.id for t in read_records(traces)]
    for r in records:
        info = r.meta["label"]
        assert (
            info["method"] == "mc"
            and info["k"] == 4
            and info["rollouts"] == sum(len(o or "") for o in info["outcomes"])
        )
        assert info["tokens"] == 5 * info["rollouts"] and r.meta["problem"]["chain"]
        assert info["consensus"]["method"] == "calc" and info["consensus"]["rollouts"] == 0
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    kept = read_records(out.with_suffix(".consensus.jsonl"))
    assert summary["records"] == 24 and summary["rollouts"] == sum(r.meta["label"]["rollouts"] for r in records)
    assert summary["consensus"]["kept"] == len(kept) == sum(r.meta["label"]["consensus"]["agree"] for r in records)
    assert 0 < len(kept) < 24
    assert load_config(LabelConfig, config_path_for(out)).consensus == "calc"
    printed = capsys.readouterr().out
    assert "mc labeled 24 traces" in printed and "consensus with calc keeps" in printed
    # Rerunning resumes (nothing left to do, file unchanged); other label settings are refused.
    before = out.read_bytes()
    assert cli.main(args + ["--traces_per_batch", "5"]) == 0
    assert out.read_bytes() == before and "(24 already there)" in capsys.readouterr().out
    assert cli.main(args + ["--k", "2"]) == 2
    assert "other settings (k: 4)" in capsys.readouterr().err


def test_gold_calc_and_outcome_commands(files, tmp_path, capsys):
    traces, script = files
    for method in ("gold", "calc", "outcome"):
        out = tmp_path / f"{method}.jsonl"
        args = ["label", "--method", method, "--input", str(traces), "--output", str(out), "--traces_per_batch", "2"]
        assert cli.main(args) == 0
        records = read_records(out)
        assert all(r.meta["label"]["method"] == method and r.meta["label"]["rollouts"] == 0 for r in records)
        # Instant labelers print their summary, not a progress line for each of the 12 batches.
        assert "traces, 0 rollouts" not in capsys.readouterr().err
    args = ["label", "--input", str(traces), "--output", str(tmp_path / "mc.jsonl"), "--completer", script()]
    assert cli.main(args + ["--k", "2", "--traces_per_batch", "12"]) == 0
    assert capsys.readouterr().err.count("prm label: ") == 2  # a rollout labeler reports every batch
    gold = read_records(tmp_path / "gold.jsonl")
    assert [r.first_error() for r in gold] == [(t.meta.get("error") or {}).get("step") for t in read_records(traces)]
    # outcome: every prefix valued by the trace's own answer (an injected error carries to a wrong answer).
    for r, t in zip(read_records(tmp_path / "outcome.jsonl"), read_records(traces), strict=True):
        right = "error" not in t.meta or not t.meta["error"]
        assert r.values == [float(right)] * len(t.steps) and r.labels == [None] * (len(t.steps) - 1) + [right]


def test_label_resumes_after_sigkill_byte_identical(files, tmp_path):
    traces, script = files
    args = ["label", "--input", str(traces), "--mode", "hard", "--early_stop", "true", "--k", "4"]
    args += ["--traces_per_batch", "2", "--progress", "false"]
    ref = tmp_path / "ref.jsonl"
    assert cli.main(args + ["--output", str(ref), "--completer", script("fast.json")]) == 0
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "prm", *args, "--output", str(out), "--completer", script("slow.json", delay_s=0.02)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    rng = random.Random()  # a different moment every run
    partial = []
    for _ in range(2):
        before = lines(out)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and lines(out) <= before and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.1))  # somewhere in the next batch, or in the middle of writing it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial.append(lines(out))
    assert any(0 < n < 24 for n in partial), partial
    with open(out, "ab") as f:
        f.write(b'{"id": "synth-test-0-9/0", "problem": "torn')  # as if killed inside a write
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == ref.read_bytes()


def test_label_report_perfect_and_noisy_oracle(files, tmp_path, capsys):
    _, script = files
    perfect = LabelReportConfig(
        n=30, max_steps=5, k=2, completer=script("p.json", oracle=[1.0, 0.0]), output=str(tmp_path / "p.json")
    )
    rep = report_run(perfect)
    assert rep["gold_matches_injected_error"] >= 0.95
    for m in ("mc", "binary"):  # an oracle that reaches the answer exactly from the on-track prefixes: labels = gold
        assert rep["methods"][m]["step_accuracy"] == rep["methods"][m]["first_error_accuracy"] == 1.0
    noisy = LabelReportConfig(n=30, max_steps=5, k=4, completer=script(), output=str(tmp_path / "n.json"))
    rep = report_run(noisy)
    assert json.loads((tmp_path / "n.json").read_text()) == rep
    calc, mc, binary = (rep["methods"][m] for m in ("calc", "mc", "binary"))
    assert calc["rollouts_per_trace"] == 0 < binary["rollouts_per_trace"] < mc["rollouts_per_trace"]
    assert all(0 <= x["first_error_accuracy"] <= 1 and 0 < x["coverage"] <= 1 for x in (calc, mc, binary))
    assert 0 < rep["consensus"]["mc+calc"]["retention"] <= 1
    assert "| mc+binary |" in (tmp_path / "n.md").read_text() and "| binary |" in capsys.readouterr().out


def test_label_bench_suite_with_a_scripted_completer(files):
    _, script = files
    cfg = LabelBenchConfig(n=12, lengths=("2-3", "6-7"), ks=(1, 2, 4), completer=script(oracle=[0.7, 0.1]))
    rows = {r["name"]: r for r in measure(cfg)}
    long = "label 6-7 steps, n=12"
    full, es, binary = (rows[f"{long}: {m} rollouts/trace"]["value"] for m in ("mc K=4", "mc + early stop", "binary"))
    assert binary <= full / 2 and es < full and rows[f"{long}: binary rollouts/trace"]["met"] is True
    # early stop decides on the same samples as the full run, so its first errors are the same
    agreement = f"{long}: {{}} first-error agreement with gold"
    assert rows[agreement.format("mc + early stop")]["value"] == rows[agreement.format("mc K=4")]["value"]
    assert rows[agreement.format("binary")]["met"] is not None
    assert all(f"label 2-3 steps, n=12: mc hard-label step accuracy vs gold, K={k}" in rows for k in (1, 2, 4))


def test_bench_registers_the_suite_and_its_yaml_gives_the_defaults():
    from prm.bench import SUITES
    from prm.bench.label import YAML, load_bench_config

    assert SUITES["label"] == "prm.bench.label" and YAML.exists()
    assert load_bench_config() == LabelBenchConfig()

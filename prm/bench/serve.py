"""`prm serve` under load and bad input, against `prm score` on the same traces.

The server runs as its own process (what users run); clients are threads here, one trace per request (how an RL
trainer asks, one sample at a time), each on a keep-alive connection. Throughput at 1, 8 and 32 concurrent clients
is set beside the traces/s of scoring the same traces in one `PRMScorer.score_batch` call, same precision; then
every bad-input class is sent and the server is asked whether it still answers.
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prm.bench import best_time, row
from prm.records import read_records
from prm.serve.client import call, running

CLIENTS = (1, 8, 32)


def bad_inputs(max_length: int, max_body: int, max_traces: int) -> list[tuple[str, str, bytes, int, str]]:
    """(class, route, body, expected status, field the reason names) for each kind of bad request, sized from the
    server's limits."""

    def js(obj) -> bytes:
        return json.dumps(obj).encode()

    long_steps = [
        "word " * (max_length // 4)
    ] * 8  # past max_length tokens for any tokenizer that spends a token a word
    return [
        ("malformed JSON", "/score", b'{"problem": "p", "steps": [', 400, "body"),
        ("not UTF-8", "/score", b"\xff\xfe{}", 400, "body"),
        ("wrong type (steps a string)", "/score", js({"problem": "p", "steps": "x"}), 422, "steps"),
        ("missing field", "/score", js({"steps": ["a"]}), 422, "problem"),
        ("unknown field", "/score", js({"problem": "p", "steps": ["a"], "step": 1}), 422, "step"),
        ("empty steps", "/score", js({"problem": "p", "steps": []}), 422, "steps"),
        ("empty step", "/score", js({"problem": "p", "steps": ["a", " "]}), 422, "steps[1]"),
        ("body over the size limit", "/score", js({"problem": "p" * (max_body + 10), "steps": ["a"]}), 413, "body"),
        ("trace over the token limit", "/score", js({"problem": "p", "steps": long_steps}), 413, "steps"),
        (
            "problem over the token limit",
            "/score",
            js({"problem": "p " * (2 * max_length), "steps": ["a"]}),
            413,
            "problem",
        ),
        ("too many traces", "/score", js([{"problem": "p", "steps": ["a"]}] * (max_traces + 1)), 413, "body"),
        ("reward query without a response", "/get_reward", js({"query": ["plain text"]}), 422, "query[0]"),
        (
            "reward prompts of another length",
            "/get_reward",
            js({"query": ["a"], "prompts": ["a", "b"]}),
            422,
            "prompts",
        ),
    ]


def _model(cfg, tmp: Path) -> str:
    """The PRM to serve: `serve_model`, or an untrained one on `prm_base` (speed does not depend on the weights)."""
    if cfg.serve_model:
        return cfg.serve_model
    import torch

    from prm.model.io import LoraSpec, build, save
    from prm.model.prm import Spec

    prm, tok = build(Spec(base=cfg.prm_base, features_from="adapted", feature_set="operation"), LoraSpec())
    with torch.no_grad():
        prm.head.weight.normal_(std=0.02)
    save(prm, tok, tmp / "prm")
    return str(tmp / "prm")


def _load(port: int, items: list, clients: int, n_requests: int) -> dict:
    """n_requests one-trace requests from `clients` threads; requests/s, latency percentiles, errors."""
    per_client = [list(range(k, n_requests, clients)) for k in range(clients)]
    latencies: list[float] = []
    errors = 0

    def client(indices: list[int]) -> tuple[list[float], int]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        lat, bad = [], 0
        for i in indices:
            p, s = items[i % len(items)]
            t0 = time.perf_counter()
            status, _ = call(port, "POST", "/score", {"problem": p, "steps": s}, conn=conn)
            lat.append(time.perf_counter() - t0)
            bad += status != 200
        conn.close()
        return lat, bad

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for lat, bad in pool.map(client, per_client):
            latencies += lat
            errors += bad
    secs = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {"rps": n_requests / secs, "p50_ms": 1000 * q[49], "p99_ms": 1000 * q[98], "errors": errors}


def _score_file_time(model: str, items: list, cfg) -> float:
    """Seconds of scoring all traces in one `score_batch` call (what `prm score` does), best of two."""
    from prm.score.prm_scorer import PRMScorer

    scorer = PRMScorer.from_pretrained(model, bf16=cfg.serve_bf16)
    return best_time(lambda: scorer.score_batch(items), min(cfg.repeats, 2))


def run(cfg) -> list[dict]:
    from prm.synth import SynthConfig
    from prm.synth import run as synth_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = _model(cfg, tmp)
        synth_run(SynthConfig(n=cfg.serve_traces, min_steps=2, max_steps=4, output=str(tmp / "t.jsonl")))
        items = [(r.problem, r.steps) for r in read_records(tmp / "t.jsonl")]
        bf16 = ["--bf16", "true"] if cfg.serve_bf16 else []

        ref = len(items) / _score_file_time(model, items, cfg)
        rows.append(row("serve: prm score on the same traces (one call)", ref, "traces/s"))

        with running(model, *bf16) as (port, _):
            _load(port, items, 4, 8)  # warm-up: first passes allocate
            for clients in CLIENTS:
                before = call(port, "GET", "/info")[1]
                m = _load(port, items, clients, max(cfg.serve_requests, 2 * clients))
                after = call(port, "GET", "/info")[1]
                m["traces_per_round"] = (after["traces_scored"] - before["traces_scored"]) / max(
                    1, after["rounds"] - before["rounds"]
                )
                share = m["rps"] / ref
                goal = ">= 70% of prm score" if clients == 32 else ""
                rows.append(
                    row(
                        f"serve: {clients} client(s), requests/s (one trace each)",
                        m["rps"],
                        "req/s",
                        goal,
                        (share >= 0.7 and m["errors"] == 0) if clients == 32 else None,
                        share_of_prm_score=share,
                        **m,
                    )
                )
                rows.append(row(f"  {clients} client(s): p50 latency", m["p50_ms"], "ms"))
                rows.append(row(f"  {clients} client(s): p99 latency", m["p99_ms"], "ms"))
                rows.append(row(f"  {clients} client(s): traces per forward pass", m["traces_per_round"], "traces"))
            _, info = call(port, "GET", "/info")
            for name, path, raw, want, field in bad_inputs(info["max_length"], info["max_body"], info["max_traces"]):
                status, body = call(port, "POST", path, raw=raw)
                alive = call(port, "GET", "/health")[0] == 200
                reason = (body or {}).get("error", "")
                ok = status == want and reason.split(":")[0] == field and alive
                rows.append(
                    row(f"serve bad input: {name}", status, "status", f"{want}, then /health 200", ok, reason=reason)
                )
    return rows

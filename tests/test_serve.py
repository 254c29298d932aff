"""`prm serve`: request checks (pure), the batcher (with a fake scorer), and the real server on a free localhost port
(a subprocess on the tiny PRM): answers against `prm score`, every bad-input class, auth, a bounded load test and a
clean SIGTERM with requests in flight."""

from __future__ import annotations

import asyncio
import http.client
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from prm.bench.serve import bad_inputs
from prm.serve.batcher import Batcher
from prm.serve.client import call, running
from prm.serve.requests import BadInput, parse_json, reward_items, score_items

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CHATML = "<|im_start|>system\nSolve step by step.<|im_end|>\n<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n"


# ---------------------------------------------------------------------------------------------------------------------
# request checks (pure)


def test_score_items_one_or_many():
    one = {"problem": "2 + 2?", "steps": ["2 + 2 = 4.", "The answer is 4."]}
    assert score_items(one) == ([("2 + 2?", ["2 + 2 = 4.", "The answer is 4."])], True)
    items, single = score_items([one, one])
    assert len(items) == 2 and not single


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"problem": "p"}, 422, "steps"),
        ({"steps": ["a"]}, 422, "problem"),
        ({"problem": 3, "steps": ["a"]}, 422, "problem"),
        ({"problem": "p", "steps": "a"}, 422, "steps"),
        ({"problem": "p", "steps": []}, 422, "steps"),
        ({"problem": "p", "steps": ["a", "  "]}, 422, "steps[1]"),
        ({"problem": "p", "steps": ["a", 7]}, 422, "steps[1]"),
        ({"problem": "p", "steps": ["a"], "stepz": []}, 422, "stepz"),
        ([{"problem": "p", "steps": ["a"]}, {"problem": "p", "steps": None}], 422, "[1].steps"),
        ([], 422, "body"),
        ("text", 422, "body"),
        ([{"problem": "p", "steps": ["a"]}] * 3, 413, "body"),
    ],
)
def test_score_items_refuses_with_the_field(body, status, field):
    with pytest.raises(BadInput) as e:
        score_items(body, max_traces=2)
    assert (e.value.status, e.value.field) == (status, field)
    assert str(e.value).startswith(f"{field}: ")


def test_parse_json_names_the_place():
    with pytest.raises(BadInput, match=r"body: is not valid JSON \(.* line 1 column \d+\)") as e:
        parse_json(b'{"problem": ')
    assert e.value.status == 400
    with pytest.raises(BadInput, match="UTF-8"):
        parse_json(b"\xff\xfe")


def test_reward_items_split_queries():
    prompt = CHATML.format(p="Tom has 3 apples and buys 4. How many?")
    query = prompt + "3 + 4 = 7.\nThe answer is 7.<|im_end|>"
    # with prompts, and without them (the chat template's assistant header marks the response)
    for body in ({"query": [query], "prompts": [prompt], "labels": ["7"]}, {"query": [query]}):
        assert reward_items(body, "lines") == [
            ("Tom has 3 apples and buys 4. How many?", ["3 + 4 = 7.", "The answer is 7."])
        ]
    # a plain prompt the query starts with; an empty response gives no steps (rewarded 0 by the server)
    assert reward_items({"query": ["Q: 1 + 1?\nA:"], "prompts": ["Q: 1 + 1?\nA:"]}, "lines") == [("Q: 1 + 1?\nA:", [])]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "query"),
        ({"query": "x"}, "query"),
        ({"query": []}, "query"),
        ({"query": ["a", 1]}, "query[1]"),
        ({"query": ["a"], "prompts": ["a", "b"]}, "prompts"),
        ({"query": ["plain text"]}, "query[0]"),
        ({"query": ["abc"], "prompts": ["xyz"]}, "query[0]"),
        ({"query": ["a"], "rewards": [1]}, "rewards"),
    ],
)
def test_reward_items_refuses_with_the_field(body, field):
    with pytest.raises(BadInput) as e:
        reward_items(body, "lines")
    assert e.value.field == field and e.value.status == 422


# ---------------------------------------------------------------------------------------------------------------------
# the batcher, with a fake scorer


class FakeEncoded:
    def __init__(self, n_tokens: int, value: float):
        self.input_ids = [0] * n_tokens
        self.value = value


def test_batcher_shares_rounds_and_keeps_order():
    calls = []

    def score(items):
        calls.append(len(items))
        time.sleep(0.02)  # a forward pass: requests arriving meanwhile wait for the next round
        return [[e.value, e.value / 2] for e in items]

    async def main():
        b = Batcher(score, window_s=0.01, budget=10_000)
        await b.start()
        jobs = [b.submit([FakeEncoded(10, float(i)), FakeEncoded(10, float(i) + 0.5)]) for i in range(40)]
        out = await asyncio.gather(*jobs)
        await b.stop()
        return out, b

    out, b = asyncio.run(main())
    assert out == [[[float(i), i / 2], [i + 0.5, (i + 0.5) / 2]] for i in range(40)]
    assert sum(calls) == 80 and len(calls) < 40  # shared: fewer rounds than requests
    assert (b.rounds, b.traces) == (len(calls), 80)


def test_batcher_budget_caps_a_round_and_errors_reach_every_waiter():
    sizes = []

    def score(items):
        sizes.append(sum(len(e.input_ids) for e in items))
        if any(e.value < 0 for e in items):
            raise RuntimeError("boom")
        return [[e.value] for e in items]

    async def main():
        b = Batcher(score, window_s=0.05, budget=100)
        await b.start()
        ok = await asyncio.gather(*[b.submit([FakeEncoded(40, 1.0)]) for _ in range(6)])
        bad = await asyncio.gather(
            b.submit([FakeEncoded(5, -1.0)]), b.submit([FakeEncoded(5, 2.0)]), return_exceptions=True
        )
        after = await b.submit([FakeEncoded(5, 3.0)])  # the worker lives on after an error
        await b.stop()
        return ok, bad, after

    ok, bad, after = asyncio.run(main())
    assert ok == [[[1.0]]] * 6 and after == [[3.0]]
    assert max(sizes[:3]) <= 120  # a round stops collecting once past the budget (three 40-token jobs)
    assert all(isinstance(x, RuntimeError) for x in bad)


def test_batcher_window_slides_with_each_arrival_up_to_max_wait():
    """Requests 10 ms apart share one round under a 50 ms window that slides (the 70 ms they span is more than one
    window), and are split when the longest wait is the window itself."""

    def rounds(max_wait_s: float) -> list[int]:
        calls = []

        def score(items):
            calls.append(len(items))
            return [[0.5] for _ in items]

        async def main():
            b = Batcher(score, window_s=0.05, max_wait_s=max_wait_s, budget=10_000)
            await b.start()
            tasks = []
            for _ in range(8):
                tasks.append(asyncio.create_task(b.submit([FakeEncoded(1, 0.0)])))
                await asyncio.sleep(0.01)
            await asyncio.gather(*tasks)
            await b.stop()

        asyncio.run(main())
        return calls

    assert rounds(1.0) == [8]
    assert len(rounds(0.05)) >= 2


def test_batcher_stop_finishes_what_was_submitted():
    async def main():
        b = Batcher(lambda items: [[1.0] for _ in items], window_s=0.2, budget=10_000)
        await b.start()
        pending = [asyncio.create_task(b.submit([FakeEncoded(1, 0.0)])) for _ in range(5)]
        await asyncio.sleep(0.01)
        await b.stop()
        return [await p for p in pending]

    assert asyncio.run(main()) == [[[1.0]]] * 5


# ---------------------------------------------------------------------------------------------------------------------
# the real server


def server(prm_dir, *args, env=None):
    return running(str(prm_dir), *args, env=env)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    from prm.synth import SynthConfig
    from prm.synth import run as synth_run

    path = tmp_path_factory.mktemp("serve") / "traces.jsonl"
    synth_run(SynthConfig(n=12, max_steps=3, output=str(path)))
    return path


@pytest.fixture(scope="module")
def expected(tiny_prm_dir, traces, tmp_path_factory):
    """What `prm score` writes for the traces: (problem, steps, scores) per trace."""
    from prm.cli import main
    from prm.records import read_records

    out = tmp_path_factory.mktemp("serve") / "scored.jsonl"
    assert main(["score", "--model", str(tiny_prm_dir), "--input", str(traces), "--output", str(out)]) in (0, None)
    return [(r.problem, r.steps, r.meta["scores"]) for r in read_records(out)]


@pytest.fixture(scope="module")
def live(tiny_prm_dir):
    with server(tiny_prm_dir, "--max_length", "1024", "--max_body", "40000", "--max_traces", "64") as (port, proc):
        yield port, proc


def test_score_equals_prm_score(live, expected):
    port, _ = live
    scores = [s for _, _, s in expected]
    assert len({round(x, 6) for s in scores for x in s}) > 1  # the tiny PRM's scores differ: a real comparison
    status, one = call(port, "POST", "/score", {"problem": expected[0][0], "steps": expected[0][1]})
    assert status == 200
    assert one["step_scores"] == pytest.approx(scores[0], abs=1e-4)
    assert one["min"] == pytest.approx(min(scores[0]), abs=1e-4) and one["last"] == pytest.approx(
        scores[0][-1], abs=1e-4
    )
    status, many = call(port, "POST", "/score", [{"problem": p, "steps": s} for p, s, _ in expected])
    assert status == 200 and len(many) == len(expected)
    for got, want in zip(many, scores, strict=True):
        assert got["step_scores"] == pytest.approx(want, abs=1e-4)


def test_get_reward_answers_an_openrlhf_request(live, expected):
    port, _ = live
    prompts = [CHATML.format(p=p) for p, _, _ in expected[:4]]
    queries = [pr + "\n".join(s) + "<|im_end|>" for pr, (_, s, _) in zip(prompts, expected[:4], strict=True)]
    queries[3] = prompts[3]  # an empty response: reward 0, no steps
    status, out = call(port, "POST", "/get_reward", {"query": queries, "prompts": prompts, "labels": ["1"] * 4})
    assert status == 200
    assert out["rewards"] == pytest.approx([min(s) for _, _, s in expected[:3]] + [0.0], abs=1e-4)
    assert out["scores"] == out["rewards"]
    assert out["extra_logs"]["prm_steps"] == [len(s) for _, s, _ in expected[:3]] + [0]
    assert all(len(v) == 4 for v in out["extra_logs"].values())  # one value per query, as OpenRLHF stacks them
    assert out["step_scores"][0] == pytest.approx(expected[0][2], abs=1e-4)


def test_health_and_info(live):
    port, _ = live
    assert call(port, "GET", "/health") == (200, {"status": "ok"})
    status, info = call(port, "GET", "/info")
    assert status == 200 and info["readout"] == "head" and info["max_length"] == 1024 and info["version"]
    assert info["calibration"] == [1.0, 0.0]
    assert info["step_tag"]


def test_bad_input_never_takes_the_server_down(live):
    port, _ = live
    cases = bad_inputs(max_length=1024, max_body=40000, max_traces=64)  # the live server's limits
    assert len(cases) >= 10
    for name, path, raw, status, field in cases:
        got, body = call(port, "POST", path, raw=raw)
        assert got == status, name
        assert set(body) == {"error"} and body["error"].split(":")[0] == field, (name, body)
        assert "\n" not in body["error"] and "Traceback" not in body["error"]
    assert call(port, "GET", "/nowhere")[0] == 404
    assert call(port, "GET", "/score")[0] == 405
    assert call(port, "GET", "/health") == (200, {"status": "ok"})  # still answering


def test_bearer_token(tiny_prm_dir):
    import os

    env = {**os.environ, "PRM_SERVE_TOKEN": "s3cret"}
    body = {"problem": "2 + 2?", "steps": ["2 + 2 = 4."]}
    with server(tiny_prm_dir, env=env) as (port, _):
        assert call(port, "GET", "/health")[0] == 200  # probes need no token
        status, out = call(port, "POST", "/score", body)
        assert status == 401 and out["error"].startswith("Authorization:")
        assert call(port, "POST", "/score", body, {"Authorization": "Bearer wrong"})[0] == 401
        assert call(port, "GET", "/info", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(port, "POST", "/score", body, {"Authorization": "Bearer s3cret"})[0] == 200


def test_load_32_clients_nothing_lost(live, expected):
    """32 clients x 20 requests on keep-alive connections, capped at 120 s: every request answered 200 with the
    scores of its own trace."""
    port, _ = live
    deadline = time.monotonic() + 120

    def client(k: int) -> list[tuple[int, bool]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        got = []
        for j in range(20):
            if time.monotonic() > deadline:
                break
            p, s, want = expected[(k + j) % len(expected)]
            status, out = call(port, "POST", "/score", {"problem": p, "steps": s}, conn=conn)
            got.append((status, status == 200 and out["step_scores"] == pytest.approx(want, abs=1e-4)))
        conn.close()
        return got

    with ThreadPoolExecutor(32) as pool:
        results = [r for rs in pool.map(client, range(32)) for r in rs]
    assert len(results) == 32 * 20, "time cap reached"
    assert all(status == 200 and right for status, right in results)
    _, info = call(port, "GET", "/info")
    assert info["rounds"] < info["traces_scored"]  # requests shared forward passes


def test_sigterm_answers_requests_in_flight(tiny_prm_dir, expected):
    # a long collection window holds the requests inside the server when SIGTERM arrives
    with server(tiny_prm_dir, "--window_ms", "1500") as (port, proc):
        results = []

        def one(k):
            p, s, _ = expected[k]
            results.append(call(port, "POST", "/score", {"problem": p, "steps": s})[0])

        threads = [threading.Thread(target=one, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert proc.wait(30) == 0
        assert results == [200] * 6
        assert "stopped" in proc.stdout.read()

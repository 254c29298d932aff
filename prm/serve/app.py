"""The HTTP face of `prm serve` (FastAPI on uvicorn): routes, auth, limits, and errors as one-line JSON reasons.

    POST /score        {"problem": str, "steps": [str]} or a list of them -> step scores and their aggregates
    POST /get_reward   OpenRLHF's {"query": [...], "prompts": [...], "labels": [...]} -> {"rewards", "scores", ...}
    GET  /health       {"status": "ok"} (no token needed: for load balancers and start-up probes)
    GET  /info         backbone, readout, step tag, limits, version

Every refusal is `{"error": "FIELD: reason"}` with a 4xx status; an unexpected failure is a 500 with a one-line
reason and the traceback goes to the server's log, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from prm.rewards import all_aggregates, trace_reward
from prm.serve.batcher import Batcher
from prm.serve.requests import BadInput, parse_json, reward_items, score_items

log = logging.getLogger("prm.serve")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit` bytes: a declared length is checked before reading, a
    chunked body while it streams, so an oversized request costs no memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadInput(413, "body", f"{declared} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadInput(413, "body", f"over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_fits(scorer, items: Sequence[tuple[str, list[str]]], max_length: int, prefix) -> list:
    """The encodings of the traces, or a 413 naming the first trace past the token limit (the server never scores a
    cut trace: a step past the limit would get a score it was never given)."""
    encoded = []
    for i, (problem, steps) in enumerate(items):
        # a byte-level token holds at least one byte, so a short problem cannot pass the limit: count only long ones
        if steps and len(problem.encode()) >= max_length:
            n = len(scorer.tok(f"Problem: {problem}\nSolution:", add_special_tokens=False).input_ids)
            if n >= max_length:  # the encoder would cut the problem to make room for steps
                raise BadInput(413, f"{prefix(i)}problem", f"{n} tokens, over the limit of {max_length}")
        enc = scorer.encode(problem, steps) if steps else None
        if enc is not None and enc.dropped:
            raise BadInput(
                413,
                f"{prefix(i)}steps",
                f"the trace passes the limit of {max_length} tokens at steps[{len(steps) - enc.dropped}]",
            )
        encoded.append(enc)
    return encoded


def create_app(scorer, cfg, info: dict, token: str | None, on_start: Callable[[], Awaitable] | None = None) -> FastAPI:
    """The app around a loaded scorer (`PRMScorer` or anything with its `tok`, `encode` and `score_encoded`);
    `on_start` runs as a task once the app starts (the command announces the address from it)."""
    batcher = Batcher(
        scorer.score_encoded, window_s=cfg.window_ms / 1000, max_wait_s=cfg.max_wait_ms / 1000, budget=cfg.batch_budget
    )

    async def lifespan(app):
        await batcher.start()
        announced = asyncio.create_task(on_start()) if on_start else None
        yield
        if announced is not None:
            announced.cancel()
        await batcher.stop()

    app = FastAPI(title="prm serve", version=info.get("version", ""), lifespan=lifespan, openapi_url=None)
    app.state.batcher = batcher

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        reason = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, f"{request.method} {request.url.path}: {reason}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ("body",)))
        return _error(422, f"{field}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("while answering %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    def authorize(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip().encode(), token.encode()):
            raise BadInput(401, "Authorization", "a valid 'Bearer TOKEN' header is required")

    async def scores_of(items: list[tuple[str, list[str]]], prefix) -> list[list[float]]:
        encoded = check_fits(scorer, items, cfg.max_length, prefix)
        todo = [e for e in encoded if e is not None]
        scored = iter(await batcher.submit(todo) if todo else [])
        return [next(scored) if e is not None else [] for e in encoded]

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def get_info(request: Request):
        authorize(request)
        return {**info, "rounds": batcher.rounds, "traces_scored": batcher.traces}

    @app.post("/score")
    async def score(request: Request):
        authorize(request)
        items, single = score_items(parse_json(await read_body(request, cfg.max_body)), cfg.max_traces)
        scores = await scores_of(items, (lambda i: "") if single else (lambda i: f"[{i}]."))
        out = [{"step_scores": s, **all_aggregates(s)} for s in scores]
        return out[0] if single else out

    @app.post("/get_reward")
    async def get_reward(request: Request):
        authorize(request)
        items = reward_items(parse_json(await read_body(request, cfg.max_body)), cfg.split, cfg.max_traces)
        scores = await scores_of(items, lambda i: f"query[{i}].")
        rewards = [trace_reward(s, cfg.aggregate) for s in scores]
        per = [all_aggregates(s) for s in scores]
        # OpenRLHF turns each extra_logs entry into a tensor, one value per query: ragged step lists would not
        # stack there, so the step scores travel beside it
        extra = {f"prm_{how}": [p[how] for p in per] for how in ("min", "mean", "last")}
        extra["prm_steps"] = [len(s) for s in scores]
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra, "step_scores": scores}

    return app

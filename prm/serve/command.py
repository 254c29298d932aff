"""`prm serve`: load a trained PRM once and answer scoring requests over HTTP until SIGTERM or Ctrl-C.

    prm serve --model data/out/demo/prm --port 5000
    curl -s localhost:5000/score -d '{"problem": "Tom has 3 apples and buys 4.", "steps": ["3 + 4 = 7.", "The answer is 7."]}'

The web stack (fastapi, uvicorn) is the `serve` extra: `pip install 'prm[serve]'`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from prm.serve.config import TOKEN_ENV, ServeConfig


def _stack():
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise SystemExit(f"prm serve: needs the serve extra ({e.name} is missing): pip install 'prm[serve]'") from None
    return uvicorn


def model_info(scorer, cfg: ServeConfig) -> dict:
    import prm

    spec = scorer.prm.spec
    return {
        "model": os.path.abspath(cfg.model),
        "backbone": spec.base,
        "readout": spec.readout,
        "features": spec.feature_set if spec.features else None,
        "calibration": list(spec.calibration),  # (a, b) of sigmoid(a * logit + b): prm calibrate; [1, 0] is none
        "step_tag": scorer.tok.convert_ids_to_tokens(scorer.prm.tag_id),
        "aggregate": cfg.aggregate,
        "split": cfg.split,
        "max_length": cfg.max_length,
        "max_body": cfg.max_body,
        "max_traces": cfg.max_traces,
        "bf16": cfg.bf16,
        "version": prm.__version__,
    }


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before uvicorn starts so that port 0 (any free port) can be printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise SystemExit(f"prm serve: cannot bind {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    return sock


def run(cfg: ServeConfig) -> None:
    uvicorn = _stack()
    from prm.score.prm_scorer import PRMScorer
    from prm.serve.app import create_app

    token = cfg.token or os.environ.get(TOKEN_ENV) or None
    scorer = PRMScorer.from_pretrained(
        cfg.model, max_length=cfg.max_length, batch_tokens=cfg.batch_tokens, bf16=cfg.bf16
    )
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    async def announce():
        # printed once uvicorn accepts connections and handles SIGTERM: a caller waiting for this line may use both
        while not server.started:
            await asyncio.sleep(0.01)
        print(
            f"prm serve: {cfg.model} on http://{shown}:{port} (POST /score, /get_reward; GET /health, /info)"
            + ("; bearer token required" if token else ""),
            flush=True,
        )

    app = create_app(scorer, cfg, model_info(scorer, cfg), token, on_start=announce)
    logging.basicConfig(level=logging.INFO, format="prm serve: %(message)s", stream=sys.stderr)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="info" if cfg.log_requests else "warning",
            access_log=cfg.log_requests,
            timeout_graceful_shutdown=cfg.graceful_s,
            lifespan="on",
        )
    )
    # uvicorn handles SIGTERM/SIGINT while it runs (stop accepting, answer what is in flight), then raises the signal
    # again under the handler it found: with these in place that ends in a normal exit, status 0, not a kill
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    print("prm serve: stopped", flush=True)

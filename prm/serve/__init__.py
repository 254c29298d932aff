"""`prm serve`: a trained PRM as an HTTP reward service (config in prm.serve.config, request checks in
prm.serve.requests, batching in prm.serve.batcher, routes in prm.serve.app, the command in prm.serve.command).

Importing this package needs no web stack; `run` needs the `serve` extra (fastapi, uvicorn)."""

from prm.serve.command import run
from prm.serve.config import ServeConfig

__all__ = ["ServeConfig", "run"]

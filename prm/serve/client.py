"""A small client of `prm serve` on the standard library: start a server as a subprocess, send requests.

    with running("data/out/demo/prm") as (port, proc):
        status, body = call(port, "POST", "/score", {"problem": "...", "steps": ["...", "..."]})

Used by the serve benchmark and the tests; handy from a notebook too.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def running(model: str, *args: str, env: dict | None = None, startup_s: float = 300) -> Iterator[tuple[int, Any]]:
    """`prm serve --model MODEL --port 0 ARGS` in a subprocess; yields (port, process) once it accepts requests;
    on exit sends SIGTERM and waits (kills after 30 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prm", "serve", "--model", str(model), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # the server prints its address once it accepts connections
        if "http://" not in line:
            proc.kill()
            raise RuntimeError(f"prm serve did not start: {line.strip()!r}; stderr: {proc.stderr.read()[-2000:]}")
        port = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict | None = None,
    *,
    raw: bytes | None = None,
    conn: http.client.HTTPConnection | None = None,
    host: str = "127.0.0.1",
) -> tuple[int, Any]:
    """(status, parsed JSON body) of one request. `raw` sends bytes as they are; `conn` reuses a keep-alive
    connection (the caller closes it)."""
    c = conn or http.client.HTTPConnection(host, port, timeout=300)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    try:
        c.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        text = r.read()
    finally:
        if conn is None:
            c.close()
    return r.status, json.loads(text) if text else None

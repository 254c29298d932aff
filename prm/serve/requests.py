"""What `prm serve` accepts: request bodies checked into plain Python values, or one `BadInput` naming the field.

Pure functions, no web framework: the server turns a `BadInput` into its status and a one-line JSON reason, and the
tests call these directly.

    score_items({"problem": "2 + 2?", "steps": ["2 + 2 = 4.", "The answer is 4."]})
    # ([("2 + 2?", ["2 + 2 = 4.", "The answer is 4."])], True)
    reward_items({"query": ["Q: 2 + 2?\\nA: 4"], "prompts": ["Q: 2 + 2?\\nA:"]}, "lines")
    # [("Q: 2 + 2?\\nA:", ["4"])]
"""

from __future__ import annotations

import json
from typing import Any

from prm.records import split_steps
from prm.rewards import split_query


class BadInput(ValueError):
    """A request the server refuses: HTTP `status` and a reason that starts with the field it is about."""

    def __init__(self, status: int, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason = status, field, reason


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")  # JSON over HTTP is UTF-8 (RFC 8259); json.loads would guess other encodings
    except UnicodeDecodeError:
        raise BadInput(400, "body", "is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(400, "body", f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def _type(v: Any) -> str:
    return (
        "null"
        if v is None
        else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(v), type(v).__name__)
    )


def _text(v: Any, field: str) -> str:
    if not isinstance(v, str):
        raise BadInput(422, field, f"must be a string, got {_type(v)}")
    return v


def _array(v: Any, field: str, max_items: int) -> list:
    if not isinstance(v, list):
        raise BadInput(422, field, f"must be an array, got {_type(v)}")
    if not v:
        raise BadInput(422, field, "is empty")
    if len(v) > max_items:
        raise BadInput(413, field, f"has {len(v)} items, over the limit of {max_items}")
    return v


def _trace(obj: Any, where: str) -> tuple[str, list[str]]:
    if not isinstance(obj, dict):
        raise BadInput(422, where or "body", f"must be an object with problem and steps, got {_type(obj)}")
    dot = f"{where}." if where else ""
    unknown = sorted(set(obj) - {"problem", "steps"})
    if unknown:
        raise BadInput(422, f"{dot}{unknown[0]}", "is not a field; send problem and steps")
    for key in ("problem", "steps"):
        if key not in obj:
            raise BadInput(422, f"{dot}{key}", "is missing")
    problem = _text(obj["problem"], f"{dot}problem")
    steps = obj["steps"]
    if not isinstance(steps, list):
        raise BadInput(422, f"{dot}steps", f"must be an array of strings, got {_type(steps)}")
    if not steps:
        raise BadInput(422, f"{dot}steps", "is empty: a trace needs at least one step")
    for i, step in enumerate(steps):
        if not _text(step, f"{dot}steps[{i}]").strip():
            raise BadInput(422, f"{dot}steps[{i}]", "is empty")
    return problem, steps


def score_items(obj: Any, max_traces: int = 512) -> tuple[list[tuple[str, list[str]]], bool]:
    """The traces of a /score body, one object or an array of them, and whether it was one object."""
    if isinstance(obj, dict):
        return [_trace(obj, "")], True
    if isinstance(obj, list):
        _array(obj, "body", max_traces)
        return [_trace(t, f"[{i}]") for i, t in enumerate(obj)], False
    raise BadInput(422, "body", f"must be an object or an array of objects, got {_type(obj)}")


def reward_items(obj: Any, split: str, max_traces: int = 512) -> list[tuple[str, list[str]]]:
    """(problem, steps) per query of an OpenRLHF /get_reward body: {"query": [...], "prompts": [...], "labels":
    [...]}, each query the rendered prompt + response. `prompts` is optional where the queries carry a chat
    template; `labels` (reference answers) are accepted and not used: the PRM judges the steps. A response without a
    step gives an empty step list (the caller rewards it 0)."""
    if not isinstance(obj, dict):
        raise BadInput(422, "body", f"must be an object with query (and prompts), got {_type(obj)}")
    unknown = sorted(set(obj) - {"query", "prompts", "labels"})
    if unknown:
        raise BadInput(422, unknown[0], "is not a field; send query, prompts and labels")
    if "query" not in obj:
        raise BadInput(422, "query", "is missing")
    queries = [_text(q, f"query[{i}]") for i, q in enumerate(_array(obj["query"], "query", max_traces))]
    prompts: list[str | None] = [None] * len(queries)
    if obj.get("prompts") is not None:
        given = _array(obj["prompts"], "prompts", max_traces)
        if len(given) != len(queries):
            raise BadInput(422, "prompts", f"has {len(given)} items for {len(queries)} queries")
        prompts = [_text(p, f"prompts[{i}]") for i, p in enumerate(given)]
    out = []
    for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
        parts = split_query(query, prompt)
        if parts is None:
            reason = (
                f"does not start with prompts[{i}] and has no chat-template assistant turn"
                if prompt is not None
                else "has no chat-template assistant turn: send prompts to split it into prompt and response"
            )
            raise BadInput(422, f"query[{i}]", reason)
        out.append((parts[0], split_steps(parts[1], split)))
    return out

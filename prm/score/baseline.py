"""The training-free baseline: how probable the untrained backbone finds each step, or the result it writes.

Every trained PRM is reported against this score and the position-only floor: design.md measured that the untrained
SmolLM2-135M separates arithmetic slips from correct steps by the log-probability of the written result alone.

    prm score-baseline --input traces.jsonl --output scored.jsonl --model smollm2-135m --mode result

One forward pass per record, over this text (`layout: plain`); the records of one problem (a best-of-N pool) share a
row as a prefix tree by default, so the problem and their common first steps are computed once:

    {problem}\\n{step 0}\\n{step 1}\\n...\\n{step n-1}

`layout: chat` puts the problem in a user turn of the tokenizer's chat template (`prm.generate.build_prompt` with no
system message and no worked examples) and the steps, joined the same way, in the open assistant turn.

The score of a step is the mean log-probability, in nats per token, of some of its tokens given every token before:

- `mode: step`: all tokens of the step;
- `mode: result`: the tokens of the step's written result (`result_span`: the number after the last `=`, else the
  number of "The answer is N" / "#### N"), else, when the step writes no result, all its tokens.

Scores are log-probabilities (<= 0), not probabilities: higher = more likely correct, any monotone use (AUROC,
thresholds) works, calibration does not. A token belongs to a span when its characters overlap it (the offset
mapping of a fast tokenizer), so a token straddling the edge, e.g. " 21" after "=", counts with the span.

Only the needed log-probabilities are computed: the final hidden states at the positions that predict a needed token
are gathered first, then projected by the LM head, a chunk at a time; the vocabulary projection of every position
(B x T x 49,152 floats for SmolLM2) is never formed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from prm.config import ConfigError, config, option, save_config
from prm.models import bf16_autocast, pass_tokens
from prm.records import StepRecord, read_records, write_records
from prm.spans import result_span

Mode = Literal["result", "step"]
Layout = Literal["plain", "chat"]

HEAD_CHUNK = 1024  # rows projected by the LM head at once: 1024 x 49,152 fp32 logits = 200 MB


@config("score-baseline")
class BaselineConfig:
    input: str = option(help="step records to score (JSONL or Parquet)")
    output: str = option(help="scored records (JSONL or Parquet): meta.scores, one per step, and meta.scorer")
    model: str = option("smollm2-135m", "backbone: a local folder, a hub id, or smollm2-135m (the embedded model)")
    mode: Mode = option("result", "result: log-prob of the step's written result; step: of all its tokens")
    layout: Layout = option("plain", "plain: problem, newline, steps joined by newlines; chat: the chat template")
    batch_size: int = option(
        16, "records per forward pass (batches are formed by length); with share_prefixes, per row"
    )
    share_prefixes: bool = option(
        True, "records of one problem share a row as a prefix tree: the same scores from fewer tokens"
    )
    batch_tokens: int = option(
        0, "tokens per forward pass at most, with share_prefixes (0: 1024 on a CPU, 8192 on a GPU)"
    )
    bf16: bool = option(True, "bf16 autocast (weights stay fp32; log-softmax is taken in fp32)")
    limit: int | None = option(None, "score only the first `limit` records")
    trust_remote_code: bool = option(False, "let transformers run code shipped with the model")
    progress: bool = option(True, "show a progress bar on stderr")

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.batch_tokens < 0:
            raise ValueError("batch_tokens must be >= 0 (0: the device's size)")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must be >= 0 or null")


# ---------------------------------------------------------------------------------------------------------------------
# Pure text helpers


def target_span(step: str, mode: Mode) -> tuple[int, int]:
    """The characters of `step` whose tokens make its score: the result in `result` mode when there is one, else all."""
    if mode == "result":
        span = result_span(step)
        if span is not None:
            return span
    elif mode != "step":
        raise ValueError(f"unknown mode {mode!r} (result or step)")
    return 0, len(step)


def layout_text(tokenizer, problem: str, steps: Sequence[str], layout: Layout = "plain") -> tuple[str, list[int]]:
    """The text of a record's forward pass and the character offset at which each step starts (see the module
    docstring). `layout_text(None, "Q?", ["a = 1", "b"]) == ("Q?\\na = 1\\nb", [3, 9])`."""
    if layout == "plain":
        text = problem + "\n"
    elif layout == "chat":
        from prm.generate.prompt import build_prompt

        text = build_prompt(tokenizer, problem, shots=(), system=None)
    else:
        raise ValueError(f"unknown layout {layout!r} (plain or chat)")
    starts = []
    for i, step in enumerate(steps):
        if i:
            text += "\n"
        starts.append(len(text))
        text += step
    return text, starts


def span_tokens(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of the tokens whose characters overlap [start, end), token 0 left out (nothing before predicts it);
    tokens without characters (special tokens, offsets (0, 0)) never count.

    >>> span_tokens([(0, 2), (2, 3), (3, 6), (6, 7), (0, 0)], 3, 7)
    [2, 3]
    """
    return [t for t, (a, b) in enumerate(offsets) if t > 0 and a < b and a < end and b > start]


# ---------------------------------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class _Encoded:
    ids: list[int]
    targets: list[list[int]]  # per step: indices of the tokens whose log-probability is averaged


def encode(tokenizer, record: StepRecord, mode: Mode = "result", layout: Layout = "plain") -> _Encoded:
    """Token ids of `record`'s forward pass and, per step, the indices of its scored tokens."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("the baseline scorer needs a fast tokenizer (character offsets of tokens)")
    text, starts = layout_text(tokenizer, record.problem, record.steps, layout)
    # The chat template already holds its special tokens; the plain text gets whatever the tokenizer adds (a BOS).
    enc = tokenizer(text, add_special_tokens=layout == "plain", return_offsets_mapping=True)
    targets = []
    for i, (step, start) in enumerate(zip(record.steps, starts, strict=True)):
        a, b = target_span(step, mode)
        toks = span_tokens(enc["offset_mapping"], start + a, start + b)
        if not toks:
            raise ValueError(f"record {record.id!r}: step {i} has no token to score")
        targets.append(toks)
    return _Encoded(list(enc["input_ids"]), targets)


def _target_logprobs(model, hidden, targets):
    """log P(targets[j] | the state hidden[j]): (N, H) states and (N,) token ids -> (N,) fp32 log-probabilities,
    projecting `HEAD_CHUNK` rows at a time."""
    import torch

    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)
    out = []
    for lo in range(0, hidden.shape[0], HEAD_CHUNK):
        logits = head(hidden[lo : lo + HEAD_CHUNK]).float()  # (n, V)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        picked = logits.gather(1, targets[lo : lo + HEAD_CHUNK, None])[:, 0]
        out.append(picked - torch.logsumexp(logits, dim=-1))
    return torch.cat(out) if out else torch.zeros(0)


def _score_rows(model, rows: Sequence[Sequence[_Encoded]], pad_id: int, bf16: bool) -> list[list[list[float]]]:
    """Scores of the records of one batch: out[row][record][step]. A row of one record is right-padded under a
    padding mask; a row of several records of one problem is their prefix tree (`prm.fit.rows.tree_rows`), where
    every token sees exactly its own record's context, so the scores are the same from fewer tokens."""
    import torch

    from prm.fit.rows import eager_mask, pad_right, tree_rows

    device = next(model.parameters()).device
    if all(len(r) == 1 for r in rows):
        ids, mask = pad_right([r[0].ids for r in rows], pad_id)  # right padding: real tokens keep their positions
        mask, pos = mask.to(device), None
        paths = [[list(range(len(r[0].ids)))] for r in rows]
    else:
        ids, tree, pos, paths = tree_rows([[e.ids for e in r] for r in rows], pad_id)
        mask = eager_mask(tree.to(device), model, pos)
    b_idx, t_idx, p_idx, segments = [], [], [], []  # one entry per scored token; segment = (record, step) in order
    n_segments = 0
    for b, row in enumerate(rows):
        for e, where in zip(row, paths[b], strict=True):
            for toks in e.targets:
                b_idx += [b] * len(toks)
                t_idx += [where[t] for t in toks]
                p_idx += [where[t - 1] for t in toks]  # the state that predicts the token
                segments += [n_segments] * len(toks)
                n_segments += 1
    b_t, t_t, p_t = torch.tensor(b_idx), torch.tensor(t_idx), torch.tensor(p_idx)
    extra = {} if pos is None else {"position_ids": pos.to(device)}
    with torch.no_grad(), bf16_autocast(device, bf16):
        out = model.base_model(input_ids=ids.to(device), attention_mask=mask, use_cache=False, **extra)
        hidden = out.last_hidden_state[b_t.to(device), p_t.to(device)]  # (N, H)
        lp = _target_logprobs(model, hidden, ids[b_t, t_t].to(device)).cpu()
    seg_t = torch.tensor(segments)
    means = torch.zeros(n_segments, dtype=torch.float64).index_add_(0, seg_t, lp.double())
    means /= torch.bincount(seg_t, minlength=n_segments).double()
    flat = means.tolist()
    out_scores, k = [], 0
    for row in rows:
        out_scores.append([])
        for e in row:
            out_scores[-1].append(flat[k : k + len(e.targets)])
            k += len(e.targets)
    return out_scores


def likelihood_scores(
    model,
    tokenizer,
    records: Sequence[StepRecord],
    *,
    mode: Mode = "result",
    layout: Layout = "plain",
    batch_size: int = 16,
    bf16: bool = False,
    share_prefixes: bool = False,
    batch_tokens: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[list[float]]:
    """Mean log-probability of each step's tokens (`mode="step"`) or of its written result (`mode="result"`), with
    no gradients: `scores[r][i]` scores step i of `records[r]` (nats per token, <= 0).

    Without `share_prefixes`, records are sorted by token count and batched `batch_size` at a time (right padding),
    so a batch wastes little on padding. With it, the records of one problem (up to `batch_size` of them) share a
    row as a prefix tree, and rows are batched up to `batch_tokens` tokens: a best-of-N pool's problem and common
    first steps are computed once. Either way scores come back in input order and do not depend on the batching
    (equal within 1e-4 in fp32). `on_batch(records, tokens)` is called after each batch (progress; tokens counts
    what was computed). Raises ValueError for a record longer than the model's `max_position_embeddings`.
    """
    from types import SimpleNamespace

    from prm.fit.rows import Row, length_batches, packs

    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    encoded = [encode(tokenizer, r, mode, layout) for r in records]
    limit = getattr(model.config, "max_position_embeddings", None)
    for r, e in zip(records, encoded, strict=True):
        if limit and len(e.ids) > limit:
            raise ValueError(f"record {r.id!r} is {len(e.ids)} tokens, more than the model's {limit}")
    # Any id pads: right padding under the attention mask never reaches a scored position.
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    if share_prefixes:
        batch_tokens = pass_tokens(batch_tokens, next(model.parameters()).device.type)
        keyed = [SimpleNamespace(problem=r.problem, input_ids=e.ids) for r, e in zip(records, encoded, strict=True)]
        rows = packs(keyed, SimpleNamespace(share_prefixes=True, batch_size=batch_size, batch_tokens=batch_tokens))
        batches = [[rows[i] for i in b] for b in length_batches([r.width for r in rows], batch_tokens)]
    else:
        order = sorted(range(len(records)), key=lambda i: len(encoded[i].ids))
        batches = [
            [Row([i], len(encoded[i].ids)) for i in order[lo : lo + batch_size]]
            for lo in range(0, len(order), batch_size)
        ]
    scores: list[list[float]] = [[] for _ in records]
    for batch in batches:
        per_row = _score_rows(model, [[encoded[i] for i in row.items] for row in batch], pad_id, bf16)
        for row, row_scores in zip(batch, per_row, strict=True):
            for i, s in zip(row.items, row_scores, strict=True):
                scores[i] = s
        if on_batch is not None:
            on_batch(sum(len(row.items) for row in batch), sum(row.width for row in batch))
    return scores


# ---------------------------------------------------------------------------------------------------------------------
# The command


def run(cfg: BaselineConfig) -> dict:
    """Score `cfg.input` and write `cfg.output` (atomically) with the resolved config beside it."""
    from tqdm import tqdm

    from prm.models import load
    from prm.score.scores import attach_scores

    records = read_records(cfg.input)
    if cfg.limit is not None:
        records = records[: cfg.limit]
    model, tok = load(cfg.model, trust_remote_code=cfg.trust_remote_code)
    bar = tqdm(total=len(records), unit="rec", disable=not cfg.progress, desc="score-baseline", mininterval=2.0)
    tokens = 0
    t0 = time.perf_counter()

    def progress(n: int, n_tokens: int) -> None:
        nonlocal tokens
        tokens += n_tokens
        bar.update(n)
        bar.set_postfix(tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")

    try:
        scores = likelihood_scores(
            model,
            tok,
            records,
            mode=cfg.mode,
            layout=cfg.layout,
            batch_size=cfg.batch_size,
            bf16=cfg.bf16,
            share_prefixes=cfg.share_prefixes,
            batch_tokens=cfg.batch_tokens,
            on_batch=progress,
        )
    except ValueError as e:
        raise ConfigError(f"{cfg.input}: {e}") from None
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    scorer = f"loglik-{cfg.mode}"
    for r, s in zip(records, scores, strict=True):
        attach_scores(r, s, scorer)
    write_records(records, cfg.output)
    save_config(cfg, cfg.output)
    summary = {
        "records": len(records),
        "steps": sum(len(r.steps) for r in records),
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
    }
    print(
        f"prm score-baseline: scored {summary['steps']} steps of {len(records)} records ({scorer}, {cfg.model}) "
        f"into {cfg.output}; {tokens} tokens in {seconds:.1f} s, {summary['tokens_per_s'] or 0:.0f} tok/s"
    )
    return summary

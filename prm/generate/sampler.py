"""Batched sampling from a causal LM with a KV cache, stopping each sequence at its answer line.

Why our own loop rather than `model.generate`: a sequence that has written its answer line leaves the batch at once
(its rows are dropped from the KV cache), so no compute goes to tokens after the answer; each prompt is prefilled
once and its cache copied for its N samples; and every sample draws its randomness from its own generator, seeded by
(seed, key, sample index), so a sample does not depend on which other prompts share its batch — a resumed run
writes what an uninterrupted one would have. The generators live on the model's device, so the same seed gives
the same samples on the same kind of device only (a GPU's random stream differs from a CPU's).

    samples = sample(model, tok, ["prompt a", "prompt b"], n=8, params=SamplingParams(temperature=0.8))
    samples[1][3].text   # the 4th sample of prompt b, cut after its answer line
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from prm.answers import extract_answer
from prm.models import bf16_autocast, use_bf16


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.8  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 32  # sequences decoded together
    bf16: bool = True  # bf16 autocast (CPU or CUDA); load the weights with `weights_dtype(True)` too
    seed: int = 0
    stop_at: str = "answer"  # "answer": stop after the answer line | "line": stop after the first non-empty line

    def __post_init__(self):
        if self.stop_at not in ("answer", "line"):  # checked here, so that neither engine has to
            raise ValueError(f"stop_at must be 'answer' or 'line', got {self.stop_at!r}")


@dataclass(frozen=True)
class Sample:
    text: str  # the completion, cut after the answer line (no end-of-turn token)
    tokens: int  # tokens generated, the stopping token included
    stop: str  # "answer" (answer line complete), "line" (stop_at="line": a step line complete), "eos" (end of
    # turn) or "length" (max_new_tokens)
    logprob: float = 0.0  # sum of the model's log-probabilities (temperature 1) of every generated token


def weights_dtype(bf16: bool) -> str:
    """The dtype to load a policy's weights in. With bf16, weights stored in bf16 run about 1.4x faster on this CPU
    than fp32 weights under autocast (which casts every weight matrix again at every decode step); the matmuls see
    the same bf16 operands either way, only norms and residual adds lose their fp32 copy. fp32 where the device
    would emulate bf16 (`prm.models.use_bf16`)."""
    return "bfloat16" if use_bf16(bf16, "cuda" if torch.cuda.is_available() else "cpu") else "float32"


def answer_line_end(text: str) -> int | None:
    """Index just past the first complete line (newline-terminated) that states a final answer, else None.

    >>> answer_line_end("3 + 4 = 7\\nThe answer is 7.\\nExtra")
    27
    """
    start = 0
    while (nl := text.find("\n", start)) != -1:
        if extract_answer(text[start:nl]) is not None:
            return nl + 1
        start = nl + 1
    return None


def first_line_end(text: str) -> int | None:
    """Index just past the first newline that ends a non-empty line (leading blank lines are skipped), else None.

    >>> first_line_end("\\n3 + 4 = 7\\nmore"), first_line_end("  \\n")
    (11, None)
    """
    start = 0
    while (nl := text.find("\n", start)) != -1:
        if text[start:nl].strip():
            return nl + 1
        start = nl + 1
    return None


def _line_stop(text: str, tokens: int, by_line: bool, logprob: float = 0.0) -> Sample | None:
    """The sample ending at this newline, if it ends one: after the answer line, or (by_line) after the first step."""
    if (end := answer_line_end(text)) is not None:
        return Sample(text[: end - 1], tokens, "answer", logprob)
    if by_line and (end := first_line_end(text)) is not None:
        return Sample(text[: end - 1], tokens, "line", logprob)
    return None


def _row_seed(seed: int, key: str, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{key}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _choose(logits: torch.Tensor, gens: list[torch.Generator], temperature: float, top_p: float) -> torch.Tensor:
    """Next token per row. logits: (rows, vocab) float32 -> (rows,) int64.

    Gumbel-max with per-row noise is an exact sample from softmax(logits / T) and lets each row use its own
    generator (torch.multinomial takes one generator for the whole batch). The noise is drawn on the logits' device
    (each generator lives there): on a GPU, drawing it on the CPU and copying full-vocabulary logits back at every
    step used to cost more than the model's forward pass."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Drop a token once the mass before it already reaches top_p; the most likely token always stays.
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    u = torch.stack([torch.rand(logits.shape[-1], generator=g, device=logits.device) for g in gens])
    u = u.clamp_(1e-10, 1.0)
    return (logits - torch.log(-torch.log(u))).argmax(-1)


def _stop_ids(tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for tok in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return ids


def _cache_kwarg(model) -> str:
    # transformers 5 renamed the forward argument `past_key_values` to `cache`; accept both generations.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    if t.shape[dim] == width:
        return t
    shape = list(t.shape)
    shape[dim] = width - t.shape[dim]
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _new_cache():
    """A DynamicCache whose layers grow by doubling a buffer instead of concatenating on every step.

    DynamicLayer.update copies the whole cache once per token (torch.cat): at batch 32 and 400 tokens of context
    that is about half a gigabyte of memory traffic per step on the 135M model, more than the matmuls cost on a CPU.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        @property
        def keys(self):
            return self._k[:, :, : self._n] if self._k.dim() == 4 else self._k

        @keys.setter
        def keys(self, t):
            self._k = t
            self._n = t.shape[2] if t is not None and t.dim() == 4 else 0

        # Keys and values each keep their own length, so that setting one never changes what the other reads
        # (when the keys setter also set the values' length, a merge that set keys first read the values through
        # the new length: stale buffer columns, misaligned rows).
        @property
        def values(self):
            return self._v[:, :, : self._nv] if self._v.dim() == 4 else self._v

        @values.setter
        def values(self, t):
            self._v = t
            self._nv = t.shape[2] if t is not None and t.dim() == 4 else 0

        def batch_select_indices(self, indices):
            # Index the whole buffer, so that the spare capacity survives and the next step copies nothing.
            if self._n:
                self._k, self._v = self._k[indices], self._v[indices]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, add = self._n, key_states.shape[2]
            if self._k.dim() != 4 or self._k.shape[0] != key_states.shape[0]:
                k, v = (self._k, self._v) if self._k.dim() == 4 else (key_states[:, :, :0], value_states[:, :, :0])
                cap = max(64, 2 * (n + add))
                self._k = _pad_right(k, cap)
                self._v = _pad_right(v, cap)
            elif n + add > self._k.shape[2]:
                cap = 2 * (n + add)
                self._k, self._v = _pad_right(self._k[:, :, :n], cap), _pad_right(self._v[:, :, :n], cap)
            self._k[:, :, n : n + add] = key_states
            self._v[:, :, n : n + add] = value_states
            self._n = self._nv = n + add
            return self.keys, self.values

    cache = DynamicCache()
    cache.layer_class_to_replicate = BufferLayer
    return cache


def _pad_right(t: torch.Tensor, width: int) -> torch.Tensor:
    out = t.new_zeros((*t.shape[:2], width, t.shape[3]))
    out[:, :, : t.shape[2]] = t
    return out


class _Batch:
    """The rows being decoded: a shared KV cache (rows x heads x time x dim per layer), left-padded so that every
    row's next token lands in the same column, with the attention mask and next position per row."""

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.kwarg = _cache_kwarg(model)
        self.cache = _new_cache()
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.pos = torch.zeros((0,), dtype=torch.long, device=device)
        self.logits = torch.zeros((0, 0), device=device)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache, bf16: bool) -> torch.Tensor:
        with bf16_autocast(self.model, bf16):
            res = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=pos,
                use_cache=True,
                logits_to_keep=1,
                **{self.kwarg: cache},
            )
        return res.logits[:, -1, :].float()

    def admit(self, prompts: list[list[int]], copies: list[int], pad: int, bf16: bool) -> None:
        """Prefill each prompt once, copy its cache to its rows (copies[r] = prompt index of new row r), and merge."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for j, p in enumerate(prompts):
            ids[j, width - len(p) :] = torch.tensor(p)
            mask[j, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp_(min=0)
        cache = _new_cache()
        logits = self.forward(ids, mask, pos, cache, bf16)
        sel = torch.tensor(copies, dtype=torch.long, device=self.device)
        cache.batch_select_indices(sel)
        mask, pos, logits = mask[sel], pos[sel, -1], logits[sel]
        if self.mask.shape[0] == 0:
            self.cache, self.mask, self.pos, self.logits = cache, mask, pos, logits
            return
        t = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([_pad_left(old.keys, t, 2), _pad_left(new.keys, t, 2)])
            old.values = torch.cat([_pad_left(old.values, t, 2), _pad_left(new.values, t, 2)])
        self.mask = torch.cat([_pad_left(self.mask, t, 1), _pad_left(mask, t, 1)])
        self.pos = torch.cat([self.pos, pos])
        self.logits = torch.cat([self.logits, logits])

    def keep(self, rows: list[int]) -> None:
        sel = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.cache.batch_select_indices(sel)
        self.mask, self.pos, self.logits = self.mask[sel], self.pos[sel], self.logits[sel]
        # Columns that are padding for every remaining row (left behind by finished long rows) cost attention
        # time on every later step: drop them.
        cut = int((self.mask.cumsum(1) == 0).sum(1).min()) if rows else 0
        if cut:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, cut:], layer.values[:, :, cut:]
            self.mask = self.mask[:, cut:]

    def step(self, tokens: list[int], bf16: bool) -> None:
        n = len(tokens)
        self.mask = torch.cat([self.mask, torch.ones((n, 1), dtype=self.mask.dtype, device=self.device)], dim=1)
        self.pos = self.pos + 1
        ids = torch.tensor(tokens, device=self.device)[:, None]
        self.logits = self.forward(ids, self.mask, self.pos[:, None], self.cache, bf16)


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: Sequence[str],
    n: int,
    params: SamplingParams,
    *,
    keys: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_prompt_done: Callable[[int, list[Sample]], None] | None = None,
) -> list[list[Sample]]:
    """n samples for each prompt: result[i][k] is sample k of prompts[i].

    Continuous batching: up to `batch_size` rows decode together; a row leaves when it stops and rows of the next
    prompts join (prefilled once per prompt) as soon as there is room for them. keys[i] names prompt i for
    seeding (default: its index); on_progress(rows_finished, tokens) is called as rows finish, and
    on_prompt_done(i, samples) as soon as all n samples of prompt i are done (so callers can write them at once).
    """
    keys = [str(i) for i in range(len(prompts))] if keys is None else list(keys)
    device = next(model.parameters()).device
    encoded = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    queue = [(i, k) for i in range(len(prompts)) for k in range(n)]
    queue.reverse()  # pop() from the end takes rows in prompt order
    out: list[list[Sample | None]] = [[None] * n for _ in prompts]
    pending = [n] * len(prompts)
    stop_ids = _stop_ids(tokenizer)
    by_line = params.stop_at == "line"
    newline_ids = _newline_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = _Batch(model, device)
    rows: list[tuple[int, int]] = []  # (prompt, sample) of each cache row
    gens: list[torch.Generator] = []
    toks: list[list[int]] = []
    lps: list[float] = []  # log-probability of each row's tokens so far (search priors use it)
    # Prefilling costs a few decode steps, so wait until a prompt's worth of rows is free (or the queue is short).
    refill = max(1, min(n, params.batch_size // 4))
    while queue or rows:
        free = params.batch_size - len(rows)
        if queue and (free >= min(refill, len(queue)) or not rows):
            new = [queue.pop() for _ in range(min(free, len(queue)))]
            uniq = sorted({i for i, _ in new})
            batch.admit([encoded[i] for i in uniq], [uniq.index(i) for i, _ in new], pad, params.bf16)
            rows += new
            gens += [torch.Generator(device).manual_seed(_row_seed(params.seed, keys[i], k)) for i, k in new]
            toks += [[] for _ in new]
            lps += [0.0 for _ in new]
        chosen = _choose(batch.logits, gens, params.temperature, params.top_p)
        step_lp = torch.log_softmax(batch.logits, -1).gather(1, chosen[:, None])[:, 0].tolist()
        nxt = chosen.tolist()
        keep, finished, spent = [], 0, 0
        for r, t in enumerate(nxt):
            toks[r].append(t)
            lps[r] += step_lp[r]
            done = None
            if t in stop_ids:
                done = Sample(tokenizer.decode(toks[r][:-1], skip_special_tokens=True), len(toks[r]), "eos", lps[r])
            elif t in newline_ids:  # only a newline can complete a line: decode then, not at every token
                done = _line_stop(tokenizer.decode(toks[r]), len(toks[r]), by_line, lps[r])
            if done is None and len(toks[r]) >= params.max_new_tokens:
                text = tokenizer.decode(toks[r], skip_special_tokens=True)
                done = Sample(text, len(toks[r]), "length", lps[r])
            if done is None:
                keep.append(r)
            else:
                i, k = rows[r]
                out[i][k] = done
                finished, spent = finished + 1, spent + done.tokens
                pending[i] -= 1
                if pending[i] == 0 and on_prompt_done:
                    on_prompt_done(i, out[i])
        if len(keep) < len(rows):
            batch.keep(keep)
            rows, gens, toks = [rows[r] for r in keep], [gens[r] for r in keep], [toks[r] for r in keep]
            lps = [lps[r] for r in keep]
            nxt = [nxt[r] for r in keep]
            if on_progress:
                on_progress(finished, spent)
        if rows:
            batch.step(nxt, params.bf16)
    return out  # type: ignore[return-value]


def _newline_ids(tokenizer) -> frozenset[int]:
    """Ids of tokens whose text contains a newline: only these can complete an answer line. Computed once per
    tokenizer (a pass over the vocabulary) and kept on it."""
    cached = getattr(tokenizer, "_prm_newline_ids", None)
    if cached is None:
        ids = sorted(tokenizer.get_vocab().values())
        texts = tokenizer.batch_decode([[i] for i in ids])
        cached = frozenset(i for i, t in zip(ids, texts, strict=True) if "\n" in t)
        tokenizer._prm_newline_ids = cached
    return cached

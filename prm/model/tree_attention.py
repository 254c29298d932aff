"""Attention over a prefix-tree row that computes only what the tree mask lets through.

A best-of-N pool scored as prefix trees (`prm.fit.rows.tree_rows`) puts the problem once and each trace's own steps
after it: a token sees the shared prompt, its ancestors and its own earlier tokens, and nothing of the other traces.
SDPA with a boolean mask still computes every (query, key) pair: on the demo's pool most of them are masked out,
and attention was a fifth of the scoring time on a CPU. Here the queries go in chunks; each chunk attends only to
the keys that some query of the chunk sees (gathered), under the same mask restricted to them. Keys left out would
get zero weight, so the result is exact (tests compare it with plain SDPA).

The plan (which keys each chunk needs) depends on the mask only, so it is made once per forward pass and handed to
every layer. `sparse_tree_attention(model)` switches the model to this kernel for the duration of a forward pass;
without a plan the kernel is plain SDPA.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
import torch.nn.functional as F

NAME = "prm_tree_sdpa"
_registered = False


class Plan(NamedTuple):
    """Where each query chunk's keys are: chunks of `size` queries, all rows' chunks stacked (row-major)."""

    size: int
    keys: torch.Tensor  # (chunks, K) flat positions (row * T + position) of the keys each chunk sees, padded
    mask: torch.Tensor  # (chunks, 1, size, K) the tree mask restricted to those keys (False on the padding)


def tree_plan(mask: torch.Tensor, size: int = 64) -> Plan:
    """The plan for a boolean tree mask (rows, 1, T, T): query chunks of `size` tokens and the keys each needs."""
    rows, _, width, _ = mask.shape
    n = -(-width // size)
    m = torch.zeros((rows, n * size, width), dtype=torch.bool, device=mask.device)
    m[:, :width] = mask[:, 0]
    m[:, width:, 0] = True  # the padding queries past the row's end see one key: no empty softmax row
    blocks = m.view(rows * n, size, width)
    seen = blocks.any(1)  # (chunks, T): the keys some query of the chunk sees
    counts = seen.sum(1)
    k = int(counts.max())
    # the seen positions first, in order; the rest of each chunk's K slots point at masked-out keys
    order = torch.sort((~seen).to(torch.int8), dim=1, stable=True).indices[:, :k]  # (chunks, K)
    valid = torch.arange(k, device=mask.device)[None, :] < counts[:, None]
    sub = torch.gather(blocks, 2, order[:, None, :].expand(-1, size, -1)) & valid[:, None, :]
    row = torch.arange(rows, device=mask.device).repeat_interleave(n)
    return Plan(size, order + row[:, None] * width, sub[:, None])


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, tree_plan=None, **kwargs):
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    # a kernel argument this chunked path does not apply (attention sinks, logit soft-capping) goes to SDPA's own
    # code, which applies it or says it cannot
    if tree_plan is None or any(kwargs.get(k) is not None for k in ("s_aux", "softcap", "position_bias")):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    rows, heads, width, dim = query.shape
    size, n = tree_plan.size, tree_plan.keys.shape[0] // rows
    q = F.pad(query, (0, 0, 0, n * size - width))  # (rows, heads, n * size, dim)
    q = q.view(rows, heads, n, size, dim).transpose(1, 2).reshape(rows * n, heads, size, dim)
    flat = lambda x: x.transpose(1, 2).reshape(rows * width, heads, dim)  # noqa: E731
    k = flat(key)[tree_plan.keys].transpose(1, 2)  # (chunks, heads, K, dim)
    v = flat(value)[tree_plan.keys].transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=tree_plan.mask, dropout_p=dropout, scale=scaling)
    out = out.view(rows, n, heads, size, dim).transpose(2, 3).reshape(rows, n * size, heads, dim)
    return out[:, :width].contiguous(), None


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(NAME, _attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
        _registered = True


@contextlib.contextmanager
def sparse_tree_attention(model):
    """Run `model` (an SDPA model) with this kernel inside the block; its own setting comes back after."""
    _register()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before

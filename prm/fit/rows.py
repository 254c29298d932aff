"""Batch layout shared by every trainer and scorer: right padding, prefix trees, length-grouped batches and rows.

A row holds one sequence, or (shared prefixes) several sequences of one problem merged into a prefix tree under a
tree mask, so that a common prefix (the prompt, the first steps) is stored and computed once. Items are anything
with `input_ids` (a list of token ids) and `problem` (the key under which items may share a row).

    rows = packs(items, cfg)                        # which items share a row, and each row's width
    for batch in epoch_batches(items, cfg, epoch, rows=rows): ...
    ids, mask, pos, paths = tree_rows([[a.input_ids, b.input_ids], [c.input_ids]], pad_id)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import torch


class Packable(Protocol):
    input_ids: list[int]
    problem: str


def pad_right(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of token sequences padded on the right: real tokens keep their positions."""
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for b, x in enumerate(seqs):
        ids[b, : len(x)] = torch.tensor(x)
        mask[b, : len(x)] = 1
    return ids, mask


def prefix_tree(seqs: Sequence[Sequence[int]]) -> tuple[list[int], list[int], list[list[int]]]:
    """Token sequences merged into one prefix tree: (token of each node, parent node of each (-1 at the root), the
    node path of each sequence). Nodes are numbered in insertion order, so a parent always precedes its children.

    >>> prefix_tree([[5, 6, 7], [5, 6, 8], [9]])
    ([5, 6, 7, 8, 9], [-1, 0, 1, 1, -1], [[0, 1, 2], [0, 1, 3], [4]])
    """
    tokens: list[int] = []
    parent: list[int] = []
    child: dict[tuple[int, int], int] = {}
    paths = []
    for seq in seqs:
        node, path = -1, []
        for t in seq:
            nxt = child.get((node, t))
            if nxt is None:
                nxt = child[(node, t)] = len(tokens)
                tokens.append(t)
                parent.append(node)
            path.append(nxt)
            node = nxt
        paths.append(path)
    return tokens, parent, paths


def tree_rows(
    groups: Sequence[Sequence[Sequence[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[list[list[int]]]]:
    """One row per group of token sequences, each group merged into its prefix tree.

    Returns input ids (rows, T), a boolean tree mask (rows, 1, T, T): a token attends to itself and its ancestors,
    position ids (rows, T): each token's depth, and paths[g][s][j]: the row position of token j of sequence s of
    group g. Every token so sees exactly the context it has in its own sequence: the logits equal those of separate
    rows (tests check), at a fraction of the tokens when sequences share a prompt or their first steps."""
    trees = [prefix_tree(g) for g in groups]
    width = max(len(t[0]) for t in trees)
    ids, _ = pad_right([t[0] for t in trees], pad_id)
    mask = torch.zeros((len(groups), 1, width, width), dtype=torch.bool)
    pos = torch.zeros((len(groups), width), dtype=torch.long)
    for b, (_, parent, _) in enumerate(trees):
        m = mask[b, 0]
        m[range(width), range(width)] = True  # padding attends to itself only: no empty softmax row
        for i, p in enumerate(parent):
            if p >= 0:  # a node sees what its parent sees, and itself
                m[i] |= m[p]
                pos[b, i] = pos[b, p] + 1
    return ids, mask, pos, [t[2] for t in trees]


def _additive(mask: torch.Tensor, kernel: str) -> torch.Tensor:
    if kernel == "eager":
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(
            ~mask, torch.finfo(torch.float32).min
        )
    return mask


def eager_mask(mask: torch.Tensor, backbone, position_ids: torch.Tensor | None = None):
    """A boolean tree mask (rows, 1, T, T) as the backbone's attention kernel takes it: SDPA takes booleans as they
    are, eager attention adds its mask (0 where seen, the dtype's minimum elsewhere). Other kernels cannot take a
    4D mask.

    A model with sliding-window attention (Mistral, the sliding layers of Gemma 2/3, Qwen2 with use_sliding_window)
    builds the window into the mask it makes itself, and takes a 4D mask as given: so the window is applied here,
    by position (a token sees an ancestor less than `sliding_window` positions back; with position ids set to the
    depth in the tree, exactly what it would see in its own row). Where only some layers slide, the model gets one
    mask per layer type (a dict, which these models accept). Without position ids a 4D mask is used as it is."""
    kernel = getattr(backbone.config, "_attn_implementation", "sdpa")
    if mask.dim() != 4:
        return mask
    if kernel not in ("sdpa", "eager"):
        raise ValueError(f"shared rows need sdpa or eager attention, not {kernel!r}: set share_prefixes false")
    cfg = backbone.config
    cfg = getattr(cfg, "text_config", None) or cfg
    window = getattr(cfg, "sliding_window", None)
    types = set(getattr(cfg, "layer_types", None) or (["sliding_attention"] if window else ["full_attention"]))
    if not window or "sliding_attention" not in types or position_ids is None:
        return _additive(mask, kernel)
    pos = position_ids.to(mask.device)
    windowed = mask & ((pos[:, None, :, None] - pos[:, None, None, :]) < window)
    if types == {"sliding_attention"}:
        return _additive(windowed, kernel)
    return {"full_attention": _additive(mask, kernel), "sliding_attention": _additive(windowed, kernel)}


def length_batches(
    lengths: Sequence[int], batch_tokens: int, max_items: int | None = None, sizes: Sequence[int] | None = None
) -> list[list[int]]:
    """Indices grouped into batches of similar length, each at most `batch_tokens` padded tokens (at least one item)
    and at most `max_items` items, an item counting as sizes[i] of them (default 1; a row of several records counts each).

    >>> length_batches([5, 100, 6, 90], 200)
    [[0, 2], [3, 1]]
    >>> length_batches([5, 100, 6, 90], 200, max_items=1)
    [[0], [2], [3], [1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    size = (lambda i: 1) if sizes is None else sizes.__getitem__
    batches, cur, width, count = [], [], 0, 0
    for i in order:
        w = max(width, lengths[i])
        full = max_items is not None and count + size(i) > max_items
        if cur and (w * (len(cur) + 1) > batch_tokens or full):
            batches.append(cur)
            cur, w, count = [], lengths[i], 0
        cur.append(i)
        width, count = w, count + size(i)
    if cur:
        batches.append(cur)
    return batches


class Row(NamedTuple):
    """Items laid out in one batch row, and the row's width: its prefix tree's size (the tokens it computes)."""

    items: list[int]
    width: int


def packs(items: Sequence[Packable], cfg) -> list[Row]:
    """Items that share a row: with cfg.share_prefixes, the items of one problem in file order, a row at most
    cfg.batch_tokens wide and at most cfg.batch_size records (8 without a cap); else one each."""
    if not cfg.share_prefixes:
        return [Row([i], len(it.input_ids)) for i, it in enumerate(items)]
    cap = cfg.batch_size or 8  # without a cap, a problem with many traces would make one very wide row
    by_problem: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_problem.setdefault(it.problem, []).append(i)
    out = []
    for members in by_problem.values():
        cur = Row([], 0)
        for i in members:
            width = len(prefix_tree([items[j].input_ids for j in [*cur.items, i]])[0])
            if cur.items and (len(cur.items) >= cap or width > cfg.batch_tokens):
                out.append(cur)
                cur, width = Row([], 0), len(items[i].input_ids)
            cur = Row([*cur.items, i], width)
        out.append(cur)
    return out


def epoch_batches(
    items: Sequence[Packable], cfg, epoch: int, processes: int = 1, rank: int = 0, rows: list[Row] | None = None
) -> list[list[Row]]:
    """This process's micro-batches of an epoch, in a seeded order: each a list of rows (see `packs`; pass them as
    `rows` to skip recomputing). With several processes each takes every `processes`-th batch and the remainder (at
    most processes - 1 batches) is left out, so that every process runs the same number of steps: a process that
    ran out early would leave the others waiting in their all-reduce."""
    rows = packs(items, cfg) if rows is None else rows
    batches = length_batches([r.width for r in rows], cfg.batch_tokens, cfg.batch_size, [len(r.items) for r in rows])
    random.Random(cfg.seed * 1000 + epoch).shuffle(batches)
    if processes > 1:
        batches = batches[: len(batches) // processes * processes][rank::processes]
    return [[rows[r] for r in b] for b in batches]

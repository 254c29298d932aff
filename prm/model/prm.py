"""The PRM: a causal-LM backbone (LoRA or full fine-tuning), a step tag after every step, and a readout at the tags.

Readouts (one logit per step; P(step correct) = sigmoid(logit)):
- `head`: a linear layer on the hidden state at the tag.
- `tokens`: the LM head's logits of two label tokens at the tag, softmax over the pair (Math-Shepherd style);
  only those two rows of the LM head are multiplied, never the whole vocabulary.
- `features` (on by default, added to either): the backbone's own log-likelihood of what the step wrote — the mean
  log-probability of its result tokens, the mean and the minimum over its equation's tokens — through a learned
  linear map. design.md records why: the untrained LM head already separates arithmetic slips (AUROC 0.93), while
  a readout trained for CPU-minutes learns little beyond step position. These log-probabilities are computed only at
  the few positions that need them (hidden states gathered first, then projected).

Batch layout (from `collate`): input_ids/attention_mask (B, T); tag_b/tag_t (N,) the batch row and position of
every step tag; feat_b/feat_t/feat_p/feat_step/feat_kind (M,) the tokens the features read, the position each is
predicted from, the step (0..N-1) each belongs to and which feature (0 result, 1 equation, 2-4 the operation's
parts, 5 the whole step); step_calc (N,) the calculator's verdict on each step. `collate_shared` lays
several traces of one problem in one row as a prefix tree: a boolean (B, 1, T, T) tree mask and position_ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from prm.fit.rows import eager_mask, pad_right, tree_rows
from prm.model.encode import Encoded
from prm.model.tree_attention import sparse_tree_attention, tree_plan
from prm.models import decoder

# result mean, equation mean, equation min, has-equation indicator; with the `operation` feature set also the mean
# log-probability of the operation's first operand, operator and second operand, read apart: the backbone's own
# expectation of which number and which operation come next, whatever words the sentence uses; with `calc` also the
# calculator's verdict on the step's equations (`prm.model.encode.calc_verdict`): arithmetic slips are the errors a
# calculator sees exactly, so the readout need not learn them from likelihoods; with `step` also the mean
# log-probability of every token of the step: whether its words and its operation fit the problem as the backbone
# reads it. A backbone that has learned the task scores a wrong operation low over the whole sentence ("gives away 3,
# so she has 12 + 3") where the operation's three tokens alone say less (measured in the README's best-of-N section).
N_FEATURES = {"equation": 4, "operation": 7, "calc": 8, "step": 9}
_PARTS = (2, 3, 4)  # feat_kind of the operation's three parts; 0 result, 1 equation
_STEP = 5  # feat_kind of the whole step's tokens
# (feat_kind, column) of each feature that is a mean of token log-probabilities. Kinds are numbered in column order
# (column 7, the calculator's verdict, reads no tokens), so a feature set of n columns reads the kinds whose column
# is below n: always a prefix 0..k-1 of the kinds.
_MEANS = ((0, 0), (1, 1), *((k, 2 + k) for k in _PARTS), (_STEP, 8))


@dataclass(frozen=True)
class Spec:
    """What a checkpoint needs to rebuild the PRM around its backbone (saved as prm_spec.json)."""

    base: str
    readout: str = "head"  # head | tokens
    features: bool = True
    # "base": the features come from the backbone with its adapter switched off (one more forward pass, no grad),
    # so training the readout cannot wear away the LM's arithmetic knowledge that they measure.
    # "adapted": from the same pass as the readout (cheaper; the LoRA may reshape them).
    features_from: str = "base"
    # "equation" (4 features; checkpoints saved before the operation features load as this), "operation" (7),
    # "calc" (8) or "step" (9): `N_FEATURES`.
    feature_set: str = "equation"
    max_length: int = 512
    label_tokens: tuple[str, str] = (" correct", " wrong")
    # Platt scaling (a, b) of the step logits as scorers read them: P = sigmoid(a * logit + b). Training always
    # sees the raw logit; `prm calibrate` fits the pair afterwards on a calibration set (`prm.calibrate`).
    calibration: tuple[float, float] = (1.0, 0.0)

    def to_json(self) -> dict:
        return asdict(self)


class PRM(nn.Module):
    def __init__(self, backbone: nn.Module, tokenizer, spec: Spec, tag_id: int):
        super().__init__()
        self.backbone, self.spec, self.tag_id = backbone, spec, tag_id
        # prefix-tree rows attend only where the tree mask lets them (`prm.model.tree_attention`); a scorer sets it
        self.sparse_trees = False
        hidden = backbone.get_input_embeddings().weight.shape[1]
        self.head = nn.Linear(hidden, 1) if spec.readout == "head" else None
        if spec.readout == "tokens":
            ids = [tokenizer(t, add_special_tokens=False).input_ids for t in spec.label_tokens]
            if any(len(i) != 1 for i in ids):
                raise ValueError(f"label tokens {spec.label_tokens} must each encode to one token, got {ids}")
            self.register_buffer("label_ids", torch.tensor([ids[0][0], ids[1][0]]), persistent=False)
        elif spec.readout != "head":
            raise ValueError(f"readout must be 'head' or 'tokens', got {spec.readout!r}")
        if spec.feature_set not in N_FEATURES:
            raise ValueError(f"feature_set must be one of {list(N_FEATURES)}, got {spec.feature_set!r}")
        self.n_features = N_FEATURES[spec.feature_set]
        self.feat = nn.Linear(self.n_features, 1) if spec.features else None
        if self.feat is not None:
            # Start at the training-free baseline's direction (more likely tokens = more likely correct). From zero,
            # the first updates use these always-negative log-probabilities as a stand-in bias and learn the
            # opposite sign, which takes most of a CPU budget to undo (seen in a run: slips AUROC 0.16 at step 25).
            with torch.no_grad():
                self.feat.weight.copy_(torch.tensor([[0.5, 0.5, 0.1, 0.0, 0.1, 0.1, 0.1, 1.0, 1.0][: self.n_features]]))
                self.feat.bias.zero_()

    def init_bias(self, p_correct: float) -> None:
        """Start the readout at the training labels' base rate, so early gradients learn the signal, not the prior."""
        p = min(max(p_correct, 0.01), 0.99)
        bias = self.head.bias if self.head is not None else (self.feat.bias if self.feat is not None else None)
        if bias is not None:
            with torch.no_grad():
                bias.fill_(float(torch.logit(torch.tensor(p))))

    def merge_adapter(self) -> bool:
        """Fold the LoRA adapter (and the step tag's trained embedding) into the backbone's weights, for scoring only:
        an unmerged adapter adds two small matmuls per adapted layer, about a sixth of a scoring pass on a CPU, and
        the merged weights give the same scores (within 1e-5 in fp32; a test holds 1e-4). Not for `features_from:
        base`, which needs the adapter switched off and on; nor for a model still to be trained or saved. Returns
        whether it merged."""
        if self.spec.features_from == "base" or not hasattr(self.backbone, "merge_and_unload"):
            return False
        self.backbone = self.backbone.merge_and_unload()
        return True

    def readout_state(self) -> dict[str, torch.Tensor]:
        """The readout's own weights (saved beside the adapter)."""
        state = {}
        if self.head is not None:
            state |= {f"head.{k}": v for k, v in self.head.state_dict().items()}
        if self.feat is not None:
            state |= {f"feat.{k}": v for k, v in self.feat.state_dict().items()}
        return state

    def load_readout_state(self, state: dict[str, torch.Tensor]) -> None:
        if self.head is not None:
            self.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
        if self.feat is not None:
            self.feat.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("feat.")})

    def _lm_weight(self) -> torch.Tensor:
        """The LM head's weight as the readout and the features read it. peft's trainable-token wrapper (the step
        tag's embedding, tied to the head) rebuilds the whole vocabulary matrix with the tag's row swapped in at every
        `.weight` access, and backpropagates through that copy: a quarter of a training step. The readout never reads
        the tag's row (the label tokens are not the tag), and no feature token is the tag, so both read the frozen
        matrix. The tag's row still enters the features' softmax normaliser: there it is the untrained row, which
        moves a log-probability by as much as one more vocabulary entry can (for `features_from="base"` this is
        also the right row: the adapter, tag included, is off)."""
        head = self.backbone.get_output_embeddings()
        original = getattr(head, "original_module", None)
        return original.weight if original is not None else head.weight

    def _hidden(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = eager_mask(batch["attention_mask"], self.backbone, batch.get("position_ids"))
        model = decoder(self.backbone)
        inputs = {"input_ids": batch["input_ids"], "attention_mask": mask, "position_ids": batch.get("position_ids")}
        if self.sparse_trees and isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.dim() == 4:
            with sparse_tree_attention(model):
                return model(**inputs, tree_plan=tree_plan(mask)).last_hidden_state
        return model(**inputs).last_hidden_state

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logit per step tag: (N,)."""
        hidden = self._hidden(batch)
        h = hidden[batch["tag_b"], batch["tag_t"]]  # (N, H): gather first, project after
        lm_w = self._lm_weight()
        if self.head is not None:
            logit = self.head(h).squeeze(-1)
        else:
            pair = h @ lm_w[self.label_ids].T  # (N, 2)
            logit = (pair[:, 0] - pair[:, 1]).float()
        if self.feat is not None:
            feat_hidden = hidden
            if self.spec.features_from == "base" and hasattr(self.backbone, "disable_adapter"):
                with torch.no_grad(), self.backbone.disable_adapter():
                    feat_hidden = self._hidden(batch)
                with torch.no_grad():
                    f = self.features(feat_hidden, lm_w, batch, self.n_features)
            else:
                f = self.features(feat_hidden, lm_w, batch, self.n_features)
            # FSDP's mixed precision holds the readout in bf16 without autocast; the features come out in fp32.
            logit = logit + self.feat(f.to(self.feat.weight.dtype)).squeeze(-1)
        return logit.float()

    @staticmethod
    def features(
        hidden: torch.Tensor, lm_w: torch.Tensor, batch: dict[str, torch.Tensor], n_features: int = 4
    ) -> torch.Tensor:
        """(N, n_features) likelihood features per step; steps without an equation or result get zeros there."""
        n = batch["tag_b"].shape[0]
        out = hidden.new_zeros((n, n_features), dtype=torch.float32)
        if n_features > 7:
            out[:, 7] = batch["step_calc"]
        means = [(k, col) for k, col in _MEANS if col < n_features]
        keep = batch["feat_kind"] < len(means)  # only the tokens of the kinds this set reads
        if not keep.any():
            return out
        # A token often counts for several features (a result token is an equation token too, the operation's parts
        # lie in the equation) and, in a prefix tree, for several traces: its log-probability is computed once.
        width = hidden.shape[1]
        node, inv = torch.unique(batch["feat_b"][keep] * width + batch["feat_t"][keep], return_inverse=True)
        parent = torch.empty_like(node).scatter_(0, inv, batch["feat_p"][keep])  # one parent per token node
        b, t = node // width, node % width
        h, target = hidden[b, parent], batch["input_ids"][b, t]  # each predicted from its parent
        # Only the positions the features read meet the LM head, a chunk at a time: a (positions x vocabulary) block
        # of a long scoring batch would otherwise take gigabytes.
        chunk = 512
        lp = torch.cat(
            [
                (h[i : i + chunk] @ lm_w.T).float().log_softmax(-1).gather(1, target[i : i + chunk, None]).squeeze(1)
                for i in range(0, h.shape[0], chunk)
            ]
        )[inv]  # (M,)
        step, kind = batch["feat_step"][keep], batch["feat_kind"][keep]
        for k, col in means:
            sel = kind == k
            if sel.any():
                s = lp.new_zeros(n).index_add(0, step[sel], lp[sel])
                c = lp.new_zeros(n).index_add(0, step[sel], torch.ones_like(lp[sel]))
                out[:, col] = torch.where(c > 0, s / c.clamp(min=1), 0.0)
        sel = kind == 1
        if sel.any():
            mn = lp.new_zeros(n).scatter_reduce(0, step[sel], lp[sel], reduce="amin", include_self=False)
            has = lp.new_zeros(n).index_add(0, step[sel], torch.ones_like(lp[sel])) > 0
            out[:, 2] = torch.where(has, mn, 0.0)
            out[:, 3] = has.float()
        return out


def collate(encoded: list[Encoded], pad_id: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Right-padded batch with flattened tag and feature positions (see the module docstring)."""
    ids, mask = pad_right([e.input_ids for e in encoded], pad_id)
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        **_positions([(b, e, range(len(e.input_ids))) for b, e in enumerate(encoded)], device),
    }


def collate_shared(groups: list[list[Encoded]], pad_id: int, device: torch.device | str = "cpu") -> dict:
    """One row per group of encodings (traces of one problem) as a prefix tree (`prm.fit.rows.tree_rows`): their
    common prefixes are stored and computed once, and the logits equal `collate`'s (a test checks). attention_mask
    is a boolean (rows, 1, T, T) tree mask; steps and feature tokens are flattened group by group, encoding by
    encoding, as `collate` would for the same encodings in that order."""
    ids, mask, pos, paths = tree_rows([[e.input_ids for e in g] for g in groups], pad_id)
    rows = [(b, e, path) for b, group in enumerate(groups) for e, path in zip(group, paths[b], strict=True)]
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": pos.to(device),
        **_positions(rows, device),
    }


def _positions(rows: list[tuple[int, Encoded, Sequence[int]]], device) -> dict[str, torch.Tensor]:
    """Tag and feature positions of encodings laid out in batch rows: (row, encoding, the row position of each of
    its tokens). A feature token's parent is the position of the token before it in its own encoding."""
    tag_b, tag_t, fb, ft, fp, fs, fk, calc = [], [], [], [], [], [], [], []
    step = 0
    for b, e, where in rows:
        for j, t in enumerate(e.tags):
            tag_b.append(b)
            tag_t.append(where[t])
            calc.append(e.calc[j] if e.calc else 0.0)
            parts = zip(_PARTS, e.operation_tokens[j], strict=True) if e.operation_tokens else ()
            whole = ((_STEP, e.step_tokens[j]),) if e.step_tokens else ()
            for kind, positions in ((0, e.result_tokens[j]), (1, e.equation_tokens[j]), *parts, *whole):
                fb += [b] * len(positions)
                ft += [where[x] for x in positions]
                fp += [where[x - 1] for x in positions]
                fs += [step] * len(positions)
                fk += [kind] * len(positions)
            step += 1
    as_long = lambda x: torch.tensor(x, dtype=torch.long, device=device)  # noqa: E731
    return {
        "tag_b": as_long(tag_b),
        "tag_t": as_long(tag_t),
        "feat_b": as_long(fb),
        "feat_t": as_long(ft),
        "feat_p": as_long(fp),
        "feat_step": as_long(fs),
        "feat_kind": as_long(fk),
        "step_calc": torch.tensor(calc, dtype=torch.float32, device=device),
    }

"""Building, saving and loading a PRM.

A checkpoint folder holds only safetensors and JSON:
    adapter_config.json, adapter_model.safetensors   the peft LoRA adapter (with the step tag's embedding row)
    readout.safetensors                              the readout head and feature weights
    prm_spec.json                                    base model, readout kind, max length, tag
    tokenizer files                                  the base tokenizer plus the step tag
A fully fine-tuned backbone is saved whole (model.safetensors, config.json) instead of the adapter.

The adapter loads with plain peft, once the base knows the tag token:
    tok = AutoTokenizer.from_pretrained(ckpt); base = AutoModelForCausalLM.from_pretrained(base_dir)
    base.resize_token_embeddings(len(tok)); model = PeftModel.from_pretrained(base, ckpt)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from prm.fileio import atomic_files
from prm.model.encode import add_step_tag
from prm.model.prm import PRM, Spec


@dataclass(frozen=True)
class LoraSpec:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _prepare_base(spec: Spec, trust_remote_code: bool):
    from prm.models import load_model, load_tokenizer

    tok = load_tokenizer(spec.base, trust_remote_code=trust_remote_code)
    tag_id = add_step_tag(tok)
    base = load_model(spec.base, trust_remote_code=trust_remote_code)
    _resize(base, len(tok))
    return base, tok, tag_id


def _resize(base, n: int) -> None:
    """Grow the vocabulary to n; a new row (the tag) starts as the average token embedding. Deterministic, so the
    base model seen with the adapter switched off (the likelihood features) is the same in training and scoring."""
    old = base.get_input_embeddings().weight.shape[0]
    if old >= n:
        return
    base.resize_token_embeddings(n, mean_resizing=False)
    with torch.no_grad():
        emb = base.get_input_embeddings().weight
        emb[old:] = emb[:old].mean(0)


def build(spec: Spec, lora: LoraSpec | None, *, trust_remote_code: bool = False) -> tuple[PRM, object]:
    """A fresh PRM on `spec.base`: LoRA on `lora.targets` (the tag embedding trainable too), or full fine-tuning."""
    base, tok, tag_id = _prepare_base(spec, trust_remote_code)
    if lora is not None:
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.targets),
            trainable_token_indices=[tag_id],
            task_type="CAUSAL_LM",
        )
        backbone = get_peft_model(base, cfg)
    else:
        backbone = base
        backbone.requires_grad_(True)
    base.config.use_cache = False
    return PRM(backbone, tok, spec, tag_id), tok


def save(
    prm: PRM,
    tokenizer,
    folder: str | os.PathLike,
    extra: dict | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write the checkpoint into `folder` (other files there, such as logs, stay), atomically as a set
    (`prm.fileio.atomic_files`): prm_spec.json goes last, so its presence marks a complete checkpoint.

    `state_dict`: the PRM's full state gathered from sharded training (FSDP), used instead of the module's own
    parameters, which are then only this process's shards."""
    from safetensors.torch import save_file

    with atomic_files(folder, "prm_spec.json") as tmp:
        gathered = {}
        if state_dict is not None:
            gathered["state_dict"] = {k[9:]: v for k, v in state_dict.items() if k.startswith("backbone.")}
        if hasattr(prm.backbone, "peft_config"):
            # The tag's embedding row travels in the adapter (trainable_token_indices); saving the whole resized
            # embedding matrix would add 100+ MB to every checkpoint for one row.
            prm.backbone.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False, **gathered)
        else:
            prm.backbone.save_pretrained(tmp, safe_serialization=True, **gathered)
        tokenizer.save_pretrained(tmp)
        readout = prm.readout_state()
        if state_dict is not None:
            readout = {k: state_dict[k] for k in readout}
        state = {k: v.detach().float().contiguous() for k, v in readout.items()}
        save_file(state or {"empty": torch.zeros(1)}, tmp / "readout.safetensors")
        (tmp / "prm_spec.json").write_text(json.dumps(prm.spec.to_json() | (extra or {}), indent=2))
    return folder


def load(folder: str | os.PathLike, *, trust_remote_code: bool = False) -> tuple[PRM, object]:
    """A saved PRM, ready to score (eval mode, no gradients needed)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    meta = json.loads((folder / "prm_spec.json").read_text())
    spec = Spec(
        **{k: (tuple(v) if isinstance(v, list) else v) for k, v in meta.items() if k in Spec.__dataclass_fields__}
    )
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    tag_id = add_step_tag(tok)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        from prm.models import load_model

        base = load_model(spec.base, trust_remote_code=trust_remote_code)
        _resize(base, len(tok))
        backbone = PeftModel.from_pretrained(base, folder)
    else:
        backbone = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=trust_remote_code)
    prm = PRM(backbone, tok, spec, tag_id)
    prm.load_readout_state(load_file(folder / "readout.safetensors"))
    prm.eval()
    prm.requires_grad_(False)  # for scoring; training builds its own model and loads its state into it
    return prm, tok

"""Resumable training state, without pickle: optimizer tensors and RNG states in safetensors, the rest in JSON.

The model side of a checkpoint (a PRM's adapter and readout, a policy's adapter) is written into the same folder
first by the trainer, which also puts those weights back on resume (`Job.load`); `load_state` then restores the
optimizer, the scheduler and the random number generators, and returns where the loop stood.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from prm.fileio import atomic_write


def save_state(folder: Path, opt, sched, step: int, micro: int, tokens: int) -> None:
    from safetensors.torch import save_file

    inner = getattr(opt, "optimizer", opt)  # accelerate wraps the optimizer
    sd = inner.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{k}"] = v.detach().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    save_file(tensors, folder / "train_state.safetensors")
    meta = {
        "step": step,
        "micro": micro,
        "tokens": tokens,
        "param_groups": sd["param_groups"],
        "opt_scalars": scalars,
        "scheduler": getattr(sched, "scheduler", sched).state_dict(),
        "python_random": _jsonable(random.getstate()),
    }
    with atomic_write(folder / "train_state.json") as f:  # written last: its presence marks a complete checkpoint
        json.dump(meta, f)


def load_state(folder: Path, opt, sched) -> tuple[int, int, int]:
    from safetensors.torch import load_file

    meta = json.loads((folder / "train_state.json").read_text())
    tensors = load_file(folder / "train_state.safetensors")
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for idx, st in meta["opt_scalars"].items():
        state.setdefault(int(idx), {}).update(st)
    inner = getattr(opt, "optimizer", opt)
    inner.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    getattr(sched, "scheduler", sched).load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    random.setstate(_tuples(meta["python_random"]))
    return meta["step"], meta["micro"], meta["tokens"]


def load_weights(folder: Path, model) -> None:
    """A checkpoint's trained weights into a freshly built model: its peft adapter (adapter_model.safetensors), or
    the whole model (model.safetensors; tied weights are saved once, hence not strict)."""
    from safetensors.torch import load_file

    if (folder / "adapter_model.safetensors").exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
    else:
        model.load_state_dict(load_file(folder / "model.safetensors"), strict=False)


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, tuple) else x


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x

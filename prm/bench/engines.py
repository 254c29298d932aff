"""Our sampling engine beside vLLM's, on the same prompts and sample count, in one process (`prm bench --suites
vllm`, or `make bench-vllm`, which runs it in vLLM's own environment).

Both engines get the policy's own prompts for the same held-out problems, the same number of samples, the same
temperature and token cap; each is timed from its first `sample` call to its last sample (loading excluded), at each
batch size of `engines_batches` (our engine's rows decoded together; vLLM's max_num_seqs). Tokens are what each
engine generated: ours stops a sample at its answer line, vLLM at the end of turn, so tokens/s is the fair figure
and seconds are reported beside it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prm.bench import row
from prm.bench.generate import policy_problems
from prm.config import ConfigError
from prm.generate.engine import NativeEngine, Sampling
from prm.generate.prompt import build_prompt
from prm.records import read_records
from prm.synth import run as synth_run


def timed(engine, prompts: list[str], keys: list[str], n: int, params) -> tuple[int, float]:
    """(tokens generated, seconds) of one `sample` call."""
    t0 = time.perf_counter()
    out = engine.sample(prompts, n, params, keys=keys)
    return sum(s.tokens for r in out for s in r), time.perf_counter() - t0


def run(cfg) -> list[dict]:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("the vllm suite needs vLLM: run it in .venv-vllm (make bench-vllm)")
    from prm.generate.sampler import weights_dtype
    from prm.generate.vllm_engine import VLLMEngine
    from prm.models import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "problems.jsonl"
        synth_run(policy_problems(cfg.engines_problems, path))
        problems = read_records(path)
    keys = [p.id for p in problems]
    rows = []
    model, tok = load(cfg.engines_model, dtype=weights_dtype(cfg.engines_bf16))
    system, shots = Sampling().prompt(cfg.engines_model)
    prompts = [build_prompt(tok, p.problem, shots=shots, system=system) for p in problems]
    samples = len(prompts) * cfg.engines_n
    for batch in cfg.engines_batches:
        params = Sampling(batch_size=batch, max_new_tokens=cfg.engines_tokens).params(seed=0, bf16=cfg.engines_bf16)
        ours, ours_s = timed(NativeEngine(model, tok), prompts, keys, cfg.engines_n, params)
        vllm = VLLMEngine(cfg.engines_model, bf16=cfg.engines_bf16, max_num_seqs=batch)
        theirs, theirs_s = timed(vllm, prompts, keys, cfg.engines_n, params)
        vllm.close()
        what = f"{len(prompts)} prompts x {cfg.engines_n}, batch {batch}"
        rows.append(row(f"ours tok/s ({what})", ours / ours_s, "tok/s", tokens=ours, seconds=round(ours_s, 1)))
        rows.append(row(f"vLLM tok/s ({what})", theirs / theirs_s, "tok/s", tokens=theirs, seconds=round(theirs_s, 1)))
        ratio = (ours / ours_s) / (theirs / theirs_s)
        rows.append(row(f"  ours / vLLM at batch {batch}", ratio, "x", samples=samples))
    return rows

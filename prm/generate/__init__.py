"""Policy sampling: `prm generate` writes N step-by-step solutions per problem as trace records.

prm generate --input data/out/problems.jsonl --output data/out/traces.jsonl --n 8
"""

from prm.generate.command import GenerateConfig, run, trace_record
from prm.generate.engine import Sampling, open_engine
from prm.generate.prompt import DEFAULT_SHOTS, DEFAULT_SYSTEM, Shot, build_prompt
from prm.generate.sampler import Sample, SamplingParams, sample

__all__ = [
    "DEFAULT_SHOTS",
    "DEFAULT_SYSTEM",
    "GenerateConfig",
    "Sample",
    "Sampling",
    "SamplingParams",
    "Shot",
    "build_prompt",
    "open_engine",
    "run",
    "sample",
    "trace_record",
]

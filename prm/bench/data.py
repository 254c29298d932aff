"""Data-layer figures: synthetic problems per second, record validation throughput."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from prm.bench import best_time, row
from prm.records import read_records, validate, write_records
from prm.synth import SynthConfig, generate


def run(cfg) -> list[dict]:
    rows = []
    synth_cfg = SynthConfig(n=cfg.synth_n)
    secs = best_time(lambda: sum(1 for _ in generate(synth_cfg)), cfg.repeats)
    rate = cfg.synth_n / secs
    rows.append(row("synth problems/s (default config, train split)", rate, "problems/s", ">= 10,000", rate >= 10_000))

    # Validation throughput on records the size of real ones: synthetic problems with their gold chains.
    base = list(generate(SynthConfig(n=min(cfg.records_n, 20_000), min_steps=2, max_steps=8)))
    dicts = [base[i % len(base)].to_dict() | {"id": f"r{i}"} for i in range(cfg.records_n)]
    secs = best_time(lambda: [validate(d) for d in dicts], cfg.repeats)
    rows.append(row(f"validate() on {cfg.records_n:,} in-memory records", cfg.records_n / secs, "records/s"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        write_records(dicts, path)
        mb = path.stat().st_size / 1e6
        secs = best_time(lambda: read_records(path), cfg.repeats)
        rows.append(
            row(f"read_records() JSONL, {cfg.records_n:,} records ({mb:.0f} MB)", cfg.records_n / secs, "records/s")
        )
        secs_json = best_time(lambda: [json.loads(line) for line in path.open(encoding="utf-8")], cfg.repeats)
        rows.append(row("  of which json.loads alone", cfg.records_n / secs_json, "records/s"))
        pq = Path(tmp) / "records.parquet"
        write_records(dicts, pq)
        secs = best_time(lambda: read_records(pq), cfg.repeats)
        rows.append(row(f"read_records() Parquet, {cfg.records_n:,} records", cfg.records_n / secs, "records/s"))
    return rows

"""Shared fixtures. Every test here runs offline on the CPU in seconds; tests that need the embedded 135M model are
marked `slow` and run with `make test-slow`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout: real GSM8K text for tests that want it; absent on some machines.
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def gsm8k_dir() -> Path:
    d = SHARED_DATA / "gsm8k"
    if not (d / "train.jsonl").exists():
        pytest.skip(f"GSM8K not found at {d}")
    return d

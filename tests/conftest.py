"""Shared test setup: deterministic seeds, a bounded thread count, and the data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ.get("QKV_TEST_THREADS", "1")))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def data_dir() -> Path:
    """The shared real datasets ($QKV_DATA); tests that need them skip with a reason when absent."""
    root = os.environ.get("QKV_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("QKV_DATA is not set to the datasets folder (CI sets it to ../shared/data)")
    return Path(root)

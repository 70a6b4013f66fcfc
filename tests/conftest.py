"""Shared test setup: deterministic seeds, a bounded thread count, and the data location."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

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


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Loads the script ``benchmarks/<name>.py`` as a module (``benchmarks/`` is not a package)."""
    return _load_benchmark


def _load_benchmark(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

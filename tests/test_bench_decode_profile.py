"""`benchmarks/decode_profile.py` at tiny sizes: both searches give the same outputs, the profile is split by
kind of work, and the ceiling is HF's search over qkv's time in the work both must do (no time asserted)."""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "decode_profile.py"


@pytest.fixture(scope="module")
def decode_profile():
    spec = importlib.util.spec_from_file_location("decode_profile", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_operators_are_sorted_into_kinds_of_work(decode_profile) -> None:
    assert decode_profile.kind_of("aten::addmm") == "matrix products"
    assert decode_profile.kind_of("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention kernel (SDPA)"
    assert decode_profile.kind_of("aten::index_select") == decode_profile.kind_of("aten::cat")
    assert decode_profile.kind_of("aten::_log_softmax") == "log-softmax"
    assert decode_profile.kind_of("aten::masked_fill_").startswith("other")
    medians = decode_profile.median_by_kind([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 1.0}])
    assert list(medians.items()) == [("a", 2.0), ("b", 1.0)]  # a kind missing from a run counts 0 there


@pytest.mark.parametrize("name", ["marian", "gpt2"])
def test_tiny_profile_round_trip(decode_profile, tmp_path, name) -> None:
    result = decode_profile.bench(name, 3, 2, 5, 2, tmp_path, vocab=50, tiny=True)
    assert result["identical_outputs"]
    assert len(result["wall_ms_rounds"]["qkv"]) == len(result["ceiling_rounds"]) == 2
    for side in ("qkv", "hf"):
        kinds = result["profile_ms_by_kind"][side]
        assert kinds["matrix products"] > 0 and kinds["attention kernel (SDPA)"] > 0
    needed = result["qkv_needed_ms_rounds"]
    hf_ms = result["wall_ms_rounds"]["hf"]
    assert result["ceiling_rounds"] == pytest.approx([h / n for h, n in zip(hf_ms, needed, strict=True)])
    assert result["ceiling_qkv_over_hf"] == pytest.approx(statistics.median(result["ceiling_rounds"]))

"""`benchmarks/decode_profile.py` at tiny sizes: both searches give the same outputs, the profile is split by
kind of work, and the ceiling is HF's search over qkv's time in the work both must do (no time asserted)."""

from __future__ import annotations

import statistics

import pytest
import torch

from qkv.bench.work_profile import OTHER, kind_of, kind_table, median_by_kind, profile_by_kind, timed_then_profiled


@pytest.fixture(scope="module")
def decode_profile(load_benchmark):
    return load_benchmark("decode_profile")


def test_operators_are_sorted_into_kinds_of_work(decode_profile) -> None:
    kinds = decode_profile.KINDS
    assert kind_of("aten::addmm", kinds) == "matrix products"
    assert kind_of("aten::_scaled_dot_product_flash_attention_for_cpu", kinds) == "attention kernel (SDPA)"
    assert kind_of("aten::index_select", kinds) == kind_of("aten::cat", kinds)
    assert kind_of("aten::_log_softmax", kinds) == "log-softmax"
    assert kind_of("aten::masked_fill_", kinds) == OTHER


def test_median_by_kind_counts_a_missing_kind_as_zero() -> None:
    medians = median_by_kind([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 1.0}])
    assert list(medians.items()) == [("a", 2.0), ("b", 1.0)]


def test_kind_table_has_a_row_per_kind_and_a_column_per_side() -> None:
    rows = kind_table("ms", {"qkv": {"mm": 3.0, "sdpa": 1.25}, "hf": {"mm": 4.0, "cat": 2.0}}).splitlines()
    assert rows[0].split() == ["ms", "qkv", "hf"]
    assert [row.split() for row in rows[1:]] == [["mm", "3.0", "4.0"], ["sdpa", "1.2", "0.0"], ["cat", "0.0", "2.0"]]


def test_timed_then_profiled_alternates_the_order_and_times_before_profiling() -> None:
    calls_made: list[str] = []
    x = torch.randn(32, 32)
    calls = {"a": lambda: calls_made.append("a") or x @ x, "b": lambda: calls_made.append("b") or x @ x}
    seconds, profiles = timed_then_profiled(calls, 2, (("aten::mm", "products"),))
    assert calls_made == ["a", "b", "a", "b", "b", "a", "b", "a"]  # round 1 timed, profiled; round 2 reversed
    assert all(len(seconds[n]) == len(profiles[n]) == 2 for n in calls)
    assert all(run["products"] > 0 for n in calls for run in profiles[n])


def test_profile_by_kind_times_the_operators_of_the_call() -> None:
    x = torch.randn(64, 64)
    kinds = profile_by_kind(lambda: [x @ x for _ in range(5)], (("aten::mm", "products"),))
    assert kinds["products"] > 0 and set(kinds) <= {"products", OTHER}


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

"""qkv.bench.before_after: the alternated rounds of the lever scripts, their ratios and their JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qkv.bench.before_after import alternate, speedups, write_result


def test_the_order_flips_every_round_and_every_side_is_timed_once_a_round():
    calls: list[str] = []
    seconds = alternate({"before": lambda: calls.append("before"), "after": lambda: calls.append("after")}, 3)
    assert calls == ["before", "after", "after", "before", "before", "after"]
    assert [len(t) for t in seconds.values()] == [3, 3] and all(s >= 0 for t in seconds.values() for s in t)


def test_ratios_are_taken_within_a_round():
    got = speedups({"before": [2.0, 3.0, 9.0], "after": [1.0, 2.0, 3.0]})
    assert got["speedup_rounds"] == [2.0, 1.5, 3.0] and got["speedup_median"] == pytest.approx(2.0)


def test_the_json_names_the_commit_and_the_machine(tmp_path: Path):
    out = tmp_path / "deep" / "lever.json"
    write_result(out, {"benchmark": "a lever", "rounds": 2})
    record = json.loads(out.read_text())
    assert record["benchmark"] == "a lever" and record["rounds"] == 2
    assert {"commit", "machine"} <= set(record) and record["machine"]

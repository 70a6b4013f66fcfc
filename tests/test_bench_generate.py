"""`qkv bench generate`: the KV-cache and no-cache loops do the same work and choose the same tokens; the
JSON is well formed (no wall-clock time is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qkv.cli import main
from qkv.machine import commit

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_cached_and_uncached_greedy_generate_the_same_tokens_and_count_the_same_work():
    from qkv.bench.generate import bench_lm

    results = bench_lm(CONFIGS / "tinyshakespeare-gpt.yaml", [5, 12], batch=3, rounds=2)
    assert [r["length"] for r in results] == [5, 12]
    for r in results:
        # EOS is banned on both sides: every row runs to its length, and the greedy choices agree token for
        # token between the cached decode_step loop and full forward passes over the prefix
        assert r["generated_tokens"] == 3 * r["length"]
        assert r["same_tokens"] is True
        assert r["rounds"] == 2 and all(len(v) == 2 for v in r["rounds_tokens_per_s"].values())
        assert r["cached_tokens_per_s"] > 0 and r["uncached_tokens_per_s"] > 0
        assert r["speedup"] == pytest.approx(r["cached_tokens_per_s"] / r["uncached_tokens_per_s"])


@pytest.mark.slow
def test_bench_generate_writes_its_json(tmp_path, capsys):
    assert main(["bench", "generate", "--lengths", "4", "--batch", "2", "--rounds", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "generate.json").read_text())
    assert [r["length"] for r in report["lm"]] == [4] and report["lm"][0]["same_tokens"] is True
    assert {r["recipe"] for r in report["seq2seq"]} == {"multi30k-transformer.yaml", "multi30k-gru-attention.yaml"}
    assert report["commit"] == commit() and report["machine"]["torch"] and report["command"].startswith("qkv bench")
    assert "KV cache" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--lengths", "4,x"], ["--lengths", "0"], ["--rounds", "0"], ["--batch", "0"]])
def test_bench_generate_bad_arguments_exit_2(args, tmp_path, capsys):
    assert main(["bench", "generate", *args, "--out", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err

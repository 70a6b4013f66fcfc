"""`qkv bench attention` runs end to end and saves every measurement (no timing is asserted)."""

from __future__ import annotations

import json

from qkv.bench.attention import _slope, summarize
from qkv.cli import main
from qkv.machine import commit


def test_bench_attention_saves_json(tmp_path) -> None:
    rc = main(
        [
            "bench",
            "attention",
            "--lengths",
            "16,32",
            "--impls",
            "reference,fused,qkv-mha",
            "--repeats",
            "1",
            "--heads",
            "2",
            "--head-dim",
            "8",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    result = json.loads((tmp_path / "attention.json").read_text())
    assert {(r["impl"], r["length"]) for r in result["rows"]} == {
        (i, t) for i in ("reference", "fused", "qkv-mha") for t in (16, 32)
    }
    assert all(r["time_ms"] > 0 and "peak_mb" in r for r in result["rows"])
    assert result["machine"]["torch"] and result["config"]["heads"] == 2
    assert result["commit"] == commit()  # the evidence names the code that made it


def test_bad_impl_is_a_user_error(capsys) -> None:
    assert main(["bench", "attention", "--impls", "flash9"]) == 2
    assert "flash9" in capsys.readouterr().err


def test_summary_ratios_and_growth_exponent() -> None:
    rows = [{"impl": "reference", "length": t, "time_ms": 6.0 * t, "peak_mb": t * t / 1000} for t in (512, 1024, 2048)]
    rows += [{"impl": "fused", "length": t, "time_ms": 1.0 * t, "peak_mb": t / 10} for t in (512, 1024, 2048)]
    s = summarize(rows, [512, 1024, 2048])
    assert s["fused_speedup_over_reference"] == 6.0
    assert abs(s["peak_memory_loglog_slope"]["reference"] - 2.0) < 1e-9
    assert abs(s["peak_memory_loglog_slope"]["fused"] - 1.0) < 1e-9
    assert _slope([1, 2], [0, 0]) is None

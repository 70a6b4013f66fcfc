"""benchmarks/gpu.sh (issue 12's one device check) works before a device is spent on it: the same code on
tiny sizes on the CPU. Parity is asserted (fused == reference); timings are only checked to be recorded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "benchmarks" / "gpu.sh"), "--device", "cpu", "--dry-run"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    for case in ("causal", "padded"):
        assert report["parity_max_abs"]["float32"][case] < 1e-5
        assert report["parity_max_abs"]["bfloat16"][case] < 0.05  # bf16 keeps 8 significant bits
    train = report["train"]
    assert train["steps"] == 3 and train["tokens_per_s"] > 0 and train["mfu"] > 0
    assert train["flops_per_token"] > 6 * train["params"]  # 6N plus the attention term

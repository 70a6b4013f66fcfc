"""qkv.machine: the one machine description recorded next to measured numbers."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest
import torch

import qkv.machine
from qkv.machine import commit, describe, machine_info


def test_machine_info_records_threads_cores_and_versions() -> None:
    info = machine_info(torch.device("cpu"))
    assert info["threads"] == torch.get_num_threads() and info["cores"] == os.cpu_count()
    assert (info["torch"], info["python"], info["device"]) == (torch.__version__, platform.python_version(), "cpu")
    assert "gpu" not in info and machine_info("cpu")["device"] == "cpu"
    threads = torch.get_num_threads()
    expected = f"cpu: {info['cpu']} ({os.cpu_count()} cores, {threads} threads), torch {torch.__version__}"
    assert describe(info) == expected


def test_commit_is_the_checkouts_head_and_says_when_src_has_changes() -> None:
    root = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
    assert (root / "src" / "qkv" / "machine.py").resolve() == Path(qkv.machine.__file__).resolve()
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert commit() is not None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "src"], capture_output=True, text=True)
    assert commit() == head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")

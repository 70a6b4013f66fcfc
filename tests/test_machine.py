"""qkv.machine: the one machine description recorded next to measured numbers."""

from __future__ import annotations

import os
import platform

import torch

from qkv.machine import describe, machine_info


def test_machine_info_records_threads_cores_and_versions() -> None:
    info = machine_info(torch.device("cpu"))
    assert info["threads"] == torch.get_num_threads() and info["cores"] == os.cpu_count()
    assert (info["torch"], info["python"], info["device"]) == (torch.__version__, platform.python_version(), "cpu")
    assert "gpu" not in info and machine_info("cpu")["device"] == "cpu"
    threads = torch.get_num_threads()
    expected = f"cpu: {info['cpu']} ({os.cpu_count()} cores, {threads} threads), torch {torch.__version__}"
    assert describe(info) == expected

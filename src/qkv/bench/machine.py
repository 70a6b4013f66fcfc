"""What machine a number came from: every benchmark and report records this next to its figures."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, torch version and threads (and the GPU name on CUDA)."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def describe(info: dict[str, Any]) -> str:
    """One line for tables and docs, e.g. ``cpu: AMD EPYC 7B13 (2 cores, 2 threads), torch 2.13.0``."""
    where = info.get("gpu") or info["cpu"]
    return f"{info['device']}: {where} ({info['cores']} cores, {info['torch_threads']} threads), torch {info['torch']}"

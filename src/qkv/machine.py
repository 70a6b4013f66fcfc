"""What machine a number came from -- the one home of ``machine_info``, recorded next to every measured figure
(``qkv compare``'s ``results.json``, ``qkv probe``, reference ``result.json`` files, benchmarks).

Keys: ``cpu`` (model name), ``cores`` (``os.cpu_count()``), ``threads`` (``torch.get_num_threads()``: the
threads the numbers were measured with), ``torch``, ``python``, ``platform``, ``device``; ``gpu`` on CUDA;
``load_average`` where the OS reports one (other jobs on the machine slow the measurements down).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """The machine description (keys in the module docstring) for measurements made on ``device``."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if device.type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def describe(info: dict[str, Any]) -> str:
    """One line for tables and docs, e.g. ``cpu: AMD EPYC 7B13 (2 cores, 2 threads), torch 2.13.0``."""
    where = info.get("gpu") or info["cpu"]
    return f"{info['device']}: {where} ({info['cores']} cores, {info['threads']} threads), torch {info['torch']}"


def commit() -> str | None:
    """The checkout's git commit, with ``+dirty`` when ``src/`` has uncommitted changes (``None`` outside git)."""
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "src"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None

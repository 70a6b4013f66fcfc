"""Capture and restore every random number generator a training run touches, without pickle.

Exact resumption (the run continues as if it had never stopped) needs the global torch CPU generator
(dropout, initialisation), the CUDA generators, Python's ``random`` and NumPy's legacy generator. Torch
states are byte tensors (saved in safetensors); the Python and NumPy states are tuples of ints (saved
as JSON).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(tensors, json_data)`` describing all generator states."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # (the legacy tuple form, the default)
    data = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return tensors, data


def restore(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    """Inverse of :func:`capture`."""
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))

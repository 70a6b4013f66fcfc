"""One attention measurement in a fresh process: forward+backward time and peak memory.

Run by :mod:`qkv.bench.attention` as ``python -m qkv.bench.attention_worker '<json spec>'``; prints one
JSON line. A fresh process per measurement makes the CPU peak-memory figure honest: it is the growth of
the process's peak resident set size (``ru_maxrss``) over its size just before the first forward pass,
so it counts every intermediate (scores, weights, gradients) the implementation materialises.
On CUDA it is ``torch.cuda.max_memory_allocated`` above the inputs. The reported time is the best of
the repetitions (as :mod:`timeit` advises: slower runs measure interference from other processes, not
the code); the median is saved too.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from qkv.attention import MultiHeadAttention, attend


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def build(impl: str, B: int, H: int, T: int, D: int, causal: bool, device: str, dtype: torch.dtype):
    """A zero-argument closure running forward+backward of ``impl`` once."""
    E = H * D
    if impl in ("reference", "fused", "sdpa"):
        q, k, v = (torch.randn(B, H, T, D, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
        grad = torch.randn(B, H, T, D, device=device, dtype=dtype)

        def step() -> None:
            if impl == "sdpa":
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            else:
                out, _ = attend(q, k, v, is_causal=causal, backend=impl)
            out.backward(grad)

        return step
    x = torch.randn(B, T, E, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn(B, T, E, device=device, dtype=dtype)
    if impl == "qkv-mha":
        mha = MultiHeadAttention(E, H, backend="fused").to(device, dtype)

        def step() -> None:
            out, _ = mha(x, is_causal=causal)
            out.backward(grad)

        return step
    if impl == "torch-mha":
        mha = nn.MultiheadAttention(E, H, batch_first=True).to(device, dtype)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=device, dtype=dtype) if causal else None

        def step() -> None:
            out, _ = mha(x, x, x, attn_mask=mask, is_causal=causal, need_weights=False)
            out.backward(grad)

        return step
    raise ValueError(f"unknown implementation {impl!r}")


def measure(spec: dict) -> dict:
    device, dtype = spec["device"], getattr(torch, spec["dtype"])
    torch.manual_seed(0)
    shape = (spec["batch"], spec["heads"], spec["length"], spec["head_dim"])
    step = build(spec["impl"], *shape, spec["causal"], device, dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _peak_rss_mb()
    step()  # warm-up (also allocates everything once)
    sync()
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = _peak_rss_mb() - base
    return {
        "time_ms": 1000 * min(times),
        "median_ms": 1000 * statistics.median(times),
        "times_ms": [1000 * t for t in times],
        "peak_mb": peak_mb,
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    print(json.dumps(measure(spec)))

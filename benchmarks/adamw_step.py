"""AdamW's three PyTorch implementations on qkv's models: milliseconds per optimizer step (random gradients),
alternating, and how far apart their weights end up. Run from the checkout:
``taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/adamw_step.py`` (results/bench/adamw-step.txt)."""

from __future__ import annotations

import statistics
import time

import torch

from qkv.models.builder import build_model
from qkv.training.config import load_config
from qkv.training.loop import ADAMW_IMPLEMENTATIONS, build_optimizer


def main(rounds: int = 25, steps: int = 5) -> None:
    torch.set_num_threads(1)
    for recipe, src_vocab, tgt_vocab in [("tinyshakespeare-gpt", 65, 65), ("multi30k-transformer", 7000, 6000)]:
        config = load_config(f"configs/{recipe}.yaml", [])
        sides = {}
        for impl in ADAMW_IMPLEMENTATIONS:
            torch.manual_seed(0)
            model = build_model(config.model, src_vocab, tgt_vocab)
            for p in model.parameters():
                p.grad = torch.randn_like(p) * 1e-3
            sides[impl] = (model, build_optimizer(model, config, implementation=impl))
            sides[impl][1].step()  # warm-up (and the state)
        ms: dict[str, list[float]] = {impl: [] for impl in sides}
        for r in range(rounds):
            for impl in ADAMW_IMPLEMENTATIONS if r % 2 else ADAMW_IMPLEMENTATIONS[::-1]:
                start = time.perf_counter()
                for _ in range(steps):
                    sides[impl][1].step()
                ms[impl].append((time.perf_counter() - start) / steps * 1e3)
        weights = {k: torch.cat([p.detach().flatten() for p in m.parameters()]) for k, (m, _) in sides.items()}
        apart = float((weights["fused"] - weights["for-loop"]).abs().max())
        ratio = {k: statistics.median(a / b for a, b in zip(ms[k], ms["fused"], strict=True)) for k in ms}
        print(
            f"{recipe}: ms/step "
            + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in ms.items())
            + f"; slower than fused: for-loop x{ratio['for-loop']:.2f}, foreach x{ratio['foreach']:.2f}; "
            f"max |fused - for-loop| after {1 + rounds * steps} steps {apart:.1e}"
        )


if __name__ == "__main__":
    main()

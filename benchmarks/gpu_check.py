"""One prepared device check (issue 12): attention parity in float32 and bfloat16, then GPT-2-small training
throughput and MFU. Run it once on a lent GPU (``benchmarks/gpu.sh``), record the JSON in
docs/benchmarks.md, give the machine back. ``--device cpu --dry-run`` runs the same code on tiny sizes
(the test suite does, so the script is known to work before a device is spent on it).

MFU (Chowdhery et al. 2022, appendix B): model FLOPs per second over the hardware's dense peak. Model
FLOPs per token are nanoGPT's estimate ``6 N + 12 L H D T``; the peak is ``--peak-tflops`` (H200 bf16
dense: 989) or, in a dry run, a measured matmul rate.

Usage: python benchmarks/gpu_check.py [--device cuda] [--steps 200] [--dry-run] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from qkv.attention import attend
from qkv.attention.masks import key_mask, padding_mask
from qkv.models import ModelConfig, build_model


def parity(device: torch.device, dtype: torch.dtype, b: int, h: int, t: int, d: int) -> dict:
    """Max |reference - fused| of outputs, causal and padded, in ``dtype`` (reference softmax in float32)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(b, h, t, d, generator=g).to(device, dtype) for _ in range(3))
    keep = padding_mask(torch.tensor([t] + [t // 2] * (b - 1)), t).to(device)  # (B, T)
    out = {}
    for label, kwargs in (("causal", {"is_causal": True}), ("padded", {"mask": key_mask(keep)})):
        ref, _ = attend(q, k, v, backend="reference", **kwargs)
        fused, _ = attend(q, k, v, backend="fused", **kwargs)
        out[label] = float((ref.float() - fused.float()).abs().max())
    return out


def train_throughput(
    device: torch.device, config: ModelConfig, vocab: int, batch: int, context: int, steps: int, bf16: bool
) -> dict:
    torch.manual_seed(0)
    model = build_model(config, vocab, vocab).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, fused=device.type == "cuda")
    tokens = torch.randint(4, vocab, (batch, context + 1), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(tokens[:, :-1]).logits  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(min(3, steps)):  # warm-up (allocator, kernels)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    n_params = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * n_params + 12 * config.n_decoder_layers * config.n_heads * config.head_dim * context
    return {
        "params": n_params,
        "steps": steps,
        "seconds": seconds,
        "tokens_per_s": batch * context * steps / seconds,
        "flops_per_token": flops_per_token,
    }


def measured_peak(device: torch.device, n: int = 1024) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    start = time.perf_counter()
    torch.mm(a, b)
    return 2 * n**3 / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the device")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes (for CPU: checks the script works)")
    parser.add_argument("--out", default="runs/gpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.dry_run:
        shapes, steps = (2, 2, 64, 16), min(args.steps, 3)
        config = ModelConfig(
            name="gpt",
            d_model=64,
            n_heads=2,
            d_ff=256,
            n_decoder_layers=2,
            dropout=0.0,
            max_len=64,
            positions="learned",
            scale_embeddings=False,
        )
        vocab, batch, context = 512, 2, 64
    else:  # GPT-2 small: 12 x 768, 12 heads, context 1024, vocabulary 50304 (nanoGPT's padded 50257)
        shapes, steps = (4, 12, 1024, 64), args.steps
        config = ModelConfig(
            name="gpt",
            d_model=768,
            n_heads=12,
            d_ff=3072,
            n_decoder_layers=12,
            dropout=0.0,
            max_len=1024,
            positions="learned",
            scale_embeddings=False,
            activation="gelu_tanh",
        )
        vocab, batch, context = 50304, 16, 1024
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__,
        "dry_run": args.dry_run,
        "parity_max_abs": {
            "float32": parity(device, torch.float32, *shapes),
            "bfloat16": parity(device, torch.bfloat16, *shapes),
        },
    }
    train = train_throughput(device, config, vocab, batch, context, steps, bf16=device.type == "cuda")
    peak = measured_peak(device) if args.dry_run else args.peak_tflops * 1e12
    train["peak_flops"] = peak
    train["mfu"] = train["flops_per_token"] * train["tokens_per_s"] / peak
    report["train"] = train
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

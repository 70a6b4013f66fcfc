"""The loss of a copying model read as it is, against a second ``log_softmax``: whole forward + backward, one run.

A pointer-generator (``model.copy``, See et al. 2017) returns ``log P`` of its mixture, already normalised.
PyTorch's ``cross_entropy`` applies ``log_softmax`` to it again -- a no-op on the values, but a pass over the
``(B x T, V)`` scores and one more in the backward. ``token_cross_entropy(..., normalised=True)`` (what
training does when ``ModelOutput.normalised`` says so) scores them as they are. This script times a whole
teacher-forced forward, the label-smoothed loss and the backward of the copy recipes' models on random
batches of their shapes, the two loss paths alternated, and checks that the losses and gradients agree.

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/normalised_loss.py --rounds 10 \\
        --out results/bench/normalised-loss.json
"""

from __future__ import annotations

import argparse
import functools
import statistics
from pathlib import Path

import torch

from qkv.bench.before_after import alternate, speedups, write_result
from qkv.models import ModelConfig, build_model
from qkv.special import BOS_ID, PAD_ID
from qkv.training.losses import token_cross_entropy

TRANSFORMER = {"name": "transformer", "copy": True, "share_embeddings": True, "dropout": 0.0}
RECIPES = {  # name: (model fields, batch, target, source, vocabulary)
    "aeslc-transformer-words (4+4, d 128)": (
        TRANSFORMER | {"d_model": 128, "n_heads": 4, "n_encoder_layers": 4, "n_decoder_layers": 4, "d_ff": 256},
        43, 12, 100, 10_000,
    ),
    "samsum-transformer-words (3+3, d 256)": (
        TRANSFORMER | {"d_model": 256, "n_heads": 4, "n_encoder_layers": 3, "n_decoder_layers": 3, "d_ff": 1024},
        12, 80, 500, 10_000,
    ),
    "aeslc-gru-attention-copy (GRU 256)": (
        {"name": "gru-attention", "copy": True, "d_model": 128, "hidden_size": 256, "dropout": 0.0},
        43, 12, 100, 10_000,
    ),
}  # fmt: skip


def batch(size: int, target: int, source: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random source ids ``(B, T_s)`` (words repeat; every other row ends in padding) and a target ``(B, T + 1)``."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, vocab, (size, source), generator=g)  # (B, T_s)
    src[::2, -source // 5 :] = PAD_ID
    tgt = torch.cat([torch.full((size, 1), BOS_ID), src[:, 3 : 3 + target]], dim=1)  # (B, T + 1): copyable words
    return src, tgt


def step(model: torch.nn.Module, src: torch.Tensor, tgt: torch.Tensor, normalised: bool) -> tuple[float, torch.Tensor]:
    """Forward, label-smoothed loss (read as it is, or through ``log_softmax``) and backward."""
    model.zero_grad(set_to_none=True)
    out = model(src, tgt[:, :-1])  # (B, T, V): log P
    loss = token_cross_entropy(out.logits, tgt[:, 1:], label_smoothing=0.1, normalised=normalised)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return loss.item(), grads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds per recipe (default 10)")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args()
    results = {}
    sides = {"log_softmax again (before)": False, "read as it is (after)": True}
    for name, (fields, size, target, source, vocab) in RECIPES.items():
        torch.manual_seed(0)
        model = build_model(ModelConfig(**fields), vocab, vocab).train()
        src, tgt = batch(size, target, source, vocab)
        (loss_before, grads_before), (loss_after, grads_after) = (step(model, src, tgt, n) for n in sides.values())
        calls = {side: functools.partial(step, model, src, tgt, normalised) for side, normalised in sides.items()}
        seconds = alternate(calls, args.rounds)
        results[name] = {
            "shape": {"batch": size, "target": target, "source": source, "vocab": vocab},
            "seconds": seconds,
            **speedups(seconds),
            "loss": {"before": loss_before, "after": loss_after},
            "max_abs_diff_grads": (grads_before - grads_after).abs().max().item(),
            "max_abs_grad": grads_before.abs().max().item(),
        }
        r = results[name]
        ratios = r["speedup_rounds"]
        print(f"{name}: " + ", ".join(f"{s} {statistics.median(t) * 1e3:.0f} ms" for s, t in seconds.items()))
        print(f"  speedup x{r['speedup_median']:.3f} (rounds {min(ratios):.3f} .. {max(ratios):.3f}); loss "
              f"{loss_before:.6f} vs {loss_after:.6f}; max |diff| gradients {r['max_abs_diff_grads']:.1e} "
              f"(largest gradient {r['max_abs_grad']:.1e})")  # fmt: skip
    if args.out:
        benchmark = "copy models: forward + smoothed loss + backward, log P read as it is vs log_softmax again"
        write_result(
            args.out, {"benchmark": benchmark, "settings": vars(args) | {"out": str(args.out)}, "recipes": results}
        )


if __name__ == "__main__":
    main()

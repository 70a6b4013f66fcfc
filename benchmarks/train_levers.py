"""Training-speed levers that `qkv bench train --peers --variant` cannot express, each alternated against qkv's
own step on the baby GPT (configs/tinyshakespeare-gpt.yaml) on the same batches, as in that command:

- ``compile``: ``torch.compile`` (inductor) of every Transformer layer ("regional" compilation);
- ``fused-qkv``: one ``(3E, E)`` matmul for the self-attention projections instead of three -- a model
  change, measured here by concatenating ``q_proj/k_proj/v_proj`` weights on every call (same parameters);
- ``bf16-matmul``: fp32 tensors with bf16 matrix products inside oneDNN
  (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``, the CPU analogue of TF32; needs AMX/AVX512-BF16).

Run from the checkout (docs/benchmarks.md; output in results/bench/levers.txt)::

    QKV_DATA=../shared/data taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_levers.py --rounds 12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from qkv.attention import multi_head
from qkv.bench import side_by_side as sbs
from qkv.models.transformer_layers import DecoderLayer, EncoderLayer

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "tinyshakespeare-gpt.yaml"


def _model(side: sbs.Side) -> torch.nn.Module:
    """The qkv model a side trains (held by its step function)."""
    cells = [c.cell_contents for c in side.step.__closure__ or () if isinstance(c.cell_contents, torch.nn.Module)]
    return cells[0]


def compile_layers(side: sbs.Side) -> None:
    for module in _model(side).modules():
        if isinstance(module, DecoderLayer | EncoderLayer):
            module.compile()


def fuse_qkv(side: sbs.Side) -> None:
    original = multi_head.MultiHeadAttention.forward

    def forward(self, x_q, x_kv=None, *, mask=None, is_causal=False, need_weights=False, cache=None, rotary=None):
        if x_kv is not None or cache is not None or rotary is not None or need_weights:
            return original(
                self, x_q, x_kv, mask=mask, is_causal=is_causal, need_weights=need_weights, cache=cache, rotary=rotary
            )
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3E, E)
        bias = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        b, t, e = x_q.shape
        qkv = F.linear(x_q, weight, bias).view(b, t, 3, self.n_heads, self.head_dim)  # (B, T, 3, H, D)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, D)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and mask is None)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, e)), None  # (B, T, E)

    for module in _model(side).modules():
        if isinstance(module, multi_head.MultiHeadAttention):
            module.forward = forward.__get__(module)


def bf16_matmuls(side: sbs.Side) -> None:
    inner = side.step

    def step(micro: list) -> None:
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        try:
            inner(micro)
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = "ieee"

    side.step = step


LEVERS = {"compile": compile_layers, "fused-qkv": fuse_qkv, "bf16-matmul": bf16_matmuls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levers", default=",".join(LEVERS))
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    prepared = sbs.prepare(RECIPE, [], 40)
    for name in args.levers.split(","):
        sides = [sbs.qkv_side("qkv", prepared, [], RECIPE), sbs.qkv_side(name, prepared, [], RECIPE)]
        LEVERS[name](sides[1])
        sbs.measure(sides, prepared.batches, args.steps, args.rounds, warmup=3, log=lambda _: None)
        ratio = sbs.summarize(sides, name)["ratios"][f"{name}/qkv"]
        print(
            f"{name}: with / without x{ratio['median']:.3f} [{ratio['min']:.3f} .. {ratio['max']:.3f}] "
            f"({args.rounds} rounds of {args.steps} steps, median tokens/s without "
            f"{sbs.spread(sides[0].tokens_per_s)['median']:,.0f})"
        )


if __name__ == "__main__":
    main()

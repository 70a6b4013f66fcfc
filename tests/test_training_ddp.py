"""DistributedDataParallel: 2 CPU processes under torchrun (gloo) equal 1 process with the same global batch.

Each process takes half of every global batch and scales its summed loss by the global token count, so
the averaged gradient is the per-token mean of the whole batch. The only difference left is the order of
floating-point sums, hence a small tolerance. Dropout is off (its masks differ per process by design).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SEQ2SEQ = """
task:
  name: g2p
  options: {source: cmudict, max_examples: 200, max_eval_examples: 5}
model: {name: transformer, d_model: 32, n_heads: 2, d_ff: 64, n_encoder_layers: 1, n_decoder_layers: 1,
        dropout: 0.0}
optim: {lr: 0.003, label_smoothing: 0.1, clip_norm: 0.5}
schedule: {kind: cosine, warmup_steps: 2}
training: {max_steps: 6, max_tokens: 300, device: cpu}
eval: {every: 100, max_examples: 3, max_len: 8, samples: 0}
"""

LM = """
task: {name: lm, options: {dataset: DATASET}}
model: {name: gpt, d_model: 32, n_heads: 2, d_ff: 64, n_decoder_layers: 2, dropout: 0.0, max_len: 16,
        positions: learned}
optim: {lr: 0.003, label_smoothing: 0.0}
schedule: {kind: constant, warmup_steps: 0}
training: {max_steps: 5, batch_size: 6, context: 16, grad_accum: 2, device: cpu}
eval: {every: 100, lm_tokens: 64, samples: 0}
"""


def _weights(run: Path) -> dict[str, torch.Tensor]:
    """The model weights, less the attention key-projection biases: their gradient is exactly zero in theory
    (softmax ignores a constant added to every score), so what they get is rounding noise, which Adam's
    ``m / sqrt(v)`` turns into full-size steps that depend on the order of floating-point sums."""
    tensors = load_file(str(run / "checkpoints" / "last.safetensors"))
    weights = {k: v for k, v in tensors.items() if not k.startswith("_train.")}
    assert any(k.endswith("k_proj.bias") for k in weights)
    return {k: v for k, v in weights.items() if not k.endswith("k_proj.bias")}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["seq2seq", "lm"])
def test_two_processes_equal_one(tmp_path: Path, recipe: str) -> None:
    if shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("torchrun is not installed next to this Python")
    text = tmp_path / "text.txt"
    text.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(200)))
    config = tmp_path / "recipe.yaml"
    config.write_text((SEQ2SEQ if recipe == "seq2seq" else LM).replace("DATASET", str(text)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(
        [sys.executable, "-m", "qkv", "train", str(config), "--out", str(one), "--no-progress"],
        check=True,
        env=env,
        capture_output=True,
    )
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    done = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "qkv",
            "train",
            str(config),
            "--out",
            str(two),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=lambda m, k=key: f"{k}: {m}")

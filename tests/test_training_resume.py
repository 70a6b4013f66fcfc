"""Exact resumption: a run killed with SIGKILL (or stopped with Ctrl-C) and resumed ends with the same weights,
bit for bit, as a run that was never interrupted (CPU). The CLI runs in subprocesses, as a user would run it.

The recipe uses dropout (global torch RNG), a token-budget batcher (data position), evaluation in the middle
of training (must not disturb either) and checkpoints every step (so the kill lands at a random point,
possibly in the middle of writing one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

RECIPE = """
task:
  name: g2p
  options: {source: cmudict, max_examples: 400, max_eval_examples: 10}
model:
  name: transformer
  d_model: 32
  n_heads: 2
  d_ff: 64
  n_encoder_layers: 1
  n_decoder_layers: 1
  dropout: 0.2
optim: {lr: 0.003, label_smoothing: 0.1}
schedule: {kind: noam, warmup_steps: 10}
training:
  max_steps: 80
  max_tokens: 200
  save_every: 1
  log_every: 5
eval:
  every: 25
  max_examples: 5
  max_len: 12
"""


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "qkv", "train", *args, "--no-progress"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints" / "last.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def _weights_and_optimizer(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last.safetensors"))  # weights + AdamW moments + RNG + data


def _logged_step(run: Path) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return max((json.loads(line)["step"] for line in lines if line.strip()), default=0)
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_interrupt_then_resume_equals_uninterrupted(tmp_path: Path, how: str) -> None:
    recipe = tmp_path / "tiny.yaml"
    # kill -9 can't be caught: checkpoint every step so it lands anywhere, even mid-write. Ctrl-C is caught:
    # with checkpoints only at evaluations (every 25 steps) the loop must save the step it stopped at.
    recipe.write_text(RECIPE if how == "kill -9" else RECIPE.replace("save_every: 1", "save_every: 0"))
    straight, killed = tmp_path / "straight", tmp_path / "killed"

    subprocess.run(_cmd(str(recipe), "--out", str(straight)), check=True, env=_env(), capture_output=True)

    proc = subprocess.Popen(
        _cmd(str(recipe), "--out", str(killed)),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while _logged_step(killed) < 30 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    _, stderr = proc.communicate()
    interrupted_at = _step(killed)
    assert 25 <= interrupted_at < 80
    if how == "ctrl-c":
        assert proc.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr
        assert interrupted_at >= 30  # saved where it stopped, not at the last evaluation (step 25)

    done = subprocess.run(
        _cmd(str(recipe), "--out", str(killed), "--resume"), env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["step"] == 80

    a, b = _weights_and_optimizer(straight), _weights_and_optimizer(killed)
    assert a.keys() == b.keys()
    model_keys = [k for k in a if not k.startswith("_train.")]
    assert model_keys and any(k.startswith("_train.optim.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume from step {interrupted_at}"
    # the metrics log tells one history: every step logged once
    steps = [
        json.loads(line)["step"]
        for line in (killed / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == "train"
    ]
    assert steps == list(range(5, 81, 5))


def test_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    from qkv.cli import main

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    assert main(["train", str(recipe), "--out", str(tmp_path / "none"), "--resume", "--no-progress"]) == 2

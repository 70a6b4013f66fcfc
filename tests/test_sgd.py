"""Plain SGD and the step-decay schedule (``optim.name: sgd``, ``schedule.kind: step``), the way Zaremba et
al. 2014 train their PTB language models: the schedule against the formula of their released code, one
SGD update against a hand computation, and a bit-exact resume with SGD's momentum buffer in the
checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from qkv.errors import UserError
from qkv.training.config import ScheduleConfig, load_config
from qkv.training.schedule import learning_rate
from test_truncated_bptt import _recipe


def test_step_decay_is_zaremba_per_epoch_halving() -> None:
    """Zaremba et al. 2014, section 4: lr 1, "after 4 epochs we decrease the learning rate by a factor of 2
    after each epoch", 13 epochs -- as TensorFlow's ptb_word_lm.py writes it for the "small" config: epoch
    ``i`` (0-based) runs at ``lr * decay ** max(i + 1 - max_epoch, 0)``, max_epoch 4, decay 0.5. (The
    authors' Lua code halves one epoch later, from the 6th epoch on: ``decay_start`` = 5 epochs.)"""
    steps_per_epoch, peak = 7, 1.0
    cfg = ScheduleConfig(kind="step", warmup_steps=0, decay_start=4 * steps_per_epoch, decay_every=steps_per_epoch)
    for step in range(1, 13 * steps_per_epoch + 1):
        epoch = (step - 1) // steps_per_epoch
        assert learning_rate(step, peak, cfg, 0) == peak * 0.5 ** max(epoch + 1 - 4, 0), step


def test_step_decay_by_hand_with_warmup() -> None:
    cfg = ScheduleConfig(kind="step", warmup_steps=2, decay_start=4, decay_every=2, decay=0.1)
    got = [learning_rate(s, 2.0, cfg, 0) for s in range(1, 10)]
    assert got == pytest.approx([1.0, 2.0, 2.0, 2.0, 0.2, 0.2, 0.02, 0.02, 0.002])


def _sgd(momentum: str = "0.0") -> list[str]:
    """Overrides that turn test_truncated_bptt's tiny carried-state LSTM recipe into an SGD one: lr 1, the
    gradient norm clipped at 0.25, halved every 5 steps after step 10."""
    return [
        "optim.name=sgd",
        "optim.lr=1.0",
        f"optim.momentum={momentum}",
        "optim.clip_norm=0.25",
        "schedule.kind=step",
        "schedule.warmup_steps=0",
        "schedule.decay_start=10",
        "schedule.decay_every=5",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["schedule.decay=0"], "schedule.decay: must"),
        (["schedule.decay_every=0"], "schedule.decay_every: must"),
        (["schedule.decay_start=5", "schedule.warmup_steps=10"], "schedule.decay_start: must be >= warmup_steps"),
        (["schedule.kind=noam"], "schedule.decay_start: applies to schedule.kind: step only"),
        (["optim.momentum=1.5"], "optim.momentum: must"),
        (["optim.name=adagrad"], "optim.name"),
        (["optim.name=adamw"], "optim.momentum: applies to optim.name: sgd only"),
    ],
)
def test_bad_sgd_settings_name_their_key(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_config(_recipe(tmp_path, "lstm-lm", 10), _sgd("0.9") + overrides)


def test_resume_refuses_another_optimizer_or_its_settings(tmp_path: Path) -> None:
    """A checkpoint's optimizer settings would otherwise replace the config's in silence (momentum), or fail
    at the next step with a KeyError (AdamW's state loaded into SGD)."""
    from qkv.training.loop import train

    run = tmp_path / "run"
    train(load_config(_recipe(tmp_path, "lstm-lm", 10), _sgd()), run, progress=False)
    for overrides, message in [
        (["optim.momentum=0.9"], r"optim.momentum = 0.0, this config says 0.9"),
        (["optim.name=adamw", "optim.momentum=0.0"], "trained with SGD, this config asks for AdamW"),
    ]:
        config = load_config(_recipe(tmp_path, "lstm-lm", 20), _sgd() + overrides)
        with pytest.raises(UserError, match=message):
            train(config, run, resume=True, progress=False)


def test_one_sgd_update_by_hand(tmp_path: Path) -> None:
    """w' = w - lr * (g + weight_decay * w) on matrices, w - lr * g on biases (weight decay skips 1-d)."""
    from qkv.training.loop import build_optimizer

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: {name: g2p}\noptim: {name: sgd, lr: 0.5, weight_decay: 0.1}\n")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    model(torch.randn(4, 3)).pow(2).sum().backward()
    gw, gb = model.weight.grad.clone(), model.bias.grad.clone()
    optimizer = build_optimizer(model, load_config(recipe))
    assert isinstance(optimizer, torch.optim.SGD)
    optimizer.step()
    torch.testing.assert_close(model.weight.detach(), w - 0.5 * (gw + 0.1 * w))
    torch.testing.assert_close(model.bias.detach(), b - 0.5 * gb)


@pytest.mark.parametrize("momentum", ["0.0", "0.9"])
def test_an_sgd_run_resumes_bit_exactly_and_learns(tmp_path: Path, momentum: str) -> None:
    from qkv.training.loop import train

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(load_config(_recipe(tmp_path, "lstm-lm", 30), _sgd(momentum)), straight, progress=False)
    train(load_config(_recipe(tmp_path, "lstm-lm", 15), _sgd(momentum)), resumed, progress=False)
    train(load_config(_recipe(tmp_path, "lstm-lm", 30), _sgd(momentum)), resumed, resume=True, progress=False)
    a = load_file(str(straight / "checkpoints" / "last.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    assert any("momentum_buffer" in k for k in a) == (momentum != "0.0")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "lr" in r]  # the training log (evaluations have no lr)
    assert [r["lr"] for r in rows if "lr" in r][-1] == pytest.approx(1 / 16)  # halved at steps 11, 16, 21, 26
    assert losses[-1] < losses[0] - 0.3, losses  # SGD at lr 1 with clipping learns the repeated line

"""Pieces of the training loop against reference computations: schedules vs the paper's formula and
PyTorch's own cosine scheduler, checkpoints vs torch's in-memory state, averaging vs a hand mean, RNG
round trips, atomic writes, and the non-finite-loss stop."""

from __future__ import annotations

import copy
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from qkv.errors import UserError
from qkv.training import checkpoint as ckpt
from qkv.training import rng
from qkv.training.config import ScheduleConfig, load_config
from qkv.training.schedule import learning_rate


def test_noam_is_vaswani_formula_scaled_to_its_peak() -> None:
    d_model, warmup = 512, 4000
    paper = lambda s: d_model**-0.5 * min(s**-0.5, s * warmup**-1.5)  # noqa: E731 (section 5.3)
    peak = paper(warmup)
    cfg = ScheduleConfig(kind="noam", warmup_steps=warmup)
    for step in (1, 10, 1000, 3999, 4000, 4001, 20000, 100000):
        assert learning_rate(step, peak, cfg, 100000) == pytest.approx(paper(step), rel=1e-12)


def test_cosine_matches_torch_cosine_annealing_after_warmup() -> None:
    warmup, total, peak, floor = 10, 110, 0.01, 0.001
    cfg = ScheduleConfig(kind="cosine", warmup_steps=warmup, min_lr=floor)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=peak)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=floor)
    for step in range(warmup, total + 1):
        assert learning_rate(step, peak, cfg, total) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()
    assert learning_rate(5, peak, cfg, total) == pytest.approx(peak * 5 / warmup)  # linear warmup
    assert learning_rate(500, peak, cfg, total) == pytest.approx(floor)  # stays at the floor


def _trained_optimizer(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.AdamW]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(
        [
            {"params": [model[0].weight, model[2].weight], "weight_decay": 0.1},
            {"params": [model[0].bias, model[2].bias], "weight_decay": 0.0},
        ],
        lr=0.01,
    )
    for _ in range(3):
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path: Path) -> None:
    model, opt = _trained_optimizer()
    tensors, data = ckpt.optimizer_to_saveable(opt)
    ckpt.save_checkpoint(tmp_path / "c.safetensors", model.state_dict(), tensors, {"optimizer": data})
    weights, loaded_tensors, state = ckpt.load_checkpoint(tmp_path / "c.safetensors")

    reference_model = copy.deepcopy(model)  # torch's own in-memory state is the reference
    reference_opt = type(opt)(
        [
            {"params": [reference_model[0].weight, reference_model[2].weight]},
            {"params": [reference_model[0].bias, reference_model[2].bias]},
        ],
        lr=0.01,
    )
    reference_opt.load_state_dict(copy.deepcopy(opt.state_dict()))

    fresh, _ = _trained_optimizer(seed=1)  # different weights and moments, overwritten below
    fresh.load_state_dict(weights)
    fresh_opt = torch.optim.AdamW(  # the same settings (a resume refuses others), another learning rate
        [
            {"params": [fresh[0].weight, fresh[2].weight], "weight_decay": 0.1},
            {"params": [fresh[0].bias, fresh[2].bias], "weight_decay": 0.0},
        ],
        lr=0.5,
    )
    ckpt.optimizer_from_saveable(fresh_opt, loaded_tensors, json.loads(json.dumps(state["optimizer"])))
    x = torch.randn(6, 4)
    for m, o in ((reference_model, reference_opt), (fresh, fresh_opt)):
        m(x).pow(2).sum().backward()
        o.step()
    for a, b in zip(reference_model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    assert fresh_opt.param_groups[0]["weight_decay"] == 0.1 and fresh_opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_checkpoint_is_plain_safetensors_with_tied_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight  # tied, as in the models' output projections
    state = {"emb.weight": emb.weight, "head.weight": head.weight}
    ckpt.save_checkpoint(tmp_path / "w.safetensors", state)
    loaded = load_file(str(tmp_path / "w.safetensors"))  # any safetensors reader opens it
    assert torch.equal(loaded["emb.weight"], emb.weight) and torch.equal(loaded["head.weight"], emb.weight)
    (tmp_path / "bad.safetensors").write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(UserError, match="bad.safetensors"):
        ckpt.load_checkpoint(tmp_path / "bad.safetensors")


def test_average_checkpoints_is_elementwise_mean(tmp_path: Path) -> None:
    states = [{"w": torch.randn(3, 4), "b": torch.randn(4)} for _ in range(3)]
    for i, s in enumerate(states):
        ckpt.save_checkpoint(tmp_path / f"{i}.safetensors", s)
    averaged = ckpt.average_checkpoints([tmp_path / f"{i}.safetensors" for i in range(3)])
    for key in ("w", "b"):
        expected = (states[0][key] + states[1][key] + states[2][key]) / 3
        torch.testing.assert_close(averaged[key], expected)


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.safetensors"
    ckpt.atomic_write(path, b"old")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed between writing the temp file and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]  # no temp file left behind


def test_rng_capture_restore_round_trip() -> None:
    rng.seed_everything(5)
    tensors, data = rng.capture()
    data = json.loads(json.dumps(data))  # survives JSON
    first = (torch.rand(3), random.random(), np.random.rand())
    torch.rand(7), random.random(), np.random.rand()  # move on
    rng.restore(tensors, data)
    second = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


RECIPE = """
task: {name: copy, options: {length: 4, num_examples: 64, num_eval_examples: 4, vocab_size: 5}}
model: {name: transformer, d_model: 16, n_heads: 2, d_ff: 32, n_encoder_layers: 1, n_decoder_layers: 1,
        dropout: 0.0, max_len: 16}
training: {max_steps: 6, max_tokens: 64, save_every: 1, log_every: 1}
eval: {every: 100, max_examples: 2, max_len: 6, samples: 0}
"""


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from qkv.training import loop

    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    real_loss, calls = loop._loss_sum, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        value = real_loss(*args, **kwargs)
        return value * math.nan if calls["n"] == 4 else value  # the 4th step goes bad

    monkeypatch.setattr(loop, "_loss_sum", poisoned)
    with pytest.raises(loop.TrainingDiverged, match=r"nan at step 4.*last\.safetensors \(step 3\)"):
        loop.train(load_config(recipe), tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "checkpoints" / "last.json").read_text())["step"] == 3
    weights, _, state = ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert state["step"] == 3 and all(torch.isfinite(w).all() for w in weights.values())


def test_training_train_is_the_loop_function_imported_lazily() -> None:
    import inspect
    import subprocess
    import sys

    import qkv.training
    import qkv.training.loop

    assert qkv.training.train is qkv.training.loop.train
    parameters = inspect.signature(qkv.training.train).parameters  # the real ones, not (*args, **kwargs)
    assert list(parameters)[:2] == ["config", "out"]
    assert all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters.values())
    code = "import sys, qkv.training; print('qkv.training.loop' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_checkpoint_average_reads_only_the_scheduled_saves(tmp_path: Path) -> None:
    """Saves made by the clock (``save_every_seconds``; here at every step) or by Ctrl-C keep the run
    resumable but are not averaged: the average is the mean of the ``save_every`` saves and the last step,
    so it does not depend on the machine's speed or on when the run was interrupted."""
    from qkv.training.config import from_dict
    from qkv.training.loop import train

    config = from_dict(
        {
            "task": {"name": "reverse", "options": {"length": 5, "num_examples": 200, "vocab_size": 6}},
            "model": {"name": "transformer", "d_model": 16, "n_heads": 2, "d_ff": 32, "n_encoder_layers": 1,
                      "n_decoder_layers": 1, "max_len": 16},
            "training": {"max_steps": 17, "max_tokens": 128, "save_every": 5, "save_every_seconds": 1e-9,
                         "average_last": 3, "log_every": 5},
            "eval": {"every": 100, "max_examples": 4, "max_len": 8},
        }
    )  # fmt: skip
    run = tmp_path / "run"
    train(config, run, progress=False)
    checkpoints = run / "checkpoints"
    steps = sorted(p.name for p in checkpoints.glob("step-*.safetensors"))
    assert steps == ["step-00000010.safetensors", "step-00000015.safetensors", "step-00000017.safetensors"]
    averaged, _, _ = ckpt.load_checkpoint(checkpoints / "averaged.safetensors")
    parts = [ckpt.load_checkpoint(checkpoints / name)[0] for name in steps]
    for key, value in averaged.items():
        torch.testing.assert_close(value, sum(part[key] for part in parts) / 3)


def test_bf16_on_cpu_autocasts_each_step_and_keeps_float32_weights(tmp_path: Path, monkeypatch) -> None:
    """``training.precision: bf16`` on a CPU (which has bf16 matrix units, AMX, on some machines): every
    forward runs under CPU autocast to bfloat16, while the parameters and the loss stay float32; the run
    follows the fp32 run closely but not exactly (the products really are rounded to bf16)."""
    from qkv.training import loop

    real_loss, seen = loop._loss_sum, []

    def recording(*args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(loop, "_loss_sum", recording)
    losses, weights = {}, {}
    for precision in ("fp32", "bf16"):
        seen.clear()
        recipe = tmp_path / f"{precision}.yaml"
        recipe.write_text(RECIPE.replace("log_every: 1}", f"log_every: 1, device: cpu, precision: {precision}}}"))
        loop.train(load_config(recipe), tmp_path / precision, progress=False)
        assert seen == [(precision == "bf16", torch.bfloat16)] * 6  # one forward per step, autocast as asked
        lines = (tmp_path / precision / "metrics.jsonl").read_text().splitlines()
        losses[precision] = [json.loads(line)["loss"] for line in lines if '"train"' in line]
        weights[precision], _, _ = ckpt.load_checkpoint(tmp_path / precision / "checkpoints" / "last.safetensors")
    assert all(w.dtype == torch.float32 for w in weights["bf16"].values())
    first_fp32, first_bf16 = losses["fp32"][0], losses["bf16"][0]
    assert first_bf16 != first_fp32 and first_bf16 == pytest.approx(first_fp32, rel=2e-2)
    assert losses["bf16"][-1] == pytest.approx(losses["fp32"][-1], rel=5e-2)

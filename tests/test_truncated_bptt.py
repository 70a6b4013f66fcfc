"""Truncated backpropagation through time for the recurrent language models (``training.carry_state``;
Zaremba et al. 2014): the segment stream worked by hand, segment-by-segment forwards equal to one
forward over the whole stream (PyTorch's own ``nn.LSTM``/``nn.GRU`` run in one call is the reference),
the carried evaluation equal to a full-length scoring, exact resumption with the carried state in the
checkpoint, and the config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from qkv.errors import UserError
from qkv.models import ModelConfig, build_model
from qkv.models.config import RECURRENT_LM_NAMES
from qkv.models.recurrent_decoder import RecurrentState
from qkv.training.batches import LMSegmentStream
from qkv.training.evaluate import lm_nll

VOCAB = 13


def tiny(name: str, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(name=name, d_model=6, hidden_size=8, n_rnn_layers=2, dropout=0.0)
    model = build_model(config, VOCAB, VOCAB).eval()
    with torch.no_grad():  # sharper distributions than a fresh init, so differences show
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


# ---- the stream, by hand -------------------------------------------------------------------------------


def test_segments_follow_each_other_and_a_new_epoch_starts_from_zeros():
    stream = LMSegmentStream(torch.arange(50), batch_size=2, context=4)
    # two streams of 25 tokens: 0..24 and 25..49; (25 - 1) // 4 = 6 segments of 4 inputs per epoch
    assert stream.segments_per_epoch == 6
    first = stream.next()
    assert first.tgt.tolist() == [[0, 1, 2, 3, 4], [25, 26, 27, 28, 29]]
    assert first.carried and first.state is None and first.global_tokens == 8
    marker = RecurrentState(hidden=torch.full((1, 2, 3), 7.0))
    stream.carry(marker)
    second = stream.next()
    assert second.tgt.tolist() == [[4, 5, 6, 7, 8], [29, 30, 31, 32, 33]]  # inputs start where the last ended
    assert second.state is marker
    for _ in range(4):
        last = stream.next()
        stream.carry(marker)
    assert last.tgt.tolist() == [[20, 21, 22, 23, 24], [45, 46, 47, 48, 49]]
    assert stream.epoch == 1.0
    again = stream.next()  # epoch 2: from the first token, with the zero state
    assert again.tgt.tolist() == first.tgt.tolist() and again.state is None


def test_the_stream_state_round_trips_with_the_carried_state():
    stream = LMSegmentStream(torch.arange(60), batch_size=3, context=3)
    stream.next()
    carried = RecurrentState(hidden=torch.randn(2, 3, 4), cell=torch.randn(2, 3, 4))
    stream.carry(carried)
    data, tensors = stream.state_dict()
    fresh = LMSegmentStream(torch.arange(60), batch_size=3, context=3)
    fresh.load_state_dict(data, tensors)
    a, b = stream.next(), fresh.next()
    assert torch.equal(a.tgt, b.tgt)
    assert torch.equal(a.state.hidden, b.state.hidden) and torch.equal(a.state.cell, b.state.cell)


def test_a_resumed_stream_refuses_another_geometry():
    stream = LMSegmentStream(torch.arange(60), batch_size=3, context=3)
    stream.next()
    data, tensors = stream.state_dict()
    with pytest.raises(ValueError, match="saved for context = 3, this run has 4"):
        LMSegmentStream(torch.arange(60), batch_size=3, context=4).load_state_dict(data, tensors)
    with pytest.raises(ValueError, match="saved for batch_size = 3, this run has 2"):
        LMSegmentStream(torch.arange(60), batch_size=2, context=3).load_state_dict(data, tensors)


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_the_training_loss_starts_from_the_carried_state_and_hands_on_the_final_one(name):
    from qkv.training.batches import StepBatch
    from qkv.training.loop import loss_sum

    model = tiny(name, seed=4)
    window = torch.randint(3, VOCAB, (2, 7), generator=torch.Generator().manual_seed(5))  # (B, T + 1)
    prefix = torch.randint(3, VOCAB, (2, 5), generator=torch.Generator().manual_seed(6))
    carried = model(prefix).state  # what an earlier segment would have left
    batch = StepBatch(None, window, 12, carried=True, state=carried)
    got = loss_sum(model, batch, "lm", 0.0, torch.device("cpu"))
    # reference: the whole prefix + window in one forward, scoring only the window's targets
    logits = model(torch.cat([prefix, window[:, :-1]], dim=1)).logits[:, 5:]  # (B, T, V)
    expected = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten(), reduction="sum")
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    zero = loss_sum(model, StepBatch(None, window, 12, carried=True), "lm", 0.0, torch.device("cpu"))
    assert abs(zero.item() - expected.item()) > 1e-4 * expected.item()  # 50x the tolerance of the match above
    assert not batch.final_state.hidden.requires_grad  # detached: no graph reaches into the next step
    full_state = model(torch.cat([prefix, window[:, :-1]], dim=1)).state
    assert torch.allclose(batch.final_state.hidden, full_state.hidden, atol=1e-6)


def test_too_short_a_text_is_a_clear_error():
    with pytest.raises(UserError, match="batch_size = 4 streams"):
        LMSegmentStream(torch.arange(20), batch_size=4, context=8)


# ---- the model: carried segments equal one whole forward ----------------------------------------------


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_segment_by_segment_with_the_state_carried_equals_one_forward(name):
    model = tiny(name)
    tokens = torch.randint(3, VOCAB, (3, 17), generator=torch.Generator().manual_seed(1))  # (B, T)
    whole = model(tokens)  # the reference: one call of the recurrent layer over the whole sequence
    state, pieces = None, []
    for start in range(0, 17, 5):
        out = model(tokens[:, start : start + 5], state=state)
        pieces.append(out.logits)
        state = out.state
    assert torch.allclose(torch.cat(pieces, dim=1), whole.logits, atol=1e-5)
    assert torch.allclose(state.hidden, whole.state.hidden, atol=1e-6)
    # and a zero-state restart in the middle is *not* the same (the carried state matters)
    restarted = model(tokens[:, 5:10]).logits
    assert not torch.allclose(restarted, whole.logits[:, 5:10], atol=1e-3)


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_carried_evaluation_scores_each_stream_as_one_sequence(name):
    model = tiny(name, seed=2)
    ids = torch.randint(3, VOCAB, (203,), generator=torch.Generator().manual_seed(3)).tolist()
    total, count = lm_nll(model, ids, context=8, max_tokens=202, batch_size=4, carry_state=True)
    # reference: 4 contiguous streams of 203 // 4 = 50 tokens, each scored in one full forward
    rows = torch.tensor(ids[:200]).view(4, 50)  # (B, n)
    logits = model(rows[:, :-1]).logits  # (B, n - 1, V)
    expected = F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), reduction="sum")
    assert count == 4 * 49
    assert total == pytest.approx(expected.item(), rel=1e-5)
    # zero-state windows of 8 lose the context at every window start: a different number
    windowed, _ = lm_nll(model, ids, context=8, max_tokens=202, batch_size=4)
    assert windowed != pytest.approx(total, rel=1e-3)


# ---- the training loop --------------------------------------------------------------------------------

RECIPE = """
task: {name: lm, options: {dataset: TEXT}}
model: {name: NAME, d_model: 16, hidden_size: 24, n_rnn_layers: 2, dropout: 0.1}
optim: {lr: 0.01, label_smoothing: 0.0}
schedule: {kind: constant, warmup_steps: 2}
training: {max_steps: STEPS, batch_size: 4, context: 12, log_every: 5, save_every: 5, carry_state: true}
eval: {every: 1000, lm_tokens: 400, samples: 0}
"""


def _recipe(tmp_path: Path, name: str, steps: int) -> Path:
    text = tmp_path / "text.txt"
    if not text.exists():
        text.write_text("".join(f"to be or not to be, line {i % 7}.\n" for i in range(60)))
    recipe = tmp_path / f"{name}-{steps}.yaml"
    recipe.write_text(RECIPE.replace("TEXT", str(text)).replace("NAME", name).replace("STEPS", str(steps)))
    return recipe


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_a_resumed_run_carries_the_same_state_and_ends_with_the_same_weights(tmp_path: Path, name: str):
    from qkv.training.config import load_config
    from qkv.training.loop import train

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(load_config(_recipe(tmp_path, name, 30)), straight, progress=False)
    train(load_config(_recipe(tmp_path, name, 15)), resumed, progress=False)
    train(load_config(_recipe(tmp_path, name, 30)), resumed, resume=True, progress=False)
    a = load_file(str(straight / "checkpoints" / "last.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "last.safetensors"))
    assert "_train.data.carry.hidden" in a and a.keys() == b.keys()
    assert ("_train.data.carry.cell" in a) == (name == "lstm-lm")
    assert a["_train.data.carry.hidden"].abs().sum() > 0  # a real carried state, saved with the weights
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_carrying_the_state_helps_the_trained_model_at_evaluation(tmp_path: Path):
    from qkv.training.config import load_config
    from qkv.training.loop import train
    from qkv.training.run import load_run

    run = tmp_path / "run"
    train(load_config(_recipe(tmp_path, "lstm-lm", 400)), run, progress=False)
    loaded = load_run(run)
    ids = loaded.tgt_tok.encode((tmp_path / "text.txt").read_text())
    carried, n_carried = lm_nll(loaded.model, ids, context=12, max_tokens=len(ids) - 1, carry_state=True)
    windows, n_windows = lm_nll(loaded.model, ids, context=12, max_tokens=len(ids) - 1)
    # each zero-state window starts blind; the carried streams know where in the line they are
    assert carried / n_carried < 0.8 * (windows / n_windows), (carried / n_carried, windows / n_windows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "gpt"}, "needs task lm with model lstm-lm/gru-lm"),
        ({"grad_accum": 2}, "needs training.grad_accum = 1"),
    ],
)
def test_the_config_says_what_carrying_the_state_needs(change, message):
    from qkv.training.config import from_dict

    data = {
        "task": {"name": "lm", "options": {"dataset": "ptb"}},
        "model": {"name": change.get("model", "lstm-lm"), "d_model": 16, "hidden_size": 16},
        "training": {"carry_state": True, "grad_accum": change.get("grad_accum", 1)},
    }
    if data["model"]["name"] == "gpt":
        data["model"] = {"name": "gpt", "d_model": 16, "n_heads": 2}
    with pytest.raises(UserError, match="training.carry_state") as err:
        from_dict(data)
    assert message in str(err.value)

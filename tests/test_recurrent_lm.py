"""The recurrent language models (``lstm-lm``, ``gru-lm``; Zaremba et al. 2014): the cell equations by hand
and PyTorch's own ``nn.LSTM``/``nn.GRU`` with the same weights as references, cached stepping equal to the
full forward, Zaremba's dropout placement, the shared decoding (greedy, beam, sampling) and the LM
training loop on a tiny text."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qkv.decoding import beam_search, greedy, sample, sequence_log_probs
from qkv.models import ModelConfig, build_model
from qkv.models.config import RECURRENT_LM_NAMES
from qkv.models.recurrent_lm import RecurrentLM
from qkv.special import BOS_ID, EOS_ID

VOCAB = 11
PROMPTS = [[BOS_ID, 4, 5, 6], [BOS_ID], [BOS_ID, 7, 7]]


def tiny(name: str, *, layers: int = 2, dropout: float = 0.0, seed: int = 0, sharpen: bool = True) -> RecurrentLM:
    torch.manual_seed(seed)
    config = ModelConfig(name=name, d_model=6, hidden_size=8, n_rnn_layers=layers, dropout=dropout)
    model = build_model(config, VOCAB, VOCAB).eval()
    if sharpen:
        with torch.no_grad():  # sharper, more varied distributions than a fresh init gives
            for parameter in model.parameters():
                parameter.mul_(4.0)
    return model


def tokens(batch: int = 3, length: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))  # (B, T)


# ---- the equations, by hand ----------------------------------------------------------------------------


def lstm_by_hand(x: torch.Tensor, rnn: torch.nn.LSTM) -> torch.Tensor:
    """One layer: ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``, gates in PyTorch's order i, f, g, o."""
    batch, hidden = x.size(0), rnn.hidden_size
    h, c, outs = x.new_zeros(batch, hidden), x.new_zeros(batch, hidden), []
    for t in range(x.size(1)):
        pre = x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0  # (B, 4H)
        i, f, g, o = pre.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, dim=1)  # (B, T, H)


def gru_by_hand(x: torch.Tensor, rnn: torch.nn.GRU) -> torch.Tensor:
    """One layer: ``n = tanh(W_in x + r * (W_hn h))``, ``h_t = (1 - z) * n + z * h_{t-1}``, gates r, z, n."""
    h, outs = x.new_zeros(x.size(0), rnn.hidden_size), []
    for t in range(x.size(1)):
        xr, xz, xn = (x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0).chunk(3, dim=-1)  # (B, H) each
        hr, hz, hn = (h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0).chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        outs.append(h)
    return torch.stack(outs, dim=1)  # (B, T, H)


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_one_layer_equals_the_equations_and_torch_with_the_same_weights(name):
    model = tiny(name, layers=1)
    x = tokens()
    with torch.no_grad():
        got = model(x).logits  # (B, T, V)
        embedded = F.embedding(x, model.embedding.weight)  # (B, T, E)
        cls = torch.nn.LSTM if name == "lstm-lm" else torch.nn.GRU
        reference = cls(6, 8, batch_first=True)  # a fresh module of PyTorch's, given the model's weights
        reference.load_state_dict(model.rnn.state_dict())
        from_torch = reference(embedded)[0] @ model.lm_head.weight.T  # (B, T, V)
        by_hand = (lstm_by_hand if name == "lstm-lm" else gru_by_hand)(embedded, reference) @ model.lm_head.weight.T
    torch.testing.assert_close(got, from_torch, atol=1e-6, rtol=0)
    torch.testing.assert_close(got, by_hand, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_two_layers_feed_the_first_layer_output_to_the_second(name):
    model = tiny(name, layers=2)
    x = tokens()
    cls = torch.nn.LSTM if name == "lstm-lm" else torch.nn.GRU
    first, second = cls(6, 8, batch_first=True), cls(8, 8, batch_first=True)
    weights = model.rnn.state_dict()
    first.load_state_dict({k: v for k, v in weights.items() if k.endswith("_l0")})
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in weights.items() if k.endswith("_l1")})
    with torch.no_grad():
        hidden = second(first(model.embedding(x))[0])[0]  # (B, T, H)
        torch.testing.assert_close(model(x).logits, model.lm_head(hidden), atol=1e-6, rtol=0)


# ---- cached stepping == full forward -------------------------------------------------------------------


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_decode_step_token_by_token_and_in_chunks_equals_the_full_forward(name):
    model = tiny(name)
    x = tokens(length=10)
    with torch.no_grad():
        full = model(x).logits  # (B, T, V)
        state = model.init_state(model.encode(None), x.size(0))
        one_by_one = []
        for t in range(x.size(1)):
            logits, state = model.decode_step(x[:, t : t + 1], None, state)  # (B, 1, V)
            one_by_one.append(logits)
        state = model.init_state(None, x.size(0))
        chunks = []
        for piece in (x[:, :4], x[:, 4:5], x[:, 5:]):  # a prompt, then one token, then the rest
            logits, state = model.decode_step(piece, None, state)
            chunks.append(logits)
    torch.testing.assert_close(torch.cat(one_by_one, dim=1), full, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_reorder_selects_state_rows_and_future_tokens_do_not_leak(name):
    model = tiny(name)
    x = tokens(length=8)
    with torch.no_grad():
        _, state = model.decode_step(x[:, :5], None, model.init_state(None, 3))
        _, picked = model.reorder(None, state, torch.tensor([2, 0, 0]))
        logits, _ = model.decode_step(x[[2, 0, 0], 5:], None, picked)
        torch.testing.assert_close(logits, model(x[[2, 0, 0]]).logits[:, 5:], atol=1e-5, rtol=0)
        changed = x.clone()
        changed[:, 4:] = (changed[:, 4:] + 1) % VOCAB
        torch.testing.assert_close(model(changed).logits[:, :4], model(x).logits[:, :4], atol=0, rtol=0)


# ---- Zaremba's dropout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_dropout_sits_where_zaremba_puts_it(name):
    """On the embeddings, between layers and before the output layer; nn.LSTM/GRU never drop h_{t-1} -> h_t."""
    model = tiny(name, layers=2, dropout=0.5, sharpen=False)
    assert model.rnn.dropout == 0.5  # between the layers (nn.LSTM/GRU drop each layer's output but the last)
    assert model.dropout.p == 0.5  # on the embeddings and on the top layer's output
    plain = tiny(name, layers=2, dropout=0.0, sharpen=False)
    plain.load_state_dict(model.state_dict())
    x = tokens()
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x).logits, plain(x).logits, atol=0, rtol=0)  # eval: no dropout
        model.train()
        assert not torch.allclose(model(x).logits, model(x).logits)  # train: fresh masks per call
    one_layer = build_model(ModelConfig(name=name, d_model=6, hidden_size=8, n_rnn_layers=1, dropout=0.5), 5, 5)
    assert one_layer.rnn.dropout == 0.0  # nothing between layers when there is one layer


# ---- initial loss, config ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
@pytest.mark.parametrize("tied", [False, True])
def test_starts_at_the_uniform_loss_tied_or_not(name, tied):
    vocab = 2000
    torch.manual_seed(0)
    config = ModelConfig(name=name, d_model=128, hidden_size=128, n_rnn_layers=2, dropout=0.0, tie_embeddings=tied)
    model = build_model(config, vocab, vocab).eval()
    assert (model.lm_head.weight is model.embedding.weight) == tied
    x, y = torch.randint(4, vocab, (2, 4, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss = F.cross_entropy(model(x).logits.reshape(-1, vocab), y.reshape(-1)).item()
    assert abs(loss - math.log(vocab)) < 0.3


def test_config_rejects_what_a_language_model_cannot_have():
    with pytest.raises(ValueError, match="model.attention"):
        ModelConfig(name="lstm-lm", attention="additive").validate()
    with pytest.raises(ValueError, match="model.bidirectional"):
        ModelConfig(name="gru-lm", bidirectional=True).validate()
    with pytest.raises(ValueError, match="d_model == model.hidden_size"):
        build_model(ModelConfig(name="lstm-lm", d_model=16, hidden_size=32, tie_embeddings=True), 9, 9)
    config = ModelConfig(name="gru-lm").validate()
    assert (config.rnn_cell, config.attention, config.family) == ("gru", "none", "recurrent")


# ---- the shared decoding -------------------------------------------------------------------------------


def forward_continuation(model: RecurrentLM, prompt: list[int], steps: int) -> list[int]:
    """Greedy by hand: the argmax of the last position of a full forward, appended, repeated."""
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            token = int(model(torch.tensor([seq])).logits[0, -1].argmax())
            if token == EOS_ID:
                break
            seq.append(token)
    return seq[len(prompt) :]


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_greedy_beam_and_sampling_continue_prompts(name):
    model = tiny(name, seed=1)
    g = greedy(model, None, max_len=6, prompt=PROMPTS)
    assert all(g.tokens[row] == forward_continuation(model, p, 6) for row, p in enumerate(PROMPTS))
    for row, prompt in enumerate(PROMPTS):  # prompts of different lengths in one batch = each alone
        assert greedy(model, None, max_len=6, prompt=[prompt]).tokens[0] == g.tokens[row]
    assert g.scores == pytest.approx(
        sequence_log_probs(model, None, g.tokens, prompt=PROMPTS, add_eos=g.finished), abs=1e-4
    )

    assert beam_search(model, None, beam=1, max_len=6, prompt=PROMPTS).tokens == g.tokens
    b = beam_search(model, None, beam=4, max_len=6, prompt=PROMPTS, length_penalty=0.0, early_stopping=False)
    assert b.scores == pytest.approx(
        sequence_log_probs(model, None, b.tokens, prompt=PROMPTS, add_eos=b.finished), abs=1e-4
    )
    assert all(bs >= gs - 1e-5 for bs, gs in zip(b.scores, g.scores, strict=True))

    def draw(seed: int, **options):
        return sample(model, None, max_len=6, prompt=PROMPTS, generator=torch.Generator().manual_seed(seed), **options)

    assert draw(0, top_k=1).tokens == g.tokens
    first, again = draw(0), draw(0)
    assert first.tokens == again.tokens  # a seeded generator repeats exactly
    assert first.scores == pytest.approx(
        sequence_log_probs(model, None, first.tokens, prompt=PROMPTS, add_eos=first.finished), abs=1e-4
    )


# ---- the LM training loop ------------------------------------------------------------------------------

RECIPE = """
task: {name: lm, options: {dataset: TEXT}}
model: {name: NAME, d_model: 24, hidden_size: 32, n_rnn_layers: 2, dropout: 0.1}
optim: {lr: 0.01, label_smoothing: 0.0}
schedule: {kind: constant, warmup_steps: 2}
training: {max_steps: 80, batch_size: 8, context: 24, log_every: 10}
eval: {every: 80, lm_tokens: 200, samples: 1}
"""


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_the_lm_training_loop_trains_it(tmp_path: Path, name: str):
    from qkv.training.config import load_config
    from qkv.training.loop import train
    from qkv.training.run import load_run

    text = tmp_path / "text.txt"
    text.write_text("".join(f"to be or not to be, line {i % 7}.\n" for i in range(300)))
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(RECIPE.replace("TEXT", str(text)).replace("NAME", name))
    run = tmp_path / "run"
    train(load_config(recipe), run, progress=False)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["split"] == "train"]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0], losses
    loaded = load_run(run)
    assert isinstance(loaded.model, RecurrentLM) and loaded.model.cell == name.split("-")[0]
    assert (run / "samples.txt").read_text().strip()  # the loop's own sampled continuation


@pytest.mark.parametrize("name", ["lstm-lm", "gru-lm", "lstm", "gru-attention"])
def test_init_range_draws_every_parameter_uniformly(name):
    """``model.init_range: 0.1`` (Zaremba et al. 2014): every parameter in [-0.1, 0.1], spread over it
    (a uniform draw's standard deviation is a / sqrt(3)), padding rows still zero, the loss still ln V."""
    import math

    from qkv.models import ModelConfig, build_model

    config = ModelConfig(name=name, d_model=16, hidden_size=24, n_rnn_layers=2, init_range=0.1)
    torch.manual_seed(0)
    model = build_model(config, 50, 60)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert weights.abs().max() <= 0.1
    assert weights.std().item() == pytest.approx(0.1 / math.sqrt(3), rel=0.05)
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
            assert not module.weight[module.padding_idx].any()
    tokens = torch.randint(4, 60, (4, 12))
    with torch.no_grad():
        logits = model(tokens).logits if name.endswith("-lm") else model(torch.randint(4, 50, (4, 9)), tokens).logits
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.randint(4, 60, (48,)))
    assert abs(loss.item() - math.log(60)) < 0.3


@pytest.mark.parametrize("name", RECURRENT_LM_NAMES)
def test_tied_with_init_range_is_press_and_wolf_tying_without_a_rescale(name):
    """Tied and drawn from U(-a, a) (Zaremba's recipe, tied as Press & Wolf 2017 tie it), the logits are the top
    layer's outputs times the shared matrix itself -- no d_model ** -0.5 rescale, which only suits N(0, 1)
    embeddings and, under plain SGD, shrank the logits' gradients so much that the medium model sat at the
    unigram loss. An explicit ``scale_logits: true`` still rescales."""
    tokens = torch.randint(4, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    for scale_logits, factor in [(None, 1.0), (True, 32**-0.5)]:
        config = ModelConfig(
            name=name, d_model=32, hidden_size=32, n_rnn_layers=2, dropout=0.0, tie_embeddings=True,
            init_range=0.05, scale_logits=scale_logits,
        )  # fmt: skip
        torch.manual_seed(0)
        model = build_model(config, 40, 40).eval()
        with torch.no_grad():
            out = model(tokens)
            by_hand = F.linear(out.hidden * factor, model.embedding.weight)  # (B, T, V): h E^T, Press & Wolf
        torch.testing.assert_close(out.logits, by_hand, rtol=0, atol=1e-6)
        assert model.lm_head.weight is model.embedding.weight


@pytest.mark.parametrize(
    ("name", "value", "message"), [("lstm-lm", -0.1, "finite number > 0"), ("gpt", 0.1, "recurrent")]
)
def test_init_range_errors_name_the_key(name, value, message):
    from qkv.models import ModelConfig

    with pytest.raises(ValueError, match=f"model.init_range.*{message}"):
        ModelConfig(name=name, init_range=value).validate()

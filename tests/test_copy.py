"""The pointer-generator output (``model.copy``; See et al. 2017): the mixture worked by hand, cached
decoding equal to the full forward, beam scores equal to the full forward's log-probabilities, the
initial loss, the config errors, and a model that learns to copy tokens it could not generate -- for the
Transformer and for the recurrent decoders with attention (Bahdanau's and Luong's)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from qkv.decoding import beam_search, greedy
from qkv.errors import UserError
from qkv.models import ModelConfig, build_model
from qkv.models.copy import GATE_BIAS, CopyGenerator
from qkv.special import BOS_ID, EOS_ID, PAD_ID

V = 17


# attention: scaled dot-product; Bahdanau's additive; Luong's with input feeding, and without (all steps at once)
COPY_MODELS = ("transformer", "gru-attention", "lstm-attention", "gru-luong")


def copy_transformer(seed: int = 0, vocab: int = V, **overrides):
    """A small copying Transformer, in eval mode; ``overrides`` change its ``ModelConfig`` fields."""
    torch.manual_seed(seed)
    fields = dict(name="transformer", d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1)
    fields.update(dropout=0.0, max_len=32, copy=True)
    fields.update(overrides)
    return build_model(ModelConfig(**fields), vocab, vocab).eval()


def copy_model(name: str, seed: int = 0, vocab: int = V, width: int = 16):
    """A small copying model of ``name`` (one of :data:`COPY_MODELS`), in eval mode."""
    if name == "transformer":
        return copy_transformer(seed, vocab, d_model=width, n_heads=2, d_ff=2 * width)
    torch.manual_seed(seed)
    return build_model(ModelConfig(name=name, d_model=width, hidden_size=width, copy=True), vocab, vocab).eval()


def gate_and_output_layer(model) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """The copy gate and the vocabulary output layer of a copying model."""
    if hasattr(model, "lm_head"):
        return model.copy.gate, model.lm_head
    return model.decoder.copy_gate, model.decoder.out_proj


def test_the_mixture_by_hand():
    """Zero query/key weights give uniform pointing over the real source tokens; a zero gate weight gives
    ``p_gen = sigmoid(bias)``. Then ``P(w) = p softmax(z)_w + (1 - p) count_w / n``, padding excluded."""
    layer = CopyGenerator(4)
    with torch.no_grad():
        layer.query.weight.zero_()
        layer.key.weight.zero_()
        layer.key.bias.zero_()
        layer.gate.bias.fill_(0.3)
    src = torch.tensor([[5, 7, 5, PAD_ID]])  # (1, 4): token 5 twice, one padding position
    mask = src != PAD_ID
    memory, hidden = torch.randn(1, 4, 4), torch.randn(1, 2, 4)
    vocab_logits = torch.randn(1, 2, 9)
    out = layer(vocab_logits, hidden, memory, mask, layer.source(src, memory))
    p = 1.0 / (1.0 + math.exp(-0.3))
    expected = p * torch.softmax(vocab_logits, dim=-1)
    expected[..., 5] += (1 - p) * 2 / 3
    expected[..., 7] += (1 - p) * 1 / 3
    assert torch.allclose(out.log_probs.exp(), expected, atol=1e-6)
    assert torch.allclose(out.p_gen, torch.full((1, 2), p))
    assert torch.allclose(out.weights, torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0]).expand(1, 2, 4))


def _mixture_in_probability_space(layer: CopyGenerator, vocab_logits, hidden, memory, src):
    """See et al.'s equation written out densely over the whole vocabulary, in float64: the reference."""
    q, k = layer.query(hidden), layer.key(memory)  # (B, T, E), (B, T_s, E)
    scores = (q @ k.transpose(1, 2)) / math.sqrt(q.shape[-1])  # (B, T, T_s)
    weights = scores.masked_fill((src == PAD_ID).unsqueeze(1), float("-inf")).softmax(-1)
    p_gen = torch.sigmoid(layer.gate(torch.cat([hidden, weights @ memory], dim=-1)))  # (B, T, 1)
    pointer = torch.zeros_like(vocab_logits).scatter_add(2, src.unsqueeze(1).expand_as(weights), weights)
    return (p_gen * vocab_logits.softmax(-1) + (1 - p_gen) * pointer).log()  # (B, T, V)


def test_the_mixture_and_its_gradients_equal_the_dense_equation_with_repeated_words_and_padding():
    """qkv works the mixture out over the source positions only; values and gradients must equal the dense
    float64 equation over all V words, with words repeated in a source and rows of different lengths."""
    torch.manual_seed(0)
    layer = CopyGenerator(8)
    with torch.no_grad():
        layer.gate.weight.normal_()  # a gate that depends on its input
    src = torch.tensor([[5, 7, 5, 5, 9, PAD_ID], [4, 4, 11, PAD_ID, PAD_ID, PAD_ID]])  # (2, 6)
    inputs = [torch.randn(2, 3, 12), torch.randn(2, 3, 8), torch.randn(2, 6, 8)]  # logits, hidden, memory
    targets = torch.tensor([[5, 7, 2], [4, 6, 11]])
    results = []
    for dtype in (torch.float32, torch.float64):
        copy = [x.to(dtype).requires_grad_() for x in inputs]
        vocab_logits, hidden, memory = copy
        if dtype == torch.float32:
            log_probs = layer(vocab_logits, hidden, memory, src != PAD_ID, layer.source(src, memory)).log_probs
        else:
            log_probs = _mixture_in_probability_space(layer.double(), vocab_logits, hidden, memory, src)
        loss = torch.nn.functional.cross_entropy(log_probs.flatten(0, 1), targets.flatten(), label_smoothing=0.1)
        grads = torch.autograd.grad(loss, copy)
        results.append((log_probs.detach().double(), [g.double() for g in grads]))
        layer.float()
    (ours, our_grads), (reference, reference_grads) = results
    assert torch.allclose(ours, reference, atol=1e-5)
    for ours_g, reference_g in zip(our_grads, reference_grads, strict=True):
        assert torch.allclose(ours_g, reference_g, atol=1e-6)


def test_log_space_keeps_every_token_finite_and_trainable_when_the_model_copies():
    """With ``p_gen`` near 0 a token absent from the source still has ``log P = log p_gen + log softmax``
    (finite, no floor), and label smoothing sends a finite gradient through every token."""
    layer = CopyGenerator(4)
    with torch.no_grad():
        layer.gate.bias.fill_(-40.0)  # p_gen = 4e-18: a probability-space mixture would underflow to 0
    src = torch.tensor([[5, 7, PAD_ID]])
    vocab_logits = torch.randn(1, 2, 9, requires_grad=True)
    memory = torch.randn(1, 3, 4)
    out = layer(vocab_logits, torch.randn(1, 2, 4), memory, src != PAD_ID, layer.source(src, memory))
    absent = torch.tensor([0, 1, 2, 3, 4, 6, 8])
    expected = -40.0 + torch.log_softmax(vocab_logits, -1)[..., absent]  # log sigmoid(-40) = -40 (to 4e-18)
    assert torch.allclose(out.log_probs[..., absent], expected, atol=1e-4)
    loss = torch.nn.functional.cross_entropy(out.log_probs.flatten(0, 1), torch.tensor([5, 8]), label_smoothing=0.1)
    loss.backward()
    assert torch.isfinite(vocab_logits.grad).all() and vocab_logits.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_the_output_is_a_distribution_and_starts_near_uniform():
    model = copy_transformer()
    src = torch.randint(3, V, (4, 6), generator=torch.Generator().manual_seed(1))
    tgt = torch.randint(3, V, (4, 5), generator=torch.Generator().manual_seed(2))
    log_probs = model(src, tgt).logits  # (B, T, V)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(4, 5), atol=1e-5)
    assert torch.allclose(torch.log_softmax(log_probs, -1), log_probs, atol=1e-5)  # already normalised
    # the gate starts at p_gen = sigmoid(2): a token not in the source costs about ln V - ln p_gen
    outside = torch.tensor([t for t in range(3, V) if t not in src[0].tolist()])
    loss = -log_probs[0, :, outside].mean()
    assert loss.item() == pytest.approx(math.log(V) - math.log(1 / (1 + math.exp(-GATE_BIAS))), abs=0.35)


@pytest.mark.parametrize("name", COPY_MODELS)
def test_cached_decoding_equals_the_full_forward_and_beam_scores_are_its_log_probs(name: str):
    model = copy_model(name, seed=3)
    with torch.no_grad():  # make the pointer matter: the gate starts at p_gen = 0.5
        gate_and_output_layer(model)[0].bias.zero_()
    src = torch.tensor([[4, 9, 11, 6, EOS_ID], [8, 8, 5, EOS_ID, PAD_ID]])
    out = greedy(model, src, max_len=6)
    for b, tokens in enumerate(out.tokens):
        tgt_in = torch.tensor([[BOS_ID, *tokens]])
        full = model(src[b : b + 1], tgt_in).logits[0]  # (T, V)
        assert full[:-1].argmax(-1).tolist() == tokens[: len(full) - 1]  # greedy by hand agrees
    found = beam_search(model, src, beam=3, max_len=6, length_penalty=0.0)
    for b, tokens in enumerate(found.tokens):
        tgt = [*tokens, EOS_ID] if found.finished[b] else tokens
        tgt_in = torch.tensor([[BOS_ID, *tgt[:-1]]]) if tgt else torch.tensor([[BOS_ID]])
        log_probs = model(src[b : b + 1], tgt_in).logits.log_softmax(-1)[0]  # (T, V)
        expected = sum(log_probs[t, token].item() for t, token in enumerate(tgt))
        assert found.scores[b] == pytest.approx(expected, abs=1e-4)


def test_config_errors_name_the_option():
    with pytest.raises(ValueError, match="model.copy points with an encoder-decoder's attention.*model.name=gpt"):
        build_model(ModelConfig(name="gpt", copy=True), V, V)
    for config in (ModelConfig(name="gru", copy=True), ModelConfig(name="gru-attention", attention="none", copy=True)):
        with pytest.raises(ValueError, match="model.attention=none: set model.attention"):
            build_model(config, V, V)
    pointing = build_model(ModelConfig(name="gru", attention="additive", copy=True), V, V)  # attention set by hand
    assert pointing(torch.tensor([[4, 5]]), torch.tensor([[BOS_ID]])).normalised
    with pytest.raises(ValueError, match="model.copy needs one vocabulary"):
        build_model(ModelConfig(name="transformer", d_model=16, n_heads=2, copy=True), V, V + 1)
    with pytest.raises(ValueError, match="model.copy needs one vocabulary"):
        build_model(ModelConfig(name="gru-attention", copy=True), V, V + 1)


@pytest.mark.parametrize("name", ["gru-attention", "lstm-attention"])
def test_a_recurrent_pointer_uses_the_decoders_own_alignments(name: str):
    """See et al.'s pointer is the attentional decoder's alignment: with the gate's weights zero,
    ``P = p softmax(z) + (1 - p) pointer``, where ``z`` and the alignments are those of the same model with
    copying removed (same weights) -- repeated source words summed, padding given nothing."""
    model = copy_model(name, seed=5)
    gate, _ = gate_and_output_layer(model)
    with torch.no_grad():
        gate.bias.fill_(0.4)
    plain = build_model(ModelConfig(name=name, d_model=16, hidden_size=16), V, V).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "copy_gate" not in k})
    src = torch.tensor([[5, 7, 5, 5, 9, EOS_ID], [4, 4, 11, EOS_ID, PAD_ID, PAD_ID]])  # (2, 6)
    tgt_in = torch.tensor([[BOS_ID, 7, 5, 12], [BOS_ID, 4, 6, 11]])
    ours = model(src, tgt_in).logits  # (B, T, V): log P
    reference = plain(src, tgt_in, need_weights=True)
    weights = reference.attentions.cross[0][:, 0].double()  # (B, T, T_s)
    pointer = torch.zeros(2, 4, V, dtype=torch.float64).scatter_add(2, src.unsqueeze(1).expand(-1, 4, -1), weights)
    p = 1.0 / (1.0 + math.exp(-0.4))
    expected = p * reference.logits.double().softmax(-1) + (1 - p) * pointer
    assert weights[1, :, 4:].abs().max() == 0  # padding is never pointed at
    assert torch.allclose(ours.double().exp(), expected, atol=1e-6)
    assert torch.allclose(model.encode(src).state.words.word_of, torch.tensor([[0, 1, 0, 0, 4, 5], [0, 0, 2, 3, 4, 4]]))


def test_training_refuses_two_vocabularies(tmp_path: Path):
    from qkv.training.config import from_dict
    from qkv.training.loop import train

    config = from_dict(  # G2P: letters in, phonemes out -- nothing to copy
        {
            "task": {"name": "g2p", "options": {"source": "cmudict", "max_examples": 50, "max_eval_examples": 5}},
            "model": {"name": "transformer", "d_model": 16, "n_heads": 2, "d_ff": 32, "copy": True},
            "training": {"max_steps": 2},
        }
    )
    with pytest.raises(UserError, match="model.copy points at source tokens") as err:
        train(config, tmp_path / "run", progress=False)
    assert "shared_vocab" in str(err.value.hint)


@pytest.mark.parametrize("name", COPY_MODELS)
def test_the_pointer_learns_to_copy_tokens_the_decoder_never_generated(name: str):
    """Targets are the source's 2nd and 4th tokens, drawn from 60 ids; the output layer's weights for
    every id are frozen at zero, so generating gives the uniform distribution (a recurrent output layer's
    bias still trains, but it is one value per id for every source) and only pointing can win.
    (EOS is never in the source, so the model cannot learn to stop: the first two tokens are scored.)"""
    vocab = 64
    model = copy_model(name, vocab=vocab, width=32).train()
    output_layer = gate_and_output_layer(model)[1]
    with torch.no_grad():
        output_layer.weight.zero_()
    output_layer.weight.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    g = torch.Generator().manual_seed(1)

    def batch(n: int):
        src = torch.randint(4, vocab, (n, 6), generator=g)
        tgt = torch.cat([src[:, [1, 3]], torch.full((n, 1), EOS_ID)], dim=1)  # (n, 3)
        tgt_in = torch.cat([torch.full((n, 1), BOS_ID), tgt[:, :-1]], dim=1)
        return src, tgt_in, tgt

    for _ in range(300):
        src, tgt_in, tgt = batch(32)
        log_probs = model(src, tgt_in).logits
        loss = torch.nn.functional.nll_loss(log_probs.flatten(0, 1), tgt.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src, _, tgt = batch(200)
    found = greedy(model, src, max_len=4)
    exact = sum(tokens[:2] == row[:2].tolist() for tokens, row in zip(found.tokens, tgt, strict=True)) / 200
    assert exact > 0.9, exact  # uniform generation alone: 1/60 per token


def test_summary_shows_the_copy_knob_and_refuses_two_vocabularies_clearly(capsys):
    from qkv.cli import main

    recipe = "configs/aeslc-transformer-copy.yaml"
    assert main(["summary", recipe, "--src-vocab", "100", "--tgt-vocab", "200"]) == 2
    assert "needs one vocabulary, got src_vocab=100 tgt_vocab=200" in capsys.readouterr().err
    assert main(["summary", recipe, "--src-vocab", "100", "--tgt-vocab", "100"]) == 0
    out = capsys.readouterr().out
    assert "copy=True" in out.replace(" ", "") or "copy: True" in out, out[:800]

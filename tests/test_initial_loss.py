"""Every model starts at the uniform loss: cross-entropy on random targets within a few tenths of ln V.

A model that starts far above ln V wastes its first few hundred steps unlearning its own initialisation,
which is what made the 60-second Transformer look worse than the GRU (issue: "Transformer
initialisation"). The expectation is the entropy of the uniform distribution, ``ln V`` -- a fact about
softmax, not a number from qkv's own output.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qkv.models import ModelConfig, build_model
from qkv.models.config import MODEL_NAMES

SIZES = [(32, 61), (128, 1000), (256, 8000), (512, 2000)]  # (width, vocabulary)
TOLERANCE = 0.3  # nats


def initial_loss(config: ModelConfig, vocab: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    model = build_model(config, vocab, vocab).eval()
    g = torch.Generator().manual_seed(seed)
    src, tgt_in, target = (torch.randint(4, vocab, (4, 24), generator=g) for _ in range(3))
    with torch.no_grad():
        if model.kind == "lm":
            logits = model(tgt_in).logits
        elif config.name == "encoder":
            logits = model(src).logits
        else:
            logits = model(src, tgt_in).logits
    return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1)).item()


def config_for(name: str, width: int, **overrides) -> ModelConfig:
    options = {
        "name": name,
        "d_model": width,
        "n_heads": 4,
        "d_ff": 4 * width,
        "hidden_size": width,
        "n_encoder_layers": 2,
        "n_decoder_layers": 2,
        "dropout": 0.0,
        "max_len": 64,
    }
    if name == "prefix-lm":
        options["positions"] = "rotary"  # the only positions a prefix LM accepts
    options.update(overrides)
    return ModelConfig(**options)


@pytest.mark.parametrize("width,vocab", SIZES)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_kind_starts_at_the_uniform_loss(name, width, vocab):
    loss = initial_loss(config_for(name, width), vocab)
    assert abs(loss - math.log(vocab)) < TOLERANCE, f"{name} d={width} V={vocab}: {loss:.2f} vs {math.log(vocab):.2f}"


@pytest.mark.parametrize("width,vocab", SIZES)
@pytest.mark.parametrize(
    "variant",
    [
        {"tie_embeddings": True},  # tied, sqrt(E)-scaled embeddings: the case that started at ~12 nats
        {"tie_embeddings": True, "scale_embeddings": False},  # GPT-2 style tying
        {"tie_embeddings": True, "norm_first": False},  # post-norm
        {"positions": "rotary"},
        {"positions": "learned", "scale_embeddings": False, "activation": "gelu"},
    ],
    ids=["tied-scaled", "tied-unscaled", "tied-post-norm", "rotary", "learned-gelu"],
)
@pytest.mark.parametrize("name", ["transformer", "gpt"])
def test_transformer_variants_start_at_the_uniform_loss(name, variant, width, vocab):
    loss = initial_loss(config_for(name, width, **variant), vocab)
    assert abs(loss - math.log(vocab)) < TOLERANCE, f"{name} {variant} d={width}: {loss:.2f} vs {math.log(vocab):.2f}"


def test_without_the_rescale_tied_scaled_embeddings_start_far_above_uniform():
    """The defect the zero gain (pre-norm) or the rescale (post-norm) removes, kept visible: without either the
    tied head gives the input token a logit ~ sqrt(E)."""
    loss = initial_loss(config_for("transformer", 256, tie_embeddings=True, scale_logits=False), 8000)
    assert loss > math.log(8000) + 2.0

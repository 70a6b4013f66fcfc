"""`build_model(config, src_vocab, tgt_vocab)`: the one place where a :class:`ModelConfig` becomes modules.

Modules take plain arguments and injected submodules; only this file reads the config (torchtune's
"builders wire, modules compute"). Pretrained checkpoints go through the same function
(:mod:`qkv.pretrained` translates their config.json into a :class:`ModelConfig`), so every variant a
real checkpoint needs is an ordinary option here, not a special case.
"""

from __future__ import annotations

import torch
from torch import nn

from qkv.attention import MultiHeadAttention
from qkv.models.config import RECURRENT_LM_NAMES, ModelConfig
from qkv.models.copy import CopyGenerator
from qkv.models.decoder_only import DecoderOnlyLM
from qkv.models.embeddings import Embeddings
from qkv.models.encoder_decoder import Transformer
from qkv.models.encoder_only import EncoderOnly
from qkv.models.feed_forward import FeedForward
from qkv.models.output_projection import OutputProjection
from qkv.models.positions import LearnedPositions, RotaryEmbedding, SinusoidalPositions, embedding_scale
from qkv.models.prefix_lm import PrefixLM
from qkv.models.recurrent import RecurrentSeq2Seq
from qkv.models.recurrent_encoder import RNN_CELLS
from qkv.models.recurrent_lm import RecurrentLM
from qkv.models.transformer_layers import DecoderLayer, EncoderLayer, layer_norm
from qkv.models.transformer_stacks import TransformerDecoder, TransformerEncoder
from qkv.special import BOS_ID, EOS_ID, PAD_ID


def build_model(
    config: ModelConfig,
    src_vocab: int,
    tgt_vocab: int,
    *,
    pad_id: int = PAD_ID,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> nn.Module:
    """Build the model named by ``config.name``; ``src_vocab`` is ignored by decoder-only models.

    ``pad_id``/``bos_id``/``eos_id`` default to qkv's own special ids; pretrained checkpoints pass theirs.
    """
    config.validate()
    model = _build(config, src_vocab, tgt_vocab, {"pad_id": pad_id, "bos_id": bos_id, "eos_id": eos_id})
    if config.init_range is not None:  # Zaremba et al. 2014: "initialized uniformly in [-0.1, 0.1]"
        with torch.no_grad():
            for parameter in model.parameters():
                nn.init.uniform_(parameter, -config.init_range, config.init_range)
            for module in model.modules():  # a padding row stays zero (it never receives a gradient)
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
    # what it was built from (read by summaries and the explorer; never by forward). The ignore: nn.Module's
    # __getattr__ types every unknown attribute as Tensor | Module.
    model.config = config  # type: ignore[assignment]
    return model


def _build(config: ModelConfig, src_vocab: int, tgt_vocab: int, ids: dict[str, int]) -> nn.Module:
    if config.name in RECURRENT_LM_NAMES:
        return _recurrent_lm(config, tgt_vocab, ids)
    if config.family == "recurrent":
        return _recurrent(config, src_vocab, tgt_vocab, ids)
    if config.name == "transformer":
        tgt_tokens = _token_embedding(config, tgt_vocab)
        if config.share_embeddings:
            if src_vocab != tgt_vocab:
                raise ValueError(
                    f"model.share_embeddings needs one vocabulary, got src_vocab={src_vocab} tgt_vocab={tgt_vocab}"
                )
            src_tokens = tgt_tokens
        else:
            src_tokens = _token_embedding(config, src_vocab)
        encoder = _encoder(config, src_tokens)
        decoder = _decoder(config, tgt_tokens, cross_attention=True)
        copy = CopyGenerator(config.d_model) if _one_vocabulary_for_copy(config, src_vocab, tgt_vocab) else None
        output = _output(config, tgt_tokens, tgt_vocab, final_norm=decoder.norm)
        return Transformer(encoder, decoder, output, copy=copy, **ids)
    if config.name == "prefix-lm":
        tokens = _token_embedding(config, tgt_vocab + src_vocab)  # target rows first, then source rows
        decoder = _decoder(config, tokens, cross_attention=False)
        return PrefixLM(decoder, _output(config, None, tgt_vocab), src_offset=tgt_vocab, **ids)
    if config.name == "gpt":
        tokens = _token_embedding(config, tgt_vocab)
        decoder = _decoder(config, tokens, cross_attention=False)
        return DecoderOnlyLM(decoder, _output(config, tokens, tgt_vocab, final_norm=decoder.norm), **ids)
    # encoder: a per-token output layer when tgt_vocab > 0, else hidden states (BERT's BertModel)
    tokens = _token_embedding(config, src_vocab)
    head = None
    encoder = _encoder(config, tokens)
    if tgt_vocab > 0:
        head = _output(config, tokens if src_vocab == tgt_vocab else None, tgt_vocab, final_norm=encoder.norm)
    return EncoderOnly(encoder, head, **ids)


def _recurrent(config: ModelConfig, src_vocab: int, tgt_vocab: int, ids: dict[str, int]) -> RecurrentSeq2Seq:
    """A recurrent encoder-decoder: ``d_model`` is the embedding size, ``hidden_size`` the RNN width,
    ``n_rnn_layers`` the depth; ``rnn_cell``, ``bidirectional``, ``attention`` and ``input_feeding`` (filled
    from the name's preset) pick the paper. The Transformer-only knobs are ignored."""
    assert config.rnn_cell is not None and config.attention is not None  # (the presets fill them)
    return RecurrentSeq2Seq(
        src_vocab,
        tgt_vocab,
        embed_dim=config.d_model,
        hidden_size=config.hidden_size,
        num_layers=config.n_rnn_layers,
        cell=config.rnn_cell,
        bidirectional=bool(config.bidirectional),
        attention=config.attention,
        input_feeding=bool(config.input_feeding),
        dropout=config.dropout,
        copy=_one_vocabulary_for_copy(config, src_vocab, tgt_vocab),
        **ids,
    )


def _one_vocabulary_for_copy(config: ModelConfig, src_vocab: int, tgt_vocab: int) -> bool:
    """``model.copy``, checked: a copied source id must also be a target id."""
    if config.copy and src_vocab != tgt_vocab:
        raise ValueError(f"model.copy needs one vocabulary, got src_vocab={src_vocab} tgt_vocab={tgt_vocab}")
    return config.copy


def _recurrent_lm(config: ModelConfig, vocab: int, ids: dict[str, int]) -> RecurrentLM:
    """Zaremba et al. 2014: embeddings (``d_model``), ``n_rnn_layers`` LSTM/GRU layers (``hidden_size``) with
    ``dropout`` between them, on the embeddings and before the output layer; then the output layer."""
    if config.tie_embeddings and config.d_model != config.hidden_size:
        raise ValueError(
            f"model.tie_embeddings needs model.d_model == model.hidden_size for {config.name}, got "
            f"{config.d_model} and {config.hidden_size}"
        )
    # PyTorch's inits (embeddings N(0, 1), RNN U(+-1/sqrt(H))), as the recurrent encoder-decoders: Zaremba et al.'s
    # U(+-0.1) everywhere suits SGD at lr 1; under Adam it sat at the unigram loss far longer on a tiny text.
    tokens = nn.Embedding(vocab, config.d_model)
    assert config.rnn_cell is not None  # (the preset fills it)
    between = config.dropout if config.n_rnn_layers > 1 else 0.0  # nn.LSTM/GRU: on each layer's output but the last
    rnn = RNN_CELLS[config.rnn_cell](
        config.d_model, config.hidden_size, num_layers=config.n_rnn_layers, batch_first=True, dropout=between
    )
    # Tied, the N(0, 1) embeddings would give logits ~ N(0, |h|^2); the default d_model**-0.5 rescale evens that out
    # (drawn from init_range instead, the shared matrix is small already and is used as it is: see _output).
    head = _output(config, tokens, vocab, width=config.hidden_size)
    return RecurrentLM(tokens, rnn, head, dropout=config.dropout, **ids)


def _token_embedding(config: ModelConfig, vocab: int) -> nn.Embedding:
    embedding = nn.Embedding(vocab, config.d_model)
    # With sqrt(E) scaling the embeddings start at unit scale after scaling (fairseq's convention).
    std = config.d_model**-0.5 if config.scale_embeddings else 0.02
    nn.init.normal_(embedding.weight, std=std)
    return embedding


def _embeddings(config: ModelConfig, tokens: nn.Embedding) -> Embeddings:
    positions: nn.Module | None = None
    if config.positions == "sinusoidal":
        positions = SinusoidalPositions(config.d_model, config.max_len, layout=config.sinusoidal_layout)
    elif config.positions == "learned":
        positions = LearnedPositions(config.d_model, config.max_len)
    token_types = nn.Embedding(config.n_token_types, config.d_model) if config.n_token_types else None
    if token_types is not None:
        nn.init.normal_(token_types.weight, std=0.02)
    return Embeddings(
        tokens,
        positions=positions,
        scale=embedding_scale(config.d_model, config.scale_embeddings),
        token_types=token_types,
        norm=layer_norm(config.d_model, config.norm_eps, config.bias) if config.embedding_norm else None,
        dropout=config.dropout,
    )


def _attention(config: ModelConfig) -> MultiHeadAttention:
    return MultiHeadAttention(
        config.d_model,
        config.n_heads,
        n_kv_heads=config.n_kv_heads,
        bias=config.bias,
        dropout=config.attention_dropout,
        backend=config.attention_backend,
    )


def _feed_forward(config: ModelConfig) -> FeedForward:
    return FeedForward(
        config.d_model, config.d_ff, activation=config.activation, dropout=config.activation_dropout, bias=config.bias
    )


def _norm(config: ModelConfig) -> nn.LayerNorm:
    return layer_norm(config.d_model, config.norm_eps, config.bias)


def encoder_layer(config: ModelConfig) -> EncoderLayer:
    """One encoder layer, its parts built from ``config`` (self-attention, its norm, feed-forward, its norm)."""
    self_attn, self_attn_norm = _attention(config), _norm(config)
    ff, ff_norm = _feed_forward(config), _norm(config)
    return EncoderLayer(self_attn, self_attn_norm, ff, ff_norm, norm_first=config.norm_first, dropout=config.dropout)


def decoder_layer(config: ModelConfig, *, cross_attention: bool) -> DecoderLayer:
    """One decoder layer, its parts built from ``config``; with ``cross_attention`` a second attention reads the
    encoder output (built in this order -- self, cross, feed-forward -- so seeded initialisations stay put)."""
    self_attn, self_attn_norm = _attention(config), _norm(config)
    cross_attn, cross_attn_norm = (_attention(config), _norm(config)) if cross_attention else (None, None)
    ff, ff_norm = _feed_forward(config), _norm(config)
    return DecoderLayer(
        self_attn,
        self_attn_norm,
        ff,
        ff_norm,
        cross_attn=cross_attn,
        cross_attn_norm=cross_attn_norm,
        norm_first=config.norm_first,
        dropout=config.dropout,
    )


def _stack_options(config: ModelConfig) -> dict:
    # Pre-norm leaves the residual stream un-normalised, so pre-norm stacks end with a LayerNorm.
    return {
        "norm": layer_norm(config.d_model, config.norm_eps, config.bias) if config.norm_first else None,
        "rotary": RotaryEmbedding(config.head_dim, base=config.rotary_base) if config.positions == "rotary" else None,
    }


def _encoder(config: ModelConfig, tokens: nn.Embedding) -> TransformerEncoder:
    layers = [encoder_layer(config) for _ in range(config.n_encoder_layers)]
    return TransformerEncoder(
        _embeddings(config, tokens), layers, causal=config.causal_encoder, **_stack_options(config)
    )


def _decoder(config: ModelConfig, tokens: nn.Embedding, *, cross_attention: bool) -> TransformerDecoder:
    layers = [decoder_layer(config, cross_attention=cross_attention) for _ in range(config.n_decoder_layers)]
    return TransformerDecoder(_embeddings(config, tokens), layers, **_stack_options(config))


def _output(
    config: ModelConfig,
    tokens: nn.Embedding | None,
    vocab: int,
    *,
    width: int | None = None,
    final_norm: nn.Module | None = None,
) -> OutputProjection:
    """The logits layer, started so that the initial loss is ``ln V`` (see :mod:`qkv.models.output_projection`).

    Untied (the default): small random weights, so every logit starts near zero. Tied: the input embedding
    is still in each position's residual stream, so the shared matrix would give the input token a large
    logit. A pre-norm stack (``final_norm``, its last LayerNorm) starts that norm's gain at zero instead:
    every logit starts at exactly 0 and the gain, not the embeddings, learns the logits' scale (Adam's
    steps do not depend on the gradient's size, so the gain grows from the first step). Without a final
    norm (post-norm), T5's ``d_model ** -0.5`` rescale removes the input token's logit, at the price of
    logits capped near the embeddings' norm (``scale_logits``; docs/models.md). A recurrent model drawn from
    ``init_range`` has neither problem and is tied without the rescale (Press & Wolf 2017).
    ``width`` is the size of the hidden state it reads (default ``d_model``; a recurrent LM's ``hidden_size``).
    """
    tied = config.tie_embeddings and tokens is not None
    zero_gain = tied and config.scale_logits is None and isinstance(final_norm, nn.LayerNorm)
    # Drawn from init_range (recurrent models only), the shared matrix starts small already and is used as it is,
    # as Press & Wolf 2017 tie it: the rescale would only shrink the logits and their gradients by sqrt(E), and
    # under plain SGD Zaremba's medium LM tied then sat at the unigram loss (6.5-6.6 for its first 1,100 steps at
    # lr 1, where unscaled it was at 6.2 by step 300).
    small_init = config.init_range is not None
    scale_logits = (tied and not zero_gain and not small_init) if config.scale_logits is None else config.scale_logits
    if zero_gain:
        assert isinstance(final_norm, nn.LayerNorm)  # (for the type checker: zero_gain implies it)
        nn.init.zeros_(final_norm.weight)
    head = OutputProjection(
        config.d_model if width is None else width,
        vocab,
        bias=config.output_bias,
        logit_scale=config.d_model**-0.5 if scale_logits else 1.0,
    )
    if tied and tokens is not None:
        head.weight = tokens.weight  # Press & Wolf 2017: one matrix for input and output
    else:
        nn.init.normal_(head.weight, std=0.02)  # logits ~ N(0, 0.02^2 E): near zero for any E <= 2048
    if head.bias is not None:
        nn.init.zeros_(head.bias)
    return head

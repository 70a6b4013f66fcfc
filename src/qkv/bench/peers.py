"""The peers of `qkv bench train --peers`: the same model sizes as qkv's recipes, built by other libraries.

Each peer is an ``nn.Module`` whose ``forward`` takes qkv's batches and returns next-token logits, so one
loss and one optimizer step serve every side of a comparison:

- decoder-only (``configs/tinyshakespeare-gpt.yaml``): Hugging Face ``GPT2LMHeadModel`` with SDPA
  attention (Radford et al. 2019), :class:`TorchCausalLM`, a plain ``torch.nn.TransformerEncoder``
  with a causal mask, and -- when ``$NANOGPT`` names a checkout -- nanoGPT's own ``model.py``;
- encoder-decoder (``configs/multi30k-transformer.yaml``): Hugging Face ``MarianMTModel`` (post-norm, as
  Marian is) and :class:`TorchSeq2Seq` around ``torch.nn.Transformer`` (Vaswani et al. 2017);
- recurrent (``configs/multi30k-gru.yaml``): :class:`TorchGRUSeq2Seq`, the shortest ``torch.nn.GRU``
  encoder-decoder of Cho et al. 2014 with the recipe's sizes.

Where a library cannot build exactly qkv's architecture (GPT-2 always has biases; Marian has no final
LayerNorms), the parameter counts differ by those few tensors; ``qkv bench train --peers`` saves both
counts and the difference. Notation: ``B`` batch, ``T`` length, ``E`` model dim, ``V`` vocabulary.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from qkv.models.config import ModelConfig
from qkv.special import BOS_ID, EOS_ID, PAD_ID


def _sinusoids(max_len: int, d_model: int) -> Tensor:
    """Vaswani et al.'s table ``(max_len, E)``: sin and cos interleaved."""
    position = torch.arange(max_len).unsqueeze(1)  # (T, 1)
    freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (E/2,)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
    return table


class HFGPT2(nn.Module):
    """``GPT2LMHeadModel`` (SDPA attention, untied output layer as in the recipe) behind qkv's LM forward."""

    def __init__(self, config: ModelConfig, vocab: int) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        hf = GPT2Config(
            vocab_size=vocab,
            n_positions=config.max_len,
            n_embd=config.d_model,
            n_layer=config.n_decoder_layers,
            n_head=config.n_heads,
            n_inner=config.d_ff,
            activation_function="gelu" if config.activation == "gelu" else "gelu_new",
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.attention_dropout,
            layer_norm_epsilon=config.norm_eps,
            tie_word_embeddings=config.tie_embeddings,
            bos_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
        )
        hf._attn_implementation = "sdpa"
        self.model = GPT2LMHeadModel(hf)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.model(input_ids=tokens, use_cache=False).logits  # (B, T, V)


class TorchCausalLM(nn.Module):
    """A GPT from ``torch.nn`` parts: token + learned position embeddings, ``nn.TransformerEncoder`` with
    a causal mask (pre-norm, as GPT-2), final LayerNorm, output layer."""

    def __init__(self, config: ModelConfig, vocab: int) -> None:
        super().__init__()
        e = config.d_model
        self.tokens, self.positions = nn.Embedding(vocab, e), nn.Embedding(config.max_len, e)
        layer = nn.TransformerEncoderLayer(
            e,
            config.n_heads,
            config.d_ff,
            dropout=config.dropout,
            activation="gelu" if config.activation.startswith("gelu") else "relu",
            layer_norm_eps=config.norm_eps,
            batch_first=True,
            norm_first=True,
            bias=config.bias,
        )
        self.layers = nn.TransformerEncoder(layer, config.n_decoder_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(e, eps=config.norm_eps, bias=config.bias)
        self.head = nn.Linear(e, vocab, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, tokens: Tensor) -> Tensor:
        t = tokens.size(1)
        x = self.drop(self.tokens(tokens) + self.positions(torch.arange(t, device=tokens.device)))  # (B, T, E)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device)  # (T, T), -inf above
        x = self.layers(x, mask=mask, is_causal=True)  # (B, T, E)
        return self.head(self.norm(x))  # (B, T, V)


class NanoGPT(nn.Module):
    """nanoGPT's own ``model.py`` (Karpathy), imported from the checkout named by ``$NANOGPT`` (never copied
    here), at the recipe's size: fused QKV projection, no biases, output layer tied to the embedding.
    ``lm_loss`` is its own forward with targets (mean cross-entropy), as its ``train.py`` calls it."""

    def __init__(self, config: ModelConfig, vocab: int) -> None:
        super().__init__()
        import importlib.util
        import os

        folder = os.environ.get("NANOGPT")
        if not folder:
            from qkv.errors import UserError

            raise UserError("the nanogpt peer needs NANOGPT=/path/to/a/nanoGPT/checkout")
        spec = importlib.util.spec_from_file_location("nanogpt_model", os.path.join(folder, "model.py"))
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        gpt_config = module.GPTConfig(
            block_size=config.max_len,
            vocab_size=vocab,
            n_layer=config.n_decoder_layers,
            n_head=config.n_heads,
            n_embd=config.d_model,
            dropout=config.dropout,
            bias=config.bias,
        )
        self.model = module.GPT(gpt_config)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.model(tokens, tokens)[0]  # (B, T, V) (with targets it returns every position's logits)

    def lm_loss(self, tokens: Tensor, targets: Tensor) -> Tensor:
        return self.model(tokens.contiguous(), targets.contiguous())[1]  # nanoGPT views them flat


class HFMarian(nn.Module):
    """``MarianMTModel`` at the recipe's size: own vocabularies (unshared embeddings, untied output layer),
    ReLU, scaled embeddings, post-norm (Marian's only layout: no final LayerNorms)."""

    def __init__(self, config: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        from transformers import MarianConfig, MarianMTModel

        hf = MarianConfig(
            vocab_size=src_vocab,
            decoder_vocab_size=tgt_vocab,
            share_encoder_decoder_embeddings=False,
            tie_word_embeddings=config.tie_embeddings,
            d_model=config.d_model,
            encoder_layers=config.n_encoder_layers,
            decoder_layers=config.n_decoder_layers,
            encoder_attention_heads=config.n_heads,
            decoder_attention_heads=config.n_heads,
            encoder_ffn_dim=config.d_ff,
            decoder_ffn_dim=config.d_ff,
            max_position_embeddings=config.max_len,
            activation_function=config.activation,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            activation_dropout=config.activation_dropout,
            scale_embedding=config.scale_embeddings,
            pad_token_id=PAD_ID,
            eos_token_id=EOS_ID,
            bos_token_id=BOS_ID,
            decoder_start_token_id=BOS_ID,
            forced_eos_token_id=None,
        )
        hf._attn_implementation = "sdpa"
        self.model = MarianMTModel(hf)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        out = self.model(input_ids=src, attention_mask=src != PAD_ID, decoder_input_ids=tgt_in, use_cache=False)
        return out.logits  # (B, T_t, V)


class TorchSeq2Seq(nn.Module):
    """``torch.nn.Transformer`` with the recipe's sizes: scaled token embeddings + sinusoids, source
    padding mask, causal target mask, output layer."""

    def __init__(self, config: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        e = config.d_model
        self.src_tokens, self.tgt_tokens = nn.Embedding(src_vocab, e), nn.Embedding(tgt_vocab, e)
        self.register_buffer("table", _sinusoids(config.max_len, e), persistent=False)
        self.scale = math.sqrt(e) if config.scale_embeddings else 1.0
        self.transformer = nn.Transformer(
            e,
            config.n_heads,
            config.n_encoder_layers,
            config.n_decoder_layers,
            config.d_ff,
            dropout=config.dropout,
            activation="gelu" if config.activation.startswith("gelu") else "relu",
            layer_norm_eps=config.norm_eps,
            batch_first=True,
            norm_first=config.norm_first,
            bias=config.bias,
        )
        self.head = nn.Linear(e, tgt_vocab, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def _embed(self, table: nn.Embedding, tokens: Tensor) -> Tensor:
        return self.drop(table(tokens) * self.scale + self.table[: tokens.size(1)])  # (B, T, E)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        pad = src == PAD_ID  # (B, T_s), True = ignore
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), device=src.device)
        hidden = self.transformer(
            self._embed(self.src_tokens, src),
            self._embed(self.tgt_tokens, tgt_in),
            tgt_mask=causal,
            src_key_padding_mask=pad,
            memory_key_padding_mask=pad,
            tgt_is_causal=True,
        )  # (B, T_t, E)
        return self.head(hidden)  # (B, T_t, V)


class TorchGRUSeq2Seq(nn.Module):
    """Cho et al. 2014 in a few lines of ``torch.nn``: a GRU encoder (packed, so padding never enters its
    final state ``c``), a GRU decoder over ``[e(y_{t-1}); c]`` started from ``c``, the readout
    ``tanh(W_o [s_t; c; e(y_{t-1})])`` and the output layer; dropout on embeddings and before the output."""

    def __init__(self, config: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        e, h = config.d_model, config.hidden_size
        self.src_tokens = nn.Embedding(src_vocab, e, padding_idx=PAD_ID)
        self.tgt_tokens = nn.Embedding(tgt_vocab, e, padding_idx=PAD_ID)
        self.encoder = nn.GRU(e, h, batch_first=True)
        self.decoder = nn.GRU(e + h, h, batch_first=True)
        self.readout = nn.Linear(h + h + e, h)
        self.out = nn.Linear(h, tgt_vocab)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        lengths = (src != PAD_ID).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.drop(self.src_tokens(src)), lengths, batch_first=True, enforce_sorted=False)
        _, c = self.encoder(packed)  # (1, B, H)
        y = self.drop(self.tgt_tokens(tgt_in))  # (B, T_t, E)
        context = c[-1].unsqueeze(1).expand(-1, y.size(1), -1)  # (B, T_t, H)
        s, _ = self.decoder(torch.cat([y, context], dim=-1), c)  # (B, T_t, H)
        r = torch.tanh(self.readout(torch.cat([s, context, y], dim=-1)))  # (B, T_t, H)
        return self.out(self.drop(r))  # (B, T_t, V)


# case -> peer name -> builder(config, src_vocab, tgt_vocab)
PEERS = {
    "gpt": {
        "hf-gpt2": lambda c, s, t: HFGPT2(c, t),
        "torch-transformer": lambda c, s, t: TorchCausalLM(c, t),
        "nanogpt": lambda c, s, t: NanoGPT(c, t),  # only with $NANOGPT set
    },
    "transformer": {
        "hf-marian": HFMarian,
        "torch-transformer": TorchSeq2Seq,
    },
    "gru": {
        "torch-gru": TorchGRUSeq2Seq,
    },
}


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared tensor once (Marian's fixed sinusoids are not trainable)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

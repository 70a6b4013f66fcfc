"""Copying from the source: the pointer-generator output of See, Liu & Manning 2017, "Get To The Point:
Summarization with Pointer-Generator Networks" (section 2.2), on top of a Transformer decoder or of a
recurrent decoder with attention (:mod:`qkv.models.recurrent_decoder`).

A summary (or a subject line) reuses rare words of its source -- names, numbers, product codes -- that a
softmax over a fixed vocabulary rarely learns to produce. A pointer-generator can *point* at them instead.
At every target position the decoder's final state ``h_t`` asks one more attention question: a single head
of scaled dot-product attention (:func:`qkv.attention.core.attend`) over the encoder states ``m_i`` gives
copy weights ``a_t`` over the source positions and a context ``c_t = sum_i a_ti m_i``. A gate
``p_gen = sigmoid(w . [h_t; c_t] + b)`` then mixes generating and copying::

    P(w) = p_gen * softmax(W h_t)_w + (1 - p_gen) * sum_{i : x_i = w} a_ti

A recurrent decoder with attention points with its own alignment weights, as See et al.'s attentional LSTM
does; its gate reads the context, the decoder state and the input embedding (their ``w_h, w_s, w_x``), or
Luong's attentional state and the input embedding. Both families hand their weights and gate to
:func:`copy_mixture`, which works out ``log P``.

Copying needs source and target to share one vocabulary (``task.options.shared_vocab``), so that a source
token's id is also a target id. The layer returns ``log P`` in place of the logits: it is normalised
already, so ``log_softmax`` leaves it unchanged and the loss, greedy, beam search and sampling use it
exactly as they use logits. The gate's bias starts at +2 (``p_gen`` = 0.88), so the initial loss stays
within ``-ln 0.88`` = 0.13 nats of ``ln V`` on targets that are not in the source.

Notation: ``B`` batch, ``T`` target positions, ``T_s`` source positions, ``E`` model dim, ``V`` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qkv.attention.core import attend

GATE_BIAS = 2.0  # initial p_gen = sigmoid(2) = 0.88: the model starts mostly generating


@dataclass
class SourceWords:
    """The source as the pointer sees it: token ids ``(B, T_s)`` and ``word_of (B, T_s)``: for each position,
    the first position holding the same token (a word repeated in the source is one word for the pointer).
    Worked out once per source; selected with the encoder output for beams."""

    ids: Tensor  # (B, T_s)
    word_of: Tensor  # (B, T_s)

    @classmethod
    def of(cls, src: Tensor) -> SourceWords:
        same_word = src.unsqueeze(2) == src.unsqueeze(1)  # (B, T_s, T_s): positions i, j hold one token
        return cls(src, same_word.int().argmax(dim=-1))  # (B, T_s): argmax returns the first True

    def select(self, index: Tensor) -> SourceWords:
        return SourceWords(self.ids.index_select(0, index), self.word_of.index_select(0, index))


@dataclass
class CopySource:
    """What a Transformer's copy layer needs from the source at every decoding step: its words and the
    pointer's keys ``(B, T_s, E)``, projected once per source. (Kept in ``Encoded.state``.)"""

    words: SourceWords
    keys: Tensor  # (B, T_s, E)

    def select(self, index: Tensor) -> CopySource:
        return CopySource(self.words.select(index), self.keys.index_select(0, index))


def copy_mixture(vocab_logits: Tensor, gate: Tensor, weights: Tensor, words: SourceWords) -> Tensor:
    """See et al.'s ``log P(w) = log(p_gen * softmax(z)_w + (1 - p_gen) * sum_{i : x_i = w} a_i)``.

    ``vocab_logits (B, T, V)``; ``gate (B, T, 1)``: the logit of ``p_gen``; ``weights (B, T, T_s)``: where
    each target position points (0 on padding); ``words``: the source's ids. Returns ``log P (B, T, V)``.
    """
    log_generate = torch.log_softmax(vocab_logits.float(), dim=-1)  # (B, T, V)
    gate = gate.float()
    # in log space so that no probability underflows. A word absent from the source has pointer 0, so its
    # log P is the generating term alone: that term is written for all V words, and the mixture is worked
    # out only for the T_s words of the source -- over (B, T, T_s), not (B, T, V), which is what keeps a
    # large vocabulary cheap.
    log_generating = F.logsigmoid(gate) + log_generate  # (B, T, V)
    index = words.ids.unsqueeze(1).expand(-1, weights.shape[1], -1)  # (B, T, T_s): each position's word id
    word_of = words.word_of.unsqueeze(1).expand_as(index)  # (B, T, T_s): each position's first position
    weights32 = weights.float()
    pointer = torch.zeros_like(weights32).scatter_add(2, word_of, weights32).gather(2, word_of)  # (B, T, T_s)
    # pointer: the weight on position i's word, summed over all its positions (padding has weight 0, so
    # its "word" gets pointer 0); where-twice keeps the gradient of log 0 at 0
    present = pointer > 0
    log_pointer = torch.where(present, torch.where(present, pointer, 1.0).log(), float("-inf"))
    mixed = torch.logaddexp(log_generating.gather(2, index), F.logsigmoid(-gate) + log_pointer)  # (B, T, T_s)
    # a word at several positions is written several times with one value; only its first position
    # carries the gradient, so that it is counted once, as it is in P(w)
    first = words.word_of == torch.arange(words.ids.shape[1], device=words.ids.device)  # (B, T_s)
    mixed = torch.where(first.unsqueeze(1), mixed, mixed.detach())
    return log_generating.scatter(2, index, mixed)  # (B, T, V)


def copy_gate(in_features: int) -> nn.Linear:
    """The gate's layer, ``p_gen = sigmoid(w . x + b)``: zero weights and bias :data:`GATE_BIAS`, so every
    copying model starts mostly generating."""
    gate = nn.Linear(in_features, 1)
    nn.init.zeros_(gate.weight)
    nn.init.constant_(gate.bias, GATE_BIAS)
    return gate


@dataclass
class CopyOutput:
    """``log_probs (B, T, V)``: ``log P`` of the mixture; ``weights (B, T, T_s)``: where each position points;
    ``p_gen (B, T)``: how much it generates rather than copies."""

    log_probs: Tensor
    weights: Tensor
    p_gen: Tensor


class CopyGenerator(nn.Module):
    """Mixes the vocabulary distribution with a pointer distribution over the source tokens."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.gate = copy_gate(2 * d_model)

    def source(self, src: Tensor, memory: Tensor) -> CopySource:
        """Everything about the source the pointer reads at each step: its words (ids ``(B, T_s)`` and each
        position's first position of its word) and the keys ``(B, T_s, E)``, worked out once per source."""
        return CopySource(SourceWords.of(src), self.key(memory))

    def forward(
        self, vocab_logits: Tensor, hidden: Tensor, memory: Tensor, src_mask: Tensor, source: CopySource
    ) -> CopyOutput:
        """``vocab_logits (B, T, V)`` and decoder states ``hidden (B, T, E)``; encoder states ``memory (B, T_s, E)``,
        ``src_mask (B, T_s)`` (True = a real token), and :meth:`source` of the source ids."""
        q = self.query(hidden).unsqueeze(1)  # (B, 1, T, E): one head
        k = source.keys.unsqueeze(1)  # (B, 1, T_s, E)
        v = memory.unsqueeze(1)  # (B, 1, T_s, E)
        context, pointing = attend(q, k, v, mask=src_mask[:, None, None, :], need_weights=True)  # (B, 1, T, E)
        assert pointing is not None  # (need_weights=True returns them)
        context, weights = context.squeeze(1), pointing.squeeze(1)  # (B, T, E), (B, T, T_s)
        gate = self.gate(torch.cat([hidden, context], dim=-1))  # (B, T, 1): logit of p_gen
        log_probs = copy_mixture(vocab_logits, gate, weights, source.words)  # (B, T, V)
        return CopyOutput(log_probs, weights, torch.sigmoid(gate.float()).squeeze(-1))

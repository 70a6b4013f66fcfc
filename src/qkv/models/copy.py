"""Copying from the source: the pointer-generator output of See, Liu & Manning 2017, "Get To The Point:
Summarization with Pointer-Generator Networks" (section 2.2), on top of a Transformer decoder.

A summary (or a subject line) reuses rare words of its source -- names, numbers, product codes -- that a
softmax over a fixed vocabulary rarely learns to produce. A pointer-generator can *point* at them instead.
At every target position the decoder's final state ``h_t`` asks one more attention question: a single head
of scaled dot-product attention (:func:`qkv.attention.core.attend`) over the encoder states ``m_i`` gives
copy weights ``a_t`` over the source positions and a context ``c_t = sum_i a_ti m_i``. A gate
``p_gen = sigmoid(w . [h_t; c_t] + b)`` then mixes generating and copying::

    P(w) = p_gen * softmax(W h_t)_w + (1 - p_gen) * sum_{i : x_i = w} a_ti

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
class CopySource:
    """What the copy layer needs from the source at every decoding step: its token ids ``(B, T_s)``, the
    pointer's keys ``(B, T_s, E)``, projected once per source, and ``word_of (B, T_s)``: for each position,
    the first position holding the same token (a word repeated in the source is one word for the pointer).
    (Kept in ``Encoded.state`` of a Transformer, and selected with the encoder output for beams.)"""

    ids: Tensor  # (B, T_s)
    keys: Tensor  # (B, T_s, E)
    word_of: Tensor  # (B, T_s)

    def select(self, index: Tensor) -> CopySource:
        return CopySource(*(t.index_select(0, index) for t in (self.ids, self.keys, self.word_of)))


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
        self.gate = nn.Linear(2 * d_model, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, GATE_BIAS)

    def source(self, src: Tensor, memory: Tensor) -> CopySource:
        """Everything about the source the pointer reads at each step: ids ``(B, T_s)``, keys ``(B, T_s, E)``,
        and each position's first position of its word ``(B, T_s)``, worked out once per source."""
        same_word = src.unsqueeze(2) == src.unsqueeze(1)  # (B, T_s, T_s): positions i, j hold one token
        word_of = same_word.int().argmax(dim=-1)  # (B, T_s): argmax returns the first True
        return CopySource(src, self.key(memory), word_of)

    def forward(
        self, vocab_logits: Tensor, hidden: Tensor, memory: Tensor, src_mask: Tensor, source: CopySource
    ) -> CopyOutput:
        """``vocab_logits (B, T, V)`` and decoder states ``hidden (B, T, E)``; encoder states ``memory (B, T_s, E)``,
        ``src_mask (B, T_s)`` (True = a real token), and :meth:`source` of the source ids."""
        src = source.ids  # (B, T_s)
        q = self.query(hidden).unsqueeze(1)  # (B, 1, T, E): one head
        k = source.keys.unsqueeze(1)  # (B, 1, T_s, E)
        v = memory.unsqueeze(1)  # (B, 1, T_s, E)
        context, pointing = attend(q, k, v, mask=src_mask[:, None, None, :], need_weights=True)  # (B, 1, T, E)
        assert pointing is not None  # (need_weights=True returns them)
        context, weights = context.squeeze(1), pointing.squeeze(1)  # (B, T, E), (B, T, T_s)
        gate = self.gate(torch.cat([hidden, context], dim=-1)).float()  # (B, T, 1): logit of p_gen
        log_generate = torch.log_softmax(vocab_logits.float(), dim=-1)  # (B, T, V)
        # log P = log(p_gen * generate + (1 - p_gen) * pointer), in log space so that no probability
        # underflows. A word absent from the source has pointer 0, so its log P is the generating term
        # alone: that term is written for all V words, and the mixture is worked out only for the T_s words
        # of the source -- over (B, T, T_s), not (B, T, V), which is what keeps a large vocabulary cheap.
        log_generating = F.logsigmoid(gate) + log_generate  # (B, T, V)
        index = src.unsqueeze(1).expand(-1, weights.shape[1], -1)  # (B, T, T_s): each position's word id
        word_of = source.word_of.unsqueeze(1).expand_as(index)  # (B, T, T_s): each position's first position
        weights32 = weights.float()
        pointer = torch.zeros_like(weights32).scatter_add(2, word_of, weights32).gather(2, word_of)  # (B, T, T_s)
        # pointer: the weight on position i's word, summed over all its positions (padding has weight 0, so
        # its "word" gets pointer 0); where-twice keeps the gradient of log 0 at 0
        present = pointer > 0
        log_pointer = torch.where(present, torch.where(present, pointer, 1.0).log(), float("-inf"))
        mixed = torch.logaddexp(log_generating.gather(2, index), F.logsigmoid(-gate) + log_pointer)  # (B, T, T_s)
        # a word at several positions is written several times with one value; only its first position
        # carries the gradient, so that it is counted once, as it is in P(w)
        first = source.word_of == torch.arange(src.shape[1], device=src.device)  # (B, T_s)
        mixed = torch.where(first.unsqueeze(1), mixed, mixed.detach())
        log_probs = log_generating.scatter(2, index, mixed)  # (B, T, V)
        return CopyOutput(log_probs, weights, torch.sigmoid(gate).squeeze(-1))

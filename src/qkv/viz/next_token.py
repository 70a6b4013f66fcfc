"""A language model's next-token distribution at one position, as the explorer's LM mode shows it
(the way Transformer Explainer does): ``softmax(logits_i / T)``, then top-k, renormalised -- exactly
the distribution :func:`qkv.decoding.sample` draws from (:func:`~qkv.decoding.sampling.sampling_distribution`).

The logits come from the same forward pass as the attention weights of the analysis: position ``i``'s
logits predict token ``i + 1``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from qkv.errors import UserError

SHOWN = 20  # rows shown when top-k keeps more tokens than this


def next_tokens(inspector: Any, analysis: Any, position: int, temperature: float = 1.0, top_k: int = 0) -> dict:
    """The most likely next tokens after ``position`` (0-based, over the analysis' query tokens)."""
    from qkv.decoding.sampling import sampling_distribution

    if inspector.kind != "lm":
        raise UserError("next-token probabilities are for language models (a GPT run)")
    if not (isinstance(temperature, (int, float)) and 0 < temperature < math.inf):
        raise UserError(f"the temperature must be a finite number > 0, got {temperature}")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise UserError(f"top_k must be an integer >= 0 (0 = every token), got {top_k}")
    labels = analysis.labels["decoder_self"][0]
    if not 0 <= position < len(labels):
        raise UserError(f"position {position} is out of range: there are {len(labels)} tokens (0..{len(labels) - 1})")
    if analysis.recorded is None:
        with torch.no_grad():
            logits = analysis.forward().logits
    else:
        logits = analysis.recorded[1].logits
    vocab = logits.size(-1)
    k = min(top_k, vocab) if top_k else None
    probs = sampling_distribution(logits[0, position].double(), temperature, k)  # (V,), sums to 1
    order = torch.argsort(probs, descending=True)[: min(SHOWN, k or vocab)]
    shown = [float(probs[i]) for i in order]
    return {
        "position": position,
        "context_tail": "".join(labels[max(0, position - 7) : position + 1]),
        "temperature": temperature,
        "top_k": k or 0,
        "tokens": [inspector.tgt_tok.token(int(i)) for i in order],
        "ids": [int(i) for i in order],
        "probs": shown,
        "rest": max(0.0, 1.0 - sum(shown)),  # the tokens not listed, together
    }

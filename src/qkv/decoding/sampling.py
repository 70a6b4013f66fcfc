"""Sampling: draw each next token from the model's distribution, reshaped by temperature, top-k and top-p.

* temperature: ``softmax(logits / T)`` -- ``T < 1`` sharpens, ``T > 1`` flattens;
* top-k (Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story Generation"): keep the ``k`` most
  probable tokens;
* top-p, nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"): keep
  the smallest set of most probable tokens whose probability adds up to at least ``p``.

The filters apply in that order (temperature, then top-k, then top-p on what is left), renormalise by the
softmax, and draw with ``torch.multinomial`` from an explicit ``torch.Generator`` so runs repeat exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.interface import DecodingModel, Prompt
from qkv.decoding.loop import generate
from qkv.decoding.rules import NO_RULES, OutputRules


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Set every logit outside the ``k`` largest of each row of ``logits (..., V)`` to ``-inf``."""
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    if k >= logits.size(-1):
        return logits
    keep = torch.zeros_like(logits, dtype=torch.bool)
    keep.scatter_(-1, logits.topk(k, dim=-1).indices, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the smallest most-probable set with total probability ``>= p``, ``-inf`` the rest.

    A token is dropped when the probability of the tokens ranked above it already reaches ``p``; the most
    probable token is always kept.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (..., V)
    probs = torch.softmax(sorted_logits.float(), dim=-1)  # (..., V)
    mass_above = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked strictly higher
    drop_sorted = mass_above >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sampling_distribution(
    logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """The probabilities ``(..., V)`` sampling draws from, after temperature, top-k and top-p."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (use greedy() for argmax), got {temperature}")
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def sample(
    model: DecodingModel,
    src: Tensor | None = None,
    max_len: int = 100,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    prompt: Prompt = None,
    rules: OutputRules = NO_RULES,
) -> Hypotheses:
    """Sample one continuation per row of ``src`` (seq2seq) or per ``prompt`` (LM; ``src=None``).

    ``generator`` makes the draws reproducible (it must live on the model's device). Scores are the
    log-probabilities under the unmodified model, so samples and searches compare on one scale.
    ``rules``: never draw a token they ban (:mod:`qkv.decoding.rules`).
    """
    sampling_distribution(torch.zeros(1), temperature, top_k, top_p)  # validate the arguments up front

    def pick(logits: Tensor) -> Tensor:
        probs = sampling_distribution(logits, temperature, top_k, top_p)  # (A, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (A,)

    return generate(model, src, max_len, pick, prompt, rules)

"""Decoding, written once for every model family against the decoding interface of ``docs/architecture.md``
(``encode``, ``init_state``, ``decode_step``, ``reorder``): greedy search, batched beam search with a length
penalty and early stopping, and sampling with temperature, top-k and top-p,
each under the same output rules (no repeated n-grams, a minimum length). See ``docs/decoding.md``."""

from qkv.decoding.beam import beam_search, length_penalty_factor
from qkv.decoding.greedy import greedy
from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.interface import DecodingModel, Prompt, as_decoding_model
from qkv.decoding.rules import OutputRules
from qkv.decoding.sampling import sample, sampling_distribution, top_k_filter, top_p_filter
from qkv.decoding.scoring import sequence_log_probs

__all__ = [
    "DecodingModel",
    "Hypotheses",
    "OutputRules",
    "Prompt",
    "as_decoding_model",
    "beam_search",
    "greedy",
    "length_penalty_factor",
    "sample",
    "sampling_distribution",
    "sequence_log_probs",
    "top_k_filter",
    "top_p_filter",
]

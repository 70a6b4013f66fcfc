"""Record what every attention module saw and returned during one forward pass.

Forward hooks (``register_forward_hook(..., with_kwargs=True)``) on each
:class:`~qkv.attention.MultiHeadAttention` keep the module's inputs (``x_q``, ``x_kv``, ``mask``,
``is_causal``, ``rotary``) and its outputs (``out``, ``weights``) -- nothing is stored on the modules, and
the hooks are removed when the ``with`` block ends. Works for any model built from qkv's attention module:
the walkthrough (:mod:`qkv.viz.walkthrough`) needs no knowledge of how a model wires its layers.

A call is tied to an entry of ``ModelOutput.attentions`` (``"encoder_self"``/``"decoder_self"``/``"cross"``,
layer ``L``) by the identity -- or failing that the equality -- of the returned weights tensor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from qkv.attention import MultiHeadAttention


@dataclass
class AttentionCall:
    """One forward call of a :class:`MultiHeadAttention`: its inputs and outputs, detached."""

    name: str  # the module's name inside the model, e.g. "encoder.layers.0.self_attn"
    module: MultiHeadAttention
    x_q: Tensor  # (B, T_q, E)
    x_kv: Tensor  # (B, T_k, E_kv); x_q itself for self-attention
    mask: Tensor | None  # bool, True = may attend, broadcastable to (B, H, T_q, T_k)
    is_causal: bool
    rotary: Any  # the rotary callable, or None
    cached: bool  # a KV cache took part (then x_kv is not the whole key sequence)
    out: Tensor  # (B, T_q, E)
    weights: Tensor | None  # (B, H, T_q, T_k)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


@contextmanager
def record_attention(model: nn.Module) -> Iterator[list[AttentionCall]]:
    """Inside the block, every call of every ``MultiHeadAttention`` in ``model`` is appended to the list."""
    calls: list[AttentionCall] = []
    handles = []

    def make_hook(name: str):
        def hook(module: MultiHeadAttention, args: tuple, kwargs: dict, output: tuple) -> None:
            x_q = _arg(args, kwargs, 0, "x_q")
            x_kv = _arg(args, kwargs, 1, "x_kv")
            out, weights = output
            calls.append(
                AttentionCall(
                    name=name,
                    module=module,
                    x_q=x_q.detach(),
                    x_kv=(x_q if x_kv is None else x_kv).detach(),
                    mask=kwargs.get("mask"),
                    is_causal=bool(kwargs.get("is_causal", False)),
                    rotary=kwargs.get("rotary"),
                    cached=kwargs.get("cache") is not None,
                    out=out.detach(),
                    weights=None if weights is None else weights.detach(),
                )
            )

        return hook

    for name, module in model.named_modules():
        if isinstance(module, MultiHeadAttention):
            handles.append(module.register_forward_hook(make_hook(name), with_kwargs=True))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def find_call(calls: list[AttentionCall], weights: Tensor) -> AttentionCall:
    """The call that returned ``weights`` (the tensor found in ``ModelOutput.attentions``)."""
    for call in calls:
        if call.weights is not None and call.weights.data_ptr() == weights.data_ptr():
            return call
    for call in calls:
        if call.weights is not None and call.weights.shape == weights.shape and torch.equal(call.weights, weights):
            return call
    raise LookupError(
        "no MultiHeadAttention call returned these attention weights; the model does not compute this "
        "attention with qkv.attention.MultiHeadAttention (recurrent alignments have no Q/K/V walkthrough)"
    )

"""The data flow of one Transformer layer for one token, with its real numbers: what enters the layer (the
residual stream), each LayerNorm, the attention output, the residual sums, the MLP, what leaves it -- and,
around it, the embedding + position that started the stream and the logits it ends in.

Forward hooks on every layer of the model's stacks (``encoder.layers.N``, ``decoder.layers.N``, the modules
of :mod:`qkv.models.transformer_layers`) record the inputs and outputs of each sub-module in call order during
one forward pass; nothing is recomputed, so these are the model's own vectors. The residual sums are the
inputs of the next LayerNorm (pre-norm) -- the explorer checks ``stream + sub-layer output = next stream``.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor, nn

from qkv.attention import MultiHeadAttention

LAYER = re.compile(r"^(.*\.)?layers\.(\d+)$")
STACK = {"encoder_self": "encoder", "decoder_self": "decoder", "cross": "decoder"}


def _first(value: Any) -> Tensor | None:
    value = value[0] if isinstance(value, tuple) else value
    return value if isinstance(value, Tensor) else None


def _describe(child: nn.Module, name: str) -> str:
    if isinstance(child, MultiHeadAttention):
        return "cross-attention output (concat · W_O)" if "cross" in name else "self-attention output (concat · W_O)"
    if isinstance(child, nn.LayerNorm):
        return f"LayerNorm ({name})"
    return "MLP output" if name == "ff" else name


def record_layers(model: nn.Module, forward: Any) -> dict[str, Any]:
    """``layer name -> [(child, what, input, output)]`` in call order (batch 0), for one run of ``forward``;
    the layer's own input and output come first and last as ``("", "layer input"/"layer output", ...)``;
    ``"_logits"`` holds the model's logits and ``"_norm_first"`` whether every layer is pre-norm."""
    records: dict[str, Any] = {}
    handles = []
    for name, layer in model.named_modules():
        if not LAYER.match(name):
            continue
        log = records.setdefault(name, [])

        def layer_hook(module, args, kwargs, output, log=log):
            x = args[0] if args else kwargs.get("x")
            log.insert(0, ("", "layer input (the residual stream)", x.detach()[0], x.detach()[0]))
            out = _first(output)
            if out is not None:
                log.append(("", "layer output (the residual stream)", out.detach()[0], out.detach()[0]))

        handles.append(layer.register_forward_hook(layer_hook, with_kwargs=True))
        for child_name, child in layer.named_children():
            if isinstance(child, nn.Dropout):
                continue

            def child_hook(module, args, output, log=log, child_name=child_name):
                x, y = _first(args), _first(output)
                if x is not None and y is not None:
                    log.append((child_name, _describe(module, child_name), x.detach()[0], y.detach()[0]))

            handles.append(child.register_forward_hook(child_hook))
    try:
        with torch.no_grad():
            result = forward()
    finally:
        for handle in handles:
            handle.remove()
    records["_logits"] = [("", "logits", result.logits.detach()[0], result.logits.detach()[0])]
    layers = [m for n, m in model.named_modules() if LAYER.match(n)]
    records["_norm_first"] = bool(layers) and all(getattr(m, "norm_first", False) for m in layers)
    return records


def data_flow(
    records: dict, kind: str, layer: int, token: int, tokenizer: Any = None, digits: int = 5, top: int = 5
) -> dict | None:
    """The stages of ``layer`` of ``kind``'s stack for position ``token`` (None when the model has no such
    layer list, e.g. a recurrent model)."""

    def r(t: Tensor) -> list[float]:
        return [round(float(v), digits) for v in t.reshape(-1).tolist()]

    stack = STACK.get(kind, "decoder")
    by_layer = {int(n.rsplit(".", 1)[1]): n for n in records if n.startswith(f"{stack}.layers.") and records[n]}
    # (records also holds "_logits" and "_norm_first")
    if layer not in by_layer:
        return None
    stages = []
    first = records[by_layer[min(by_layer)]][0]
    stages.append({"what": "embedding + position (what enters the first layer)", "vector": r(first[2][token])})
    for child, what, x, y in records[by_layer[layer]]:
        stage = {"what": what, "child": child, "vector": r(y[token])}
        if child and "norm" in child:
            stage["input"] = r(x[token])  # the residual stream at this point
        stages.append(stage)
    flow = {"kind": kind, "layer": layer, "token": token, "stages": stages, "norm_first": records["_norm_first"]}
    logits = records["_logits"][0][2]
    if stack == "decoder" and token < logits.size(0) and tokenizer is not None:
        probs = torch.softmax(logits[token].double(), dim=-1)
        best = torch.topk(probs, min(top, probs.numel()))
        flow["next"] = [
            {"token": tokenizer.token(int(i)), "p": round(float(p), 6)}
            for p, i in zip(best.values, best.indices, strict=True)
        ]
    return flow

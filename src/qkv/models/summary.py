"""What a model is made of: layers, heads, and parameter counts per module (like Table 3 of Vaswani et
al. 2017, which lists each variant's size and parameter count).

``summarize(model)`` returns plain data (a dict, JSON-ready); ``format_summary`` prints it as a table.
Shared (tied) parameters are counted once, at their first owner; modules that reuse them say so.
Repeated layers (an ``nn.ModuleList`` of identical layers) are shown once, as "N x Layer", with the
breakdown of one layer beneath.
"""

from __future__ import annotations

from typing import Any

from torch import nn

_KNOBS = (
    "d_model",
    "n_heads",
    "n_kv_heads",
    "n_encoder_layers",
    "n_decoder_layers",
    "d_ff",
    "positions",
    "norm_first",
    "activation",
    "scale_embeddings",
    "tie_embeddings",
    "share_embeddings",
    "copy",
    "max_len",
)
_RNN_KNOBS = (
    "d_model",
    "rnn_cell",
    "hidden_size",
    "n_rnn_layers",
    "bidirectional",
    "attention",
    "input_feeding",
    "copy",
)


def summarize(model: nn.Module, *, max_depth: int = 3) -> dict[str, Any]:
    """Layers, heads and parameter counts of ``model`` as a JSON-ready dict."""
    params = list(model.named_parameters(remove_duplicate=False))
    owner: dict[int, str] = {}
    for name, p in params:
        owner.setdefault(id(p), name)

    def counts(prefix: str) -> tuple[int, list[str]]:
        own, shared = 0, []
        for name, p in params:
            if name.startswith(prefix):
                if owner[id(p)] == name:
                    own += p.numel()
                elif "." not in name[len(prefix) :]:  # noted where the module holds it directly
                    shared.append(f"{name[len(prefix) :]} = {owner[id(p)]}")
        return own, shared

    rows: list[dict[str, Any]] = []

    def walk(module: nn.Module, path: str, depth: int) -> None:
        for child_name, child in module.named_children():
            full = f"{path}{child_name}"
            own, shared = counts(full + ".")
            if own == 0 and not shared:
                continue
            row: dict[str, Any] = {"module": full, "depth": depth, "type": type(child).__name__, "params": own}
            if shared:
                row["shared"] = shared
            if isinstance(child, nn.ModuleList) and len(child) and _all_alike(child):
                row["repeat"] = len(child)
                row["type"] = type(child[0]).__name__
                rows.append(row)
                if depth + 1 < max_depth:
                    walk(child[0], f"{full}.0.", depth + 1)  # one layer's breakdown (all alike)
                continue
            rows.append(row)
            if depth + 1 < max_depth:
                walk(child, full + ".", depth + 1)

    walk(model, "", 0)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = getattr(model, "config", None)
    info: dict[str, Any] = {"model": type(model).__name__, "kind": getattr(model, "kind", None)}
    if config is not None:
        knobs = _RNN_KNOBS if config.family == "recurrent" else _KNOBS
        info["name"] = config.name
        info["config"] = {k: getattr(config, k) for k in knobs}
    info.update(_attention_shape(model))
    info.update({"modules": rows, "total_params": total, "trainable_params": trainable})
    return info


def _all_alike(modules: nn.ModuleList) -> bool:
    shapes = [[tuple(p.shape) for p in m.parameters()] for m in modules]
    return all(type(m) is type(modules[0]) for m in modules) and all(s == shapes[0] for s in shapes)


def _attention_shape(model: nn.Module) -> dict[str, Any]:
    """Count attention layers and heads per role (encoder self, decoder self, cross)."""
    from qkv.attention import MultiHeadAttention

    roles: dict[str, dict[str, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, MultiHeadAttention):
            stack = "encoder" if name.startswith("encoder") else "decoder"
            role = "cross" if name.endswith("cross_attn") else f"{stack}_self"
            entry = roles.setdefault(
                role, {"layers": 0, "heads": module.n_heads, "kv_heads": module.n_kv_heads, "head_dim": module.head_dim}
            )
            entry["layers"] += 1
    return {"attention": roles} if roles else {}


def format_summary(info: dict[str, Any]) -> str:
    """A plain-text table of :func:`summarize`'s result."""
    title = info.get("name") or info["model"]
    lines = [f"{title}  ({info['model']}, kind={info['kind']})"]
    if "config" in info:
        lines.append("  " + "  ".join(f"{k}={v}" for k, v in info["config"].items()))
    for role, a in info.get("attention", {}).items():
        kv = f", {a['kv_heads']} kv heads" if a["kv_heads"] != a["heads"] else ""
        lines.append(f"  attention {role}: {a['layers']} layers x {a['heads']} heads{kv} (head dim {a['head_dim']})")
    width = max([len(r["module"]) + 2 * r["depth"] for r in info["modules"]] + [20]) + 18
    lines.append("")
    lines.append(f"{'module':<{width}} {'parameters':>14}")
    for r in info["modules"]:
        label = "  " * r["depth"] + r["module"].rsplit(".", 1)[-1]
        label += f"  {r['repeat']} x {r['type']}" if "repeat" in r else f"  {r['type']}"
        note = f"  (+ tied: {', '.join(r['shared'])})" if r.get("shared") else ""
        per_layer = f"  ({r['params'] // r['repeat']:,} each)" if "repeat" in r else ""
        lines.append(f"{label:<{width}} {r['params']:>14,}{per_layer}{note}")
    lines.append(f"{'total':<{width}} {info['total_params']:>14,}")
    if info["trainable_params"] != info["total_params"]:
        lines.append(f"{'trainable':<{width}} {info['trainable_params']:>14,}")
    return "\n".join(lines)

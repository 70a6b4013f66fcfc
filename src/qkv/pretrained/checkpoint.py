"""Reading a Hugging Face checkpoint directory: ``config.json``, safetensors weights (one file or
sharded with ``model.safetensors.index.json``) and, when present, ``tokenizer.json``.

Only safetensors are read -- never pickled ``pytorch_model.bin`` files, which can run code on load.
Every problem the user can fix is a :class:`~qkv.errors.UserError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from qkv.errors import UserError


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not directory.is_dir():
        raise UserError(f"{directory}: not a directory (expected a Hugging Face checkpoint directory)")
    if not path.exists():
        raise UserError(f"{path}: missing; a Hugging Face checkpoint directory has a config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a JSON file (binary data, not UTF-8)") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a JSON object (the model's configuration), got {type(config).__name__}")
    return config


def read_weights(directory: Path) -> dict[str, Tensor]:
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.exists():
        return _load_file(single)
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise UserError(f"{index}: not a safetensors index (a JSON object with a 'weight_map'; {err})") from None
        weights: dict[str, Tensor] = {}
        for shard in shards:
            weights.update(_load_file(directory / str(shard)))
        return weights
    if (directory / "pytorch_model.bin").exists():
        raise UserError(
            f"{directory}: only pytorch_model.bin found; qkv reads safetensors only (pickle files can run code)",
            hint="convert it once with transformers: model.save_pretrained(dir, safe_serialization=True)",
        )
    raise UserError(f"{directory}: no model.safetensors (or model.safetensors.index.json) found")


def _load_file(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise UserError(f"{path}: missing (named in model.safetensors.index.json)")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise UserError(f"{path}: not a readable safetensors file ({err}); the download may be damaged") from None


def strip_prefix(weights: dict[str, Tensor], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """Drop a head-model prefix (``bert.``, ``transformer.``, ``model.``) where the checkpoint has one."""
    out = {}
    for name, tensor in weights.items():
        for prefix in prefixes:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        out[name] = tensor
    return out


def load_into(model: nn.Module, state: dict[str, Tensor], source: Path) -> None:
    """Load converted weights strictly: every parameter must be given, except aliases of a tied one."""
    own = model.state_dict(keep_vars=True)
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise UserError(f"{source}: weights qkv does not know how to place: {', '.join(unexpected[:8])}")
    given_storage = {own[name].data_ptr() for name in state}
    missing = [name for name in own if name not in state and own[name].data_ptr() not in given_storage]
    if missing:
        raise UserError(f"{source}: checkpoint lacks weights for: {', '.join(missing[:8])}")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise UserError(
                f"{source}: {name} has shape {tuple(tensor.shape)}, config.json implies {tuple(own[name].shape)}"
            )
    with torch.no_grad():
        for name, tensor in state.items():
            own[name].copy_(tensor.to(own[name].dtype))


def require(config: dict[str, Any], key: str, source: Path) -> Any:
    if key not in config:
        raise UserError(f"{source / 'config.json'}: missing key {key!r}")
    return config[key]


HF_ACTIVATIONS = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "swish": "silu",
    "silu": "silu",
}


def activation(config: dict[str, Any], key: str, source: Path) -> str:
    name = require(config, key, source)
    if name not in HF_ACTIVATIONS:
        raise UserError(
            f"{source / 'config.json'}: {key}={name!r} is not supported (qkv has {', '.join(HF_ACTIVATIONS)})"
        )
    return HF_ACTIVATIONS[name]

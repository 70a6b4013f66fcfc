"""Checkpoints without pickle: safetensors for tensors, JSON for everything else, written atomically.

A checkpoint is **one** safetensors file, so that it is replaced in a single atomic step:

- the model weights under their usual ``state_dict`` names (``best.safetensors`` holds only these);
- for resumable checkpoints (``last.safetensors``), the training state's tensors under the reserved
  prefix ``_train.`` (AdamW moments or SGD momentum buffers, the torch RNG state, the data sampler's
  generator state), and the rest of the training state (step, optimizer hyper-parameters, Python/NumPy
  RNG states, the batcher's position, early-stopping counters) as JSON in the file's metadata header.

The header also holds ``qkv_sha256``: a SHA-256 over every tensor (name, dtype, shape and bytes, in name
order) and the training-state JSON. :func:`load_checkpoint` recomputes it and refuses a file whose
tensors or state changed after it was written (flipped bytes, a truncated copy that still parses, a hand
edit), naming the file; a ``qkv-checkpoint-2`` file (every one written now) without it is refused too.
Checkpoints written before the checksum existed (``qkv-checkpoint-1``) load as before, unchecked.
Checkpoints written by ``qkv train`` also carry ``qkv_vocabulary``: the fingerprint of each side's tokenizer
(:func:`qkv.data.tokenizers.vocabulary_fingerprint`), which :func:`check_vocabulary` compares with the
tokenizers a run is opened with (older checkpoints lack it and are not checked).

Next to it, ``last.json`` is a human-readable copy of that JSON (written after the checkpoint; the
loader never needs it: :func:`load_state` reads the JSON from the checkpoint's own header). Writing
(:func:`qkv.atomic.atomic_write`) goes to a temporary file in the same directory, which is flushed and
fsync'ed, then ``os.replace``-d over the old file, so a ``kill -9`` at any moment leaves either the old or
the new checkpoint, never half of one.
A file is never changed in place, so :func:`copy_checkpoint` may keep a copy as a hard link. Loading uses
``safetensors`` and ``json`` only -- nothing is ever unpickled.

Checkpoint averaging (Vaswani et al. 2017, section 6.1: "averaging the last 5 checkpoints") is
:func:`average_checkpoints`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from qkv.atomic import atomic_write
from qkv.errors import UserError

TRAIN_PREFIX = "_train."
_META_KEY = "qkv_train_state"
_SUM_KEY = "qkv_sha256"
_VOCAB_KEY = "qkv_vocabulary"
# format 2 always carries the checksum, so one without it was damaged or edited; format 1 files (older qkv)
# and files of other programs may lack it and load unchecked
FORMAT = "qkv-checkpoint-2"
_CHECKSUMMED_FORMATS = (FORMAT,)


def save_checkpoint(
    path: str | Path,
    weights: dict[str, torch.Tensor],
    tensors: dict[str, torch.Tensor] | None = None,
    state: dict[str, Any] | None = None,
    vocabulary: dict[str, str] | None = None,
) -> None:
    """Save weights, plus optional training-state ``tensors`` and JSON ``state``, as one file; ``vocabulary``
    (side -> :func:`~qkv.data.tokenizers.vocabulary_fingerprint`) ties it to the tokenizers it was trained with."""
    payload = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
    for key, value in (tensors or {}).items():
        payload[TRAIN_PREFIX + key] = value.detach().to("cpu").contiguous()
    metadata = {"format": FORMAT}
    if state is not None:
        metadata[_META_KEY] = json.dumps(state)
    metadata[_SUM_KEY] = checksum(payload, metadata.get(_META_KEY))
    if vocabulary:
        metadata[_VOCAB_KEY] = json.dumps(vocabulary, sort_keys=True)
    atomic_write(path, save(_untie(payload), metadata=metadata))
    if state is not None:
        _write_readable_copy(path, state)


def _write_readable_copy(path: str | Path, state: dict[str, Any]) -> None:
    """``NAME.json`` beside ``NAME.safetensors``: the training state, for people (never read back)."""
    atomic_write(Path(path).with_suffix(".json"), (json.dumps(state, indent=1) + "\n").encode())


def copy_checkpoint(src: str | Path, dest: str | Path) -> None:
    """Make ``dest`` (and its ``.json``) a copy of checkpoint ``src``, atomically and cheaply: a hard link
    where the file system allows (safe, since checkpoints are only ever replaced, never written in place),
    else a byte copy."""
    for a, b in ((Path(src), Path(dest)), (Path(src).with_suffix(".json"), Path(dest).with_suffix(".json"))):
        if not a.exists():
            continue
        tmp = b.with_name(f".{b.name}.{os.getpid()}.link.tmp")
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(a, tmp)
            except OSError:
                shutil.copyfile(a, tmp)
            os.replace(tmp, b)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def move_checkpoint(src: str | Path, dest: str | Path) -> None:
    """Rename checkpoint ``src`` to ``dest`` atomically (replacing it); its ``.json`` copy is rewritten from
    the moved file's own header, so the two always agree."""
    src, dest = Path(src), Path(dest)
    os.replace(src, dest)
    src.with_suffix(".json").unlink(missing_ok=True)
    state = load_state(dest)
    if state is not None:
        _write_readable_copy(dest, state)


def checksum(tensors: dict[str, torch.Tensor], state_json: str | None = None) -> str:
    """SHA-256 (hex) of ``tensors`` -- each one's name, dtype, shape and bytes, in name order -- and of the
    training-state JSON text when there is one: what ``qkv_sha256`` in a checkpoint's header holds."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{str(tensor.dtype).removeprefix('torch.')}\0{list(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    if state_json is not None:
        digest.update(b"state\0" + state_json.encode())
    return digest.hexdigest()


def _verify(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A checkpoint whose tensors or state differ from what was written is an error naming the file."""
    stored = metadata.get(_SUM_KEY)
    if stored is None and metadata.get("format") in _CHECKSUMMED_FORMATS:
        raise UserError(
            f"{path}: lacks the checksum ({_SUM_KEY}) that every {metadata['format']} file carries: its header "
            "was damaged or edited; load another checkpoint, or train again"
        )
    if stored is None:  # written before checkpoints carried a checksum (or by another program): unchecked
        return
    if checksum(tensors, metadata.get(_META_KEY)) != stored:
        raise UserError(
            f"{path}: checksum mismatch: the checkpoint was damaged or changed after it was written "
            "(its tensors or training state differ from the sha256 in its header); load another "
            "checkpoint, or train again"
        )


def remove_orphans(folder: str | Path) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``) that a process killed in the middle of a save left in
    ``folder``; return them. (Safe while no other process is saving into ``folder``.)"""
    folder = Path(folder)
    orphans = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for path in orphans:
        path.unlink(missing_ok=True)
    return orphans


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory (tied embeddings): store each as its own copy."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        ptr = value.untyped_storage().data_ptr() if value.numel() else -1
        out[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    return out


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict | None]:
    """Return ``(weights, training tensors, training state or None)`` from a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    stored = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                stored[key] = f.get_tensor(key)
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise UserError(f"{path}: not a readable safetensors checkpoint ({err})") from None
    state = _state(path, metadata)  # (first: a state cut short is named as such, not as a checksum mismatch)
    _verify(path, stored, metadata)
    weights = {k: v for k, v in stored.items() if not k.startswith(TRAIN_PREFIX)}
    tensors = {k[len(TRAIN_PREFIX) :]: v for k, v in stored.items() if k.startswith(TRAIN_PREFIX)}
    return weights, tensors, state


def read_vocabulary(path: str | Path) -> dict[str, str] | None:
    """The tokenizer fingerprints in a checkpoint's header (side -> sha256), or None where it has none
    (written before qkv recorded them, or not by ``qkv train``). Reads the header only."""
    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(_VOCAB_KEY)
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise UserError(f"{path}: not a readable safetensors checkpoint ({err})") from None
    if text is None:
        return None
    try:
        vocabulary = json.loads(text)
    except ValueError:
        vocabulary = None
    if not isinstance(vocabulary, dict) or not all(isinstance(v, str) for v in vocabulary.values()):
        raise UserError(f"{path}: the tokenizer fingerprints ({_VOCAB_KEY}) in its header are damaged")
    return vocabulary


def check_vocabulary(path: str | Path, tokenizers: dict[str, Any], folder: str | Path) -> None:
    """Refuse to pair checkpoint ``path`` with ``tokenizers`` (side -> tokenizer, read from ``folder/side``)
    when a side's vocabulary is not the one the checkpoint recorded: its ids would decode to other words."""
    from qkv.data.tokenizers import FINGERPRINT_VERSION, vocabulary_fingerprint

    recorded = read_vocabulary(path)
    for side, tok in tokenizers.items():
        expected = (recorded or {}).get(side)
        if expected is None or not expected.startswith(f"{FINGERPRINT_VERSION}:"):
            continue  # recorded before fingerprints existed, or by another definition of them: not checked
        if vocabulary_fingerprint(tok) != expected:
            raise UserError(
                f"{Path(folder) / side}: not the tokenizer {path} was trained with (its vocabulary differs "
                "from the fingerprint in the checkpoint's header, which the checksum does not cover: a "
                "damaged header reads the same), so its ids would decode to other tokens",
                hint=f"put back the run's own tokenizer/{side} folder, or open the run it was copied from",
            )


def load_state(path: str | Path) -> dict | None:
    """Just the training state of a checkpoint (None for weights only). The whole file is read, to verify
    the checksum (it covers the tensors and the state together): a damaged checkpoint is never trusted for
    its step -- e.g. to decide that a run is complete."""
    return load_checkpoint(path)[2]


def _state(path: str | Path, metadata: dict[str, str]) -> dict | None:
    if _META_KEY not in metadata:
        return None
    try:
        state = json.loads(metadata[_META_KEY])
    except ValueError as err:
        raise UserError(f"{path}: the training state in the checkpoint's header is not valid JSON ({err})") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: the training state in the checkpoint's header is not a JSON object")
    return state


def fit_weights(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], path: str | Path, config_path: str | Path
) -> None:
    """Load ``weights`` (read from checkpoint ``path``) into ``model`` (built from ``config_path``); a
    missing, extra or differently shaped tensor is an error naming the tensor and both files."""
    own = model.state_dict()
    why = "a checkpoint of another model, or an edited config?"
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    if missing or unexpected:
        parts = ([f"lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"] if missing else []) + (
            [f"has unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"] if unexpected else []
        )
        raise UserError(f"{path}: does not fit the model of {config_path}: it {' and '.join(parts)} ({why})")
    for key, value in weights.items():
        if value.shape != own[key].shape:
            raise UserError(
                f"{path}: does not fit the model of {config_path}: {key} has shape "
                f"{tuple(value.shape)} in the checkpoint, {tuple(own[key].shape)} in the model ({why})"
            )
    model.load_state_dict(weights)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Just the model weights of a checkpoint."""
    return load_checkpoint(path)[0]


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the weights of several checkpoints of the same model."""
    if not paths:
        raise UserError("checkpoint averaging needs at least one checkpoint")
    total: dict[str, torch.Tensor] = {}
    for path in paths:
        weights = load_weights(path)
        if total and weights.keys() != total.keys():
            raise UserError(f"{path}: parameters differ from {paths[0]}; cannot average different models")
        for key, value in weights.items():
            total[key] = total[key] + value.double() if key in total else value.double()
    reference = load_weights(paths[0])
    return {k: (v / len(paths)).to(reference[k].dtype) for k, v in total.items()}


# ----------------------------------------------------------------------------------------------
# Optimizer state <-> (tensors, JSON)


def optimizer_to_saveable(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON-able data."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, per_param in sd["state"].items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_saveable(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], data: dict, path: str | Path = "checkpoint"
) -> None:
    """Inverse of :func:`optimizer_to_saveable`; loads into ``optimizer`` in place. State that does not fit
    the optimizer's parameters (a tensor missing, extra or of another shape) is an error naming ``path``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            idx, _, name = key[len("optim.") :].partition(".")
            if not idx.isdigit() or not name:
                raise UserError(f"{path}: unexpected training tensor {TRAIN_PREFIX}{key}")
            state.setdefault(int(idx), {})[name] = value
    groups = []
    for group in data["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    _check_optimizer_settings(optimizer, groups, path)  # first: another optimizer has other state tensors
    _check_optimizer_state(optimizer, state, data, path)
    for key, value in data["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# the settings a resumed run must share with its checkpoint (the learning rate is set by the schedule each step)
RESUMED_SETTINGS = ("betas", "eps", "momentum", "weight_decay", "nesterov", "dampening")


def _check_optimizer_settings(optimizer: torch.optim.Optimizer, saved: list[dict[str, Any]], path: str | Path) -> None:
    """The checkpoint was written by the same optimizer with the same settings: loading would otherwise
    replace this run's settings with the saved ones in silence (or fail at the next step on a missing key)."""
    mine = optimizer.param_groups
    kind = type(optimizer).__name__
    saved_kind = "SGD" if "momentum" in saved[0] else "AdamW" if "betas" in saved[0] else "another optimizer"
    if (kind == "SGD") != (saved_kind == "SGD"):
        raise UserError(
            f"{path}: the run trained with {saved_kind}, this config asks for {kind} (optim.name)",
            hint="resume with the run's own config (RUN/config.yaml), or start a new run",
        )
    for ours, theirs in zip(mine, saved, strict=False):
        for key in RESUMED_SETTINGS:
            if key in ours and key in theirs and tuple(_listed(ours[key])) != tuple(_listed(theirs[key])):
                raise UserError(
                    f"{path}: the run trained with optim.{key} = {theirs[key]}, this config says {ours[key]}",
                    hint="resume with the run's own config (RUN/config.yaml), or start a new run",
                )


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _check_optimizer_state(
    optimizer: torch.optim.Optimizer, state: dict[int, dict[str, Any]], data: dict, path: str | Path
) -> None:
    """The saved optimizer state fits ``optimizer``: as many parameters per group, for each parameter with state
    the same moment tensors, each shaped like its parameter (else the failure would come mid-training)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    mine = [len(group["params"]) for group in optimizer.param_groups]
    saved = [len(group.get("params", [])) for group in data["param_groups"]]
    if saved != mine:
        raise UserError(
            f"{path}: the optimizer state is for parameter groups of {saved} tensors, this model has "
            f"{mine} (a checkpoint of another model?)"
        )
    moments = _moment_names(optimizer)
    names = set(moments) | {n for per in state.values() for n, v in per.items() if isinstance(v, torch.Tensor)}
    for idx in sorted(state):
        if idx >= len(params):
            raise UserError(
                f"{path}: unexpected training tensor {TRAIN_PREFIX}optim.{idx}.* "
                f"(the model has {len(params)} parameters)"
            )
        lacking = sorted(n for n in names if n not in state[idx])
        if lacking:
            raise UserError(f"{path}: lacks training tensor {TRAIN_PREFIX}optim.{idx}.{lacking[0]}")
        for name in moments:
            if state[idx][name].shape != params[idx].shape:
                raise UserError(
                    f"{path}: training tensor {TRAIN_PREFIX}optim.{idx}.{name} has shape "
                    f"{tuple(state[idx][name].shape)}, its parameter {tuple(params[idx].shape)}"
                )


def _moment_names(optimizer: torch.optim.Optimizer) -> tuple[str, ...]:
    """The per-parameter tensors ``optimizer`` keeps, each shaped like its parameter: AdamW's two moments,
    SGD's momentum buffer (none for plain SGD)."""
    if isinstance(optimizer, torch.optim.SGD):
        return ("momentum_buffer",) if any(g.get("momentum", 0) for g in optimizer.param_groups) else ()
    return ("exp_avg", "exp_avg_sq")

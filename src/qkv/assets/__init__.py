"""Small trained models that qkv ships, so that ``qkv serve``, ``qkv explain`` and ``qkv attention`` show a
real model before anyone has trained one.

Each model is a run directory (the layout of :mod:`qkv.training.run`) under ``qkv/assets/models/NAME/``::

    config.yaml               the resolved recipe it was trained with
    tokenizer/src, tokenizer/tgt
    checkpoints/weights.safetensors  the weights, stored small (int8 per row or float16, see
                              :mod:`qkv.assets.pack`) and loaded into float32 modules
    TRAINED.md                how it was trained: recipe, exact command, metrics, commit
    manifest.json             the sha256 of every file above

:func:`open_shipped` checks every file against ``manifest.json`` before anything is read, and the
checkpoint loader (:func:`qkv.training.checkpoint.load_checkpoint`) checks the tensors against the
``qkv_sha256`` in the checkpoint's own header; nothing is ever unpickled. A command given no RUN opens
:data:`DEFAULT`; a RUN that is not a directory but the name of a shipped model opens that model
(``qkv serve g2p-cmudict``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qkv.errors import UserError

MODELS_DIR = Path(__file__).resolve().parent / "models"
MANIFEST = "manifest.json"
DEFAULT = "multi30k-de-en"


@dataclass(frozen=True)
class Shipped:
    """One shipped model: its name, directory, task and an example input the model understands."""

    name: str
    directory: Path
    task: str
    example: str
    about: str


SHIPPED: dict[str, Shipped] = {
    "multi30k-de-en": Shipped(
        "multi30k-de-en",
        MODELS_DIR / "multi30k-de-en",
        "translation",
        "Ein brauner Hund rennt dem schwarzen Hund hinterher.",
        "Multi30k German -> English Transformer (3+3 layers, d=256, 8 heads)",
    ),
    "g2p-cmudict": Shipped(
        "g2p-cmudict",
        MODELS_DIR / "g2p-cmudict",
        "g2p",
        "attention",
        "CMUdict grapheme-to-phoneme Transformer (3+3 layers, d=128, 4 heads)",
    ),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path) -> None:
    """Every file listed in ``directory/manifest.json`` exists and has its recorded sha256."""
    manifest = directory / MANIFEST
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{manifest}: missing or unreadable ({err}); reinstall qkv") from None
    for name, expected in listed.items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"{path}: missing from the shipped model (reinstall qkv)")
        if file_sha256(path) != expected:
            raise UserError(f"{path}: sha256 differs from {manifest}: the file was damaged or changed")


def is_shipped(name: str | Path | None) -> bool:
    return name is None or (str(name) in SHIPPED and not Path(name).is_dir())


def shipped(name: str | None = None) -> Shipped:
    """The shipped model called ``name`` (default :data:`DEFAULT`), its files verified."""
    name = name or DEFAULT
    if name not in SHIPPED:
        raise UserError(f"{name}: no such shipped model (shipped: {', '.join(SHIPPED)})")
    model = SHIPPED[name]
    if not model.directory.is_dir():
        raise UserError(f"{model.directory}: the shipped model {name!r} is not installed (reinstall qkv)")
    verify(model.directory)
    return model


def load_shipped(name: str | None = None) -> Any:
    """Open shipped model ``name`` as a :class:`qkv.training.run.Run` (files verified, weights in float32)."""
    from qkv.assets.pack import WEIGHTS, load_packed
    from qkv.data.tokenizers import load_tokenizer
    from qkv.models.builder import build_model
    from qkv.training.checkpoint import check_vocabulary, fit_weights
    from qkv.training.config import load_config
    from qkv.training.run import CONFIG_FILE, Run, open_task

    model_info = shipped(name)
    folder = model_info.directory
    config = load_config(folder / CONFIG_FILE)
    src_tok = load_tokenizer(folder / "tokenizer" / "src")
    tgt_tok = load_tokenizer(folder / "tokenizer" / "tgt")
    check_vocabulary(folder / WEIGHTS, {"src": src_tok, "tgt": tgt_tok}, folder / "tokenizer")
    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size)
    fit_weights(model, load_packed(folder / WEIGHTS), folder / WEIGHTS, folder / CONFIG_FILE)
    model.eval()
    return Run(model, config, src_tok, tgt_tok, open_task(config.task), folder, folder / WEIGHTS)


def example_for(task: str | None) -> str | None:
    """An example input for a task, taken from the shipped model of that task."""
    for model in SHIPPED.values():
        if model.task == task:
            return model.example
    return None


__all__ = [
    "DEFAULT",
    "SHIPPED",
    "Shipped",
    "example_for",
    "file_sha256",
    "is_shipped",
    "load_shipped",
    "shipped",
    "verify",
]

"""Turn a trained run into a shipped model, and read its weights back.

Weights are stored small, in one of two ways (``--dtype``):

- ``float16``: every floating tensor rounded to half precision;
- ``int8`` (weight-only, per output row): each matrix ``W`` (2-D: projections, embeddings) becomes
  ``round(W / s)`` in int8 with one float32 scale per row, ``s = max_j |W_ij| / 127``, stored under
  ``_int8_scale.NAME``; vectors (biases, LayerNorm) stay float32. :func:`load_packed` turns them back into
  float32 ``s * round(W / s)`` -- those are the weights the shipped model computes with (and the numbers
  its walkthroughs show).

Used once per shipped model; kept so the step can be redone::

    python -m qkv.assets.pack RUN src/qkv/assets/models/NAME --dtype int8 --about TRAINED.md
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from qkv.assets import MANIFEST, file_sha256
from qkv.errors import UserError
from qkv.training.checkpoint import check_vocabulary, load_weights, read_vocabulary, save_checkpoint
from qkv.training.run import CONFIG_FILE, resolve_checkpoint

WEIGHTS = "checkpoints/weights.safetensors"
SCALE = "_int8_scale."


def quantize(weights: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """``weights`` stored as ``dtype`` (``float16`` or ``int8``; see the module docstring)."""
    out = {}
    for name, w in weights.items():
        if not w.is_floating_point():
            out[name] = w
        elif dtype == "float16":
            out[name] = w.half()
        elif dtype == "int8" and w.dim() == 2:
            scale = w.float().abs().amax(dim=1, keepdim=True).clamp_min(1e-30) / 127  # (rows, 1)
            out[name] = (w.float() / scale).round().clamp(-127, 127).to(torch.int8)
            out[SCALE + name] = scale.squeeze(1)
        elif dtype == "int8":
            out[name] = w.float()
        else:
            raise ValueError(f"unknown storage dtype {dtype!r} (float16 or int8)")
    return out


def dequantize(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 weights that :func:`quantize` stored."""
    out = {}
    for name, w in stored.items():
        if name.startswith(SCALE):
            continue
        scale = stored.get(SCALE + name)
        if scale is not None:
            out[name] = w.float() * scale.float()[:, None]
        else:
            out[name] = w.float() if w.is_floating_point() else w
    return out


def load_packed(path: str | Path) -> dict[str, torch.Tensor]:
    """The float32 weights of a packed checkpoint (its sha256 verified by the checkpoint loader)."""
    return dequantize(load_weights(path))


def pack_run(
    run_dir: str | Path, out_dir: str | Path, *, checkpoint: str = "best", dtype: str = "int8", about: str = ""
) -> Path:
    """Write ``out_dir``: config, tokenizers, ``checkpoints/weights.safetensors``, TRAINED.md, manifest."""
    from qkv.data.tokenizers import load_tokenizer

    run_dir, out = Path(run_dir), Path(out_dir)
    path = resolve_checkpoint(run_dir, checkpoint)
    tokenizers = {side: load_tokenizer(run_dir / "tokenizer" / side) for side in ("src", "tgt")}
    check_vocabulary(path, tokenizers, run_dir / "tokenizer")  # (the manifest then vouches for a matching pair)
    weights = load_weights(path)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / WEIGHTS, quantize(weights, dtype), vocabulary=read_vocabulary(path))
    shutil.copyfile(run_dir / CONFIG_FILE, out / CONFIG_FILE)
    for side in ("src", "tgt"):
        shutil.copytree(run_dir / "tokenizer" / side, out / "tokenizer" / side, dirs_exist_ok=True)
    if about:
        (out / "TRAINED.md").write_text(about, encoding="utf-8")
    write_manifest(out)
    return out


def write_manifest(out: Path) -> None:
    """``out/manifest.json``: the sha256 of every other file under ``out``."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    listed = {p.relative_to(out).as_posix(): file_sha256(p) for p in files}
    (out / MANIFEST).write_text(json.dumps({"files": listed}, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="pack a trained run as a shipped model")
    parser.add_argument("run", help="the trained run directory")
    parser.add_argument("out", help="the shipped model's directory")
    parser.add_argument("--checkpoint", default="best", help="best | last | averaged | a file")
    parser.add_argument("--dtype", default="int8", choices=["int8", "float16"], help="how weights are stored")
    parser.add_argument("--about", default=None, help="a Markdown file: how the model was trained")
    args = parser.parse_args()
    if args.about and not Path(args.about).is_file():
        raise UserError(f"--about {args.about}: no such file")
    about = Path(args.about).read_text(encoding="utf-8") if args.about else ""
    print(pack_run(args.run, args.out, checkpoint=args.checkpoint, dtype=args.dtype, about=about))


if __name__ == "__main__":
    main()

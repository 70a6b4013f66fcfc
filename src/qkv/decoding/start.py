"""Getting a search started: encode the source once, feed BOS and the prompt, hold back what must be forced.

Every search (greedy, beam, sampling) starts the same way, written once here against the decoding
interface of ``docs/architecture.md``:

* seq2seq models: ``encode(src)``, then the decoder reads ``[BOS] + prompt`` (the prompt, usually empty,
  is a forced target prefix);
* decoder-only LMs (``kind == "lm"``, ``src=None``): ``encode(None)`` is ``None`` and the decoder reads
  the prompt exactly as given (put BOS in it yourself if your model was trained with one); an empty
  prompt becomes ``[BOS]``.

Prompts of different lengths need no padding: the shortest length is fed to the whole batch at once, and
the rest of each longer prompt is *forced* -- during the first steps of the search those rows take their
next prompt token instead of choosing one, at no cost to their score, and it is not reported as generated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from qkv.decoding.interface import DecodingModel, Prompt, State
from qkv.models.output import Encoded


@dataclass
class Start:
    """The search's state right after the prompt: the next-token logits of every row and what is forced."""

    encoded: Encoded | None  # None for decoder-only LMs
    state: State  # the model's decoder state
    logits: Tensor  # (B, V): next-token logits after each row's fed prefix
    forced: list[list[int]]  # per row, prompt tokens still to be taken before choosing starts
    device: torch.device


def _model_device(model: DecodingModel) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _prompt_lists(prompt: Prompt, batch: int | None) -> list[list[int]] | None:
    if prompt is None:
        return None
    if isinstance(prompt, Tensor):
        if prompt.dim() != 2:
            raise ValueError(f"a prompt tensor must be (B, T) without padding, got shape {tuple(prompt.shape)}")
        rows = [[int(t) for t in row] for row in prompt.tolist()]
    else:
        rows = [[int(t) for t in row] for row in prompt]
    if batch is not None and len(rows) != batch:
        raise ValueError(f"got {len(rows)} prompts for a source batch of {batch}")
    return rows


@torch.no_grad()
def start(model: DecodingModel, src: Tensor | None, prompt: Prompt = None) -> Start:
    """Encode ``src (B, T_s)`` (or nothing, for an LM), feed each row's prefix, return the :class:`Start`."""
    device = _model_device(model)
    if model.kind == "seq2seq":
        if src is None:
            raise ValueError("a seq2seq model needs src (B, T_s) to decode from")
        src = src.to(device)
        batch = src.size(0)
        prompts = _prompt_lists(prompt, batch) or [[] for _ in range(batch)]
        prefixes = [[model.bos_id, *p] for p in prompts]
        encoded = model.encode(src)
    elif model.kind == "lm":
        if src is not None:
            raise ValueError("a decoder-only LM takes no src; pass prompt=[[token ids], ...] instead")
        lm_prompts = _prompt_lists(prompt, None)
        if not lm_prompts:
            raise ValueError("a decoder-only LM needs prompt=[[token ids], ...] (one list per row; [] = just BOS)")
        prefixes = [p if p else [model.bos_id] for p in lm_prompts]
        batch = len(prefixes)
        encoded = model.encode(None)
    else:
        raise ValueError(f"cannot decode with a model of kind {model.kind!r} (need 'seq2seq' or 'lm')")

    common = min(len(p) for p in prefixes)
    fed = torch.tensor([p[:common] for p in prefixes], dtype=torch.long, device=device)  # (B, common)
    state = model.init_state(encoded, batch)
    logits, state = model.decode_step(fed, encoded, state)  # (B, common, V)
    return Start(encoded, state, logits[:, -1], [p[common:] for p in prefixes], device)

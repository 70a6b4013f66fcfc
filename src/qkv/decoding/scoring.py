"""Scoring given outputs with a model: ``log P(tokens [+ EOS] | source, prompt)`` by teacher forcing.

Useful to compare what different searches found on one scale (the tests check that beam search never
finds a less probable output than greedy this way) and to rescore candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from qkv.decoding.interface import DecodingModel, Prompt
from qkv.decoding.start import start


@torch.no_grad()
def sequence_log_probs(
    model: DecodingModel,
    src: Tensor | None,
    sequences: Sequence[Sequence[int]],
    *,
    prompt: Prompt = None,
    add_eos: bool | Sequence[bool] = True,
) -> list[float]:
    """Summed log-probability of each row's ``sequences[b]`` (followed by EOS where ``add_eos``).

    Row ``b`` is scored on its own (``src[b:b+1]``, ``prompt[b]``), through the same ``decode_step`` the
    searches use.
    """
    eos_flags = [add_eos] * len(sequences) if isinstance(add_eos, bool) else list(add_eos)
    prompts = None if prompt is None else [list(p) for p in (prompt.tolist() if isinstance(prompt, Tensor) else prompt)]
    results = []
    for b, tokens in enumerate(sequences):
        row_src = None if src is None else src[b : b + 1]
        row_prompt = None if prompts is None else [prompts[b]]
        begun = start(model, row_src, row_prompt)
        # the whole row is known: feed what is still forced plus the tokens in one call
        targets = list(begun.forced[0]) + list(tokens) + ([model.eos_id] if eos_flags[b] else [])
        logits = begun.logits.unsqueeze(1)  # (1, 1, V): the prediction of targets[0]
        if len(targets) > 1:
            feed = torch.tensor([targets[:-1]], dtype=torch.long, device=begun.device)  # (1, n - 1)
            more, _ = model.decode_step(feed, begun.encoded, begun.state)  # (1, n - 1, V)
            logits = torch.cat([logits, more], dim=1)  # (1, n, V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)[0]  # (n, V)
        picked = log_probs[torch.arange(len(targets)), torch.tensor(targets, device=begun.device)]  # (n,)
        results.append(float(picked[len(begun.forced[0]) :].sum()))  # the forced prompt costs nothing
    return results

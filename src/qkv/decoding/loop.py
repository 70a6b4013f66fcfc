"""The one left-to-right generation loop behind greedy decoding and sampling.

Each step turns the next-token logits of every unfinished row into one token (``pick``: argmax for
greedy, a draw for sampling), scores it with the model's log-softmax, and feeds it back through
``decode_step``. Rows that produced EOS or reached ``max_len`` leave the batch: ``model.reorder`` drops
them from the encoder output and the decoder state, so the remaining rows run on a smaller batch.
``rules`` (:mod:`qkv.decoding.rules`: no repeated n-grams, a minimum length) ban tokens before one is
picked; scores stay the model's log-probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.interface import DecodingModel, Prompt
from qkv.decoding.rules import NO_RULES, OutputRules
from qkv.decoding.start import start


@torch.no_grad()
def generate(
    model: DecodingModel,
    src: Tensor | None,
    max_len: int,
    pick: Callable[[Tensor], Tensor],
    prompt: Prompt = None,
    rules: OutputRules = NO_RULES,
) -> Hypotheses:
    """Generate up to ``max_len`` tokens per row; ``pick(logits (A, V)) -> tokens (A,)`` chooses each one."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    begun = start(model, src, prompt)
    encoded, state, logits, forced = begun.encoded, begun.state, begun.logits, begun.forced
    batch = logits.size(0)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    scores = [0.0] * batch
    finished = [False] * batch
    active = list(range(batch))  # input rows still generating, in the order of the model's batch rows

    while active:
        allowed = logits
        if rules.active:  # the rules limit the choice; the score stays the model's own log-probability
            allowed = logits.clone()  # (A, V)
            rules.apply(allowed, [tokens[row] for row in active], model.eos_id)
        chosen = pick(allowed).tolist()  # (A,)
        # rows still inside their prompt take its next token instead, scoring nothing
        taken = [forced[row][0] if forced[row] else chosen[i] for i, row in enumerate(active)]
        index = torch.tensor(taken, dtype=torch.long, device=begun.device).unsqueeze(1)  # (A, 1)
        taken_log_probs = torch.log_softmax(logits.float(), dim=-1).gather(1, index).squeeze(1).tolist()  # (A,)
        keep, next_tokens = [], []
        for i, row in enumerate(active):
            token = taken[i]
            if forced[row]:
                forced[row].pop(0)
            else:
                scores[row] += taken_log_probs[i]
                if token == model.eos_id:
                    finished[row] = True
                    continue
                tokens[row].append(token)
                if len(tokens[row]) >= max_len:
                    continue
            keep.append(i)
            next_tokens.append(token)
        if len(keep) < len(active):
            if not keep:
                break
            rows = torch.tensor(keep, dtype=torch.long, device=begun.device)  # (A',)
            encoded, state = model.reorder(encoded, state, rows)
            active = [active[i] for i in keep]
        step = torch.tensor(next_tokens, dtype=torch.long, device=begun.device).unsqueeze(1)  # (A, 1)
        logits, state = model.decode_step(step, encoded, state)  # (A, 1, V)
        logits = logits[:, -1]  # (A, V)
    return Hypotheses(tokens=tokens, scores=scores, finished=finished)

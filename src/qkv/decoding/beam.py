"""Batched beam search with a length penalty and early stopping.

Keeps the ``beam`` most probable partial sequences ("beams") of every input row and extends them all in
one ``decode_step`` call on a ``(B * beam)``-row batch; ``model.reorder`` copies the encoder output and
decoder state of the surviving beams. As in fairseq and Hugging Face, each step looks at the ``2 * beam``
best extensions per row: those ending in EOS (among the top ``beam``) become finished hypotheses, the best
``beam`` others carry on.

Finished hypotheses are ranked by ``score / lp``, by default with the GNMT length penalty (Wu et al. 2016,
"Google's Neural Machine Translation System", eq. 14): ``lp = ((5 + |Y|) / 6) ** alpha``, with ``|Y|`` the
generated tokens including EOS and ``alpha = length_penalty``; ``alpha = 0`` ranks by raw log-probability,
larger ``alpha`` favours longer outputs. ``length_penalty_form="power"`` uses ``lp = |Y| ** alpha`` instead,
the form of fairseq and Hugging Face ``generate``: the search is then ``generate(num_beams=beam,
length_penalty=alpha, early_stopping=True)``'s (``"never"`` for ``early_stopping=False``), with the conditions
listed in ``docs/decoding.md`` (no HF logits processors, equal-length prompts); the tests check the outputs
equal on GPT-2 and Marian with the same weights. (Live beams compete by raw log-probability, as every
prefix of one step has the same length.)

Stopping, per input row: with ``early_stopping=True`` (default) as soon as ``beam`` hypotheses have
finished; with ``early_stopping=False`` only when no live beam can still beat the worst of them -- an
exact bound, since log-probabilities only fall as a beam grows and ``lp`` is monotone in the length.
Rows that reach ``max_len`` add their live beams as unfinished hypotheses. ``rules`` give every extension
they ban (a repeated n-gram of its own beam, an EOS before the minimum length; :mod:`qkv.decoding.rules`)
a log-probability of -inf.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from qkv.decoding.hypotheses import Hypotheses
from qkv.decoding.interface import DecodingModel, Prompt
from qkv.decoding.rules import NO_RULES, OutputRules
from qkv.decoding.start import start

LengthPenaltyForm = Literal["gnmt", "power"]


def length_penalty_factor(length: int, alpha: float, form: LengthPenaltyForm = "gnmt") -> float:
    """GNMT's ``lp(Y) = ((5 + |Y|) / 6) ** alpha``, or with ``form="power"`` fairseq's and HF's ``|Y| ** alpha``."""
    if form == "power":
        return float(length) ** alpha
    if form == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    raise ValueError(f"length_penalty_form must be 'gnmt' or 'power', got {form!r}")


def _best_possible(raw: float, generated: int, max_len: int, alpha: float, form: LengthPenaltyForm) -> float:
    """Upper bound on the normalised score of any completion of a live beam with log-probability ``raw``.

    Its finished length lies in ``[generated + 1, max_len]`` and its log-probability is at most ``raw <= 0``;
    both forms of ``lp`` grow with the length for ``alpha >= 0`` and shrink for ``alpha < 0``, so dividing a
    negative number by the largest (``alpha >= 0``) or smallest (``alpha < 0``) ``lp`` bounds it.
    """
    length = max_len if alpha >= 0 else generated + 1
    return raw / length_penalty_factor(length, alpha, form)


@torch.no_grad()
def beam_search(
    model: DecodingModel,
    src: Tensor | None = None,
    beam: int = 4,
    max_len: int = 100,
    *,
    length_penalty: float = 1.0,
    length_penalty_form: LengthPenaltyForm = "gnmt",
    early_stopping: bool = True,
    prompt: Prompt = None,
    rules: OutputRules = NO_RULES,
) -> Hypotheses:
    """Beam search for every row of ``src (B, T_s)`` (seq2seq) or every ``prompt`` (LM; ``src=None``).

    Returns the best hypothesis per row by ``score / lp`` (see the module docstring); ``scores`` are raw
    log-probabilities, ``normalized_scores`` the ranking scores.
    """
    if beam < 1 or max_len < 1:
        raise ValueError(f"beam and max_len must be >= 1, got beam={beam}, max_len={max_len}")
    length_penalty_factor(1, length_penalty, length_penalty_form)  # an unknown form fails before any work
    begun = start(model, src, prompt)
    batch, vocab = begun.logits.shape
    device, eos = begun.device, model.eos_id
    expand = torch.arange(batch, device=device).repeat_interleave(beam)  # (B * beam,)
    encoded, state = model.reorder(begun.encoded, begun.state, expand)
    logits = begun.logits.index_select(0, expand)  # (B * beam, V)

    # Only the first beam of each row is alive at the start; the others are copies that must not be chosen.
    beam_scores = torch.full((batch, beam), float("-inf"), device=device)  # (B, beam)
    beam_scores[:, 0] = 0.0
    sequences: list[list[list[int]]] = [[[] for _ in range(beam)] for _ in range(batch)]
    forced = begun.forced
    generated = [0] * batch  # tokens generated so far by every beam of a row (forced ones excluded)
    done_hyps: list[list[tuple[float, float, list[int], bool]]] = [[] for _ in range(batch)]  # (norm, raw, tokens, eos)
    active = list(range(batch))  # input rows still searching; row i of the model batch block = active[i]

    while active:
        n_active = len(active)
        log_probs = torch.log_softmax(logits.float(), dim=-1).view(n_active, beam, vocab)  # (A, beam, V)
        for i, row in enumerate(active):
            if forced[row]:  # inside the prompt: the only extension is the prompt's next token, free of cost
                log_probs[i] = float("-inf")
                log_probs[i, :, forced[row][0]] = 0.0
            elif rules.active:
                rules.apply(log_probs[i], sequences[row], eos)  # (beam, V), in place
        candidates = (beam_scores[:, :, None] + log_probs).view(n_active, beam * vocab)  # (A, beam * V)
        top_values, top_index = candidates.topk(2 * beam, dim=-1)  # (A, 2 * beam)
        top_beam: list[list[int]] = (top_index // vocab).tolist()  # (A, 2 * beam)
        top_token: list[list[int]] = (top_index % vocab).tolist()  # (A, 2 * beam)
        top_scores: list[list[float]] = top_values.tolist()  # (A, 2 * beam)

        keep_rows: list[int] = []
        next_tokens: list[int] = []
        next_scores: list[list[float]] = []
        still_active: list[int] = []
        for i, row in enumerate(active):
            was_forced = bool(forced[row])
            if was_forced:
                forced[row].pop(0)
            survivors: list[tuple[int, int, float]] = []  # (beam, token, raw score)
            for rank in range(2 * beam):
                score, b, token = top_scores[i][rank], top_beam[i][rank], top_token[i][rank]
                if token == eos and not was_forced:
                    if rank < beam and score > float("-inf"):
                        norm = score / length_penalty_factor(generated[row] + 1, length_penalty, length_penalty_form)
                        done_hyps[row].append((norm, score, list(sequences[row][b]), True))
                    continue
                survivors.append((b, token, score))
                if len(survivors) == beam:
                    break
            if not was_forced:
                generated[row] += 1
            sequences[row] = [sequences[row][b] + ([] if was_forced else [t]) for b, t, _ in survivors]
            done_hyps[row].sort(key=lambda h: h[0], reverse=True)
            del done_hyps[row][beam:]
            best_live = survivors[0][2]
            if _row_done(
                done_hyps[row],
                best_live,
                generated[row],
                beam,
                max_len,
                length_penalty,
                length_penalty_form,
                early_stopping,
            ):
                if generated[row] >= max_len:  # out of room: live beams compete as unfinished hypotheses
                    for (_, _, score), tokens in zip(survivors, sequences[row], strict=True):
                        if score > float("-inf"):
                            norm = score / length_penalty_factor(generated[row], length_penalty, length_penalty_form)
                            done_hyps[row].append((norm, score, tokens, False))
                    done_hyps[row].sort(key=lambda h: h[0], reverse=True)
                continue
            still_active.append(row)
            keep_rows.extend(i * beam + b for b, _, _ in survivors)
            next_tokens.extend(t for _, t, _ in survivors)
            next_scores.append([s for _, _, s in survivors])

        same_rows = still_active == active  # no input finished: beams move only within their input's block
        active = still_active
        if not active:
            break
        index = torch.tensor(keep_rows, dtype=torch.long, device=device)  # (A' * beam,)
        encoded, state = model.reorder(encoded, state, index, same_rows=same_rows)
        beam_scores = torch.tensor(next_scores, device=device)  # (A', beam)
        step = torch.tensor(next_tokens, dtype=torch.long, device=device).unsqueeze(1)  # (A' * beam, 1)
        logits, state = model.decode_step(step, encoded, state)  # (A' * beam, 1, V)
        logits = logits[:, -1]  # (A' * beam, V)

    best = [hyps[0] for hyps in done_hyps]
    return Hypotheses(
        tokens=[tokens for _, _, tokens, _ in best],
        scores=[raw for _, raw, _, _ in best],
        finished=[ended for _, _, _, ended in best],
        normalized_scores=[norm for norm, _, _, _ in best],
    )


def _row_done(
    hyps: list[tuple[float, float, list[int], bool]],
    best_live: float,
    generated: int,
    beam: int,
    max_len: int,
    alpha: float,
    form: LengthPenaltyForm,
    early_stopping: bool,
) -> bool:
    """Whether an input row's search is over (see the module docstring)."""
    if generated >= max_len or best_live == float("-inf"):
        return True
    if len(hyps) < beam:
        return False
    return early_stopping or hyps[-1][0] >= _best_possible(best_live, generated, max_len, alpha, form)

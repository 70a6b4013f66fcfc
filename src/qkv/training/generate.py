"""Turn text into text with a trained run: translate / transcribe / summarize (seq2seq) or continue (LM).

Used by ``qkv generate`` and by anything else that wants one output per input string. Greedy and beam
search come from :mod:`qkv.decoding`; sampling draws from an explicit, seeded ``torch.Generator``.
"""

from __future__ import annotations

import torch

from qkv.decoding.rules import NO_RULES, OutputRules
from qkv.training.evaluate import check_positions, translate
from qkv.training.run import Run


def generate_texts(
    run: Run,
    texts: list[str],
    *,
    beam: int = 1,
    max_len: int = 128,
    sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    rules: OutputRules = NO_RULES,
) -> list[str]:
    """One output string per input. For language models the output is the continuation of the prompt.
    ``rules`` ban tokens before each choice (:mod:`qkv.decoding.rules`: no repeated n-grams, a minimum length)."""
    from qkv.decoding import as_decoding_model

    model = run.model
    if as_decoding_model(model).kind == "lm":
        return [_continue(run, t, max_len, sample, temperature, top_k, top_p, seed, beam, rules) for t in texts]
    from qkv.models.positions import learned_position_limit

    src_ids = run.src_tok.encode_batch(texts)
    max_len = min(max_len, learned_position_limit(model) or max_len)  # (no output longer than the model can write)
    check_positions(model, src_ids, max_len)
    if not sample:
        decoded = translate(model, src_ids, beam=beam, max_len=max_len, rules=rules)
        return [run.tgt_tok.decode(ids) for ids in decoded]
    from qkv.data.batching import collate
    from qkv.decoding import sample as draw
    from qkv.special import EOS_ID, PAD_ID

    device = next(model.parameters()).device
    src = collate([ids + [EOS_ID] for ids in src_ids], PAD_ID).to(device)  # (B, T_s)
    generator = torch.Generator(device=device).manual_seed(seed)
    hyps = draw(
        as_decoding_model(model),
        src,
        max_len=max_len,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=generator,
        rules=rules,
    )
    return [run.tgt_tok.decode(ids) for ids in hyps.tokens]


def _continue(
    run: Run,
    text: str,
    max_len: int,
    sample: bool,
    temperature: float,
    top_k,
    top_p,
    seed: int,
    beam: int,
    rules: OutputRules = NO_RULES,
) -> str:
    from qkv.decoding import as_decoding_model, beam_search, greedy
    from qkv.decoding import sample as draw

    model = as_decoding_model(run.model)
    prompt = run.tgt_tok.encode(text) or run.tgt_tok.encode("\n")
    room = run.config.model.max_len - len(prompt) if run.config.model.positions == "learned" else max_len
    if room < 1:
        prompt, room = prompt[-(run.config.model.max_len - 1) :], 1
    max_len = min(max_len, room)
    if sample:
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        hyps = draw(
            model,
            None,
            max_len=max_len,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            generator=generator,
            prompt=[prompt],
            rules=rules,
        )
    elif beam > 1:
        hyps = beam_search(model, None, beam=beam, max_len=max_len, prompt=[prompt], rules=rules)
    else:
        hyps = greedy(model, None, max_len=max_len, prompt=[prompt], rules=rules)
    return run.tgt_tok.decode(hyps.tokens[0])

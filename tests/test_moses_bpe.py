"""BPE on Moses tokens (qkv.data.moses_bpe): the Multi30k papers' preprocessing. Expected values come from
sacremoses itself (the Moses split and its detokenizer) and from the definition of subword-nmt's pieces (a
word's pieces, joined, are the word followed by ``</w>``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sacremoses import MosesDetokenizer, MosesTokenizer

from qkv.data import get_task
from qkv.data.moses_bpe import MosesBPETokenizer, train_moses_bpe
from qkv.data.tokenizers import load_tokenizer, train_tokenizer, vocabulary_fingerprint
from qkv.errors import UserError
from qkv.special import SPECIAL_TOKENS, UNK_ID

EN = [
    "Two young, white males are outside near many bushes.",
    "A man in an orange hat starring at something.",
    "Several men in hard hats are operating a giant pulley system.",
    "A little girl climbing into a wooden playhouse.",
    "Two men are at the stove preparing food.",
    "About 5 dogs run across 3 fields.",
] * 8
DE = [
    "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    "Mehrere Männer mit Schutzhelmen bedienen ein Antriebsradsystem.",
    "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
    "Zwei Männer stehen am Herd und bereiten Essen zu.",
    "Ca. 5 Hunde rennen über 3 Felder.",
] * 8


@pytest.fixture(scope="module")
def joint() -> dict[str, MosesBPETokenizer]:
    return train_moses_bpe({"en": EN, "de": DE}, 200, lowercase=True)


def pieces(tok: MosesBPETokenizer, text: str) -> list[str]:
    return [tok.token(i) for i in tok.encode(text)]


def test_the_pieces_are_the_moses_tokens_of_the_lowercased_text(joint: dict[str, MosesBPETokenizer]) -> None:
    """Joined, a sentence's pieces are its Moses tokens, each followed by ``</w>`` (subword-nmt's convention:
    a word's last piece ends in ``</w>``, and no other piece does)."""
    for lang, texts in (("en", EN), ("de", DE)):
        moses = MosesTokenizer(lang=lang)
        for text in texts[:6]:
            words = moses.tokenize(text.lower(), escape=False)
            assert "".join(pieces(joint[lang], text)) == "".join(w + "</w>" for w in words)
            assert sum(p.endswith("</w>") for p in pieces(joint[lang], text)) == len(words)
    # each side follows its own language's rules: German knows "ca." (circa) before a number, English does not
    assert "".join(pieces(joint["de"], "ca. 5")) == "ca.</w>5</w>"
    assert "".join(pieces(joint["en"], "ca. 5")) == "ca</w>.</w>5</w>"


def test_decoding_undoes_the_moses_split(joint: dict[str, MosesBPETokenizer]) -> None:
    for lang, texts in (("en", EN), ("de", DE)):
        detok, moses = MosesDetokenizer(lang=lang), MosesTokenizer(lang=lang)
        for text in texts[:6]:
            expected = detok.detokenize(moses.tokenize(text.lower(), escape=False))
            assert joint[lang].decode(joint[lang].encode(text)) == expected == text.lower()


def test_unseen_characters_are_unknown_and_both_sides_share_one_vocabulary(joint) -> None:
    en, de = joint["en"], joint["de"]
    assert en.encode("ж") == [UNK_ID]
    assert en.vocab_size == de.vocab_size and all(en.token(i) == de.token(i) for i in range(en.vocab_size))
    assert (en.lang, de.lang, en.kind) == ("en", "de", "lowercase-moses-bpe")
    assert [en.token(i) for i in range(4)] == SPECIAL_TOKENS
    assert en.encode("TWO Men") == en.encode("two men")  # lowercased first


def test_save_and_load_keep_the_language_and_the_ids(joint, tmp_path: Path) -> None:
    joint["de"].save(tmp_path / "de")
    loaded = load_tokenizer(tmp_path / "de")
    assert isinstance(loaded, MosesBPETokenizer) and loaded.lang == "de" and loaded.lowercase
    assert all(loaded.encode(t) == joint["de"].encode(t) for t in DE[:6])
    assert vocabulary_fingerprint(loaded) == vocabulary_fingerprint(joint["de"])
    assert vocabulary_fingerprint(joint["en"]) != vocabulary_fingerprint(joint["de"])  # same ids, other rules
    (tmp_path / "de" / "qkv_tokenizer.json").write_text('{"kind": "lowercase-moses-bpe"}')
    with pytest.raises(UserError, match="needs its Moses 'lang'"):
        load_tokenizer(tmp_path / "de")


def test_an_unknown_piece_stays_a_word_of_its_own(joint: dict[str, MosesBPETokenizer]) -> None:
    """An unseen character is ``<unk>``, which lacks the ``</w>`` that ends a word: decoding keeps it apart
    from the next word instead of gluing the two together."""
    en = joint["en"]
    ids = en.encode("two ж men")
    assert UNK_ID in ids and en.decode(ids) == "two <unk> men"


def test_a_text_without_pairs_to_merge_trains_an_alphabet() -> None:
    """Single-character words leave subword-nmt nothing to merge (its learn_bpe then fails): the vocabulary
    is the specials and the alphabet."""
    tok = train_tokenizer("moses-bpe", ["a b", "c"], 100)
    assert [tok.token(i) for i in range(tok.vocab_size)] == SPECIAL_TOKENS + ["a</w>", "b</w>", "c</w>"]
    assert tok.decode(tok.encode("c a")) == "c a"


def test_cased_kind_keeps_case() -> None:
    tok = train_tokenizer("moses-bpe", DE, 150, lang="de")
    assert tok.kind == "moses-bpe" and tok.decode(tok.encode(DE[0])) == DE[0]


def test_translation_task_splits_each_side_by_its_language(tmp_path: Path) -> None:
    root = tmp_path / "multi30k"
    root.mkdir()
    for split in ("train", "val", "test_2016_flickr"):
        for lang, lines in (("en", EN), ("de", DE)):
            with gzip.open(root / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
    task = get_task(
        "translation",
        data_dir=str(tmp_path),
        src_lang="en",
        tgt_lang="de",
        tokenizer="lowercase-moses-bpe",
        vocab_size=200,
        shared_vocab=True,
    )
    assert task.lowercase and task.examples("test")[0].tgt == DE[0].lower()
    src_tok, tgt_tok = task.build_tokenizers(task.examples("train"))
    assert (src_tok.lang, tgt_tok.lang) == ("en", "de")
    assert all(src_tok.token(i) == tgt_tok.token(i) for i in range(src_tok.vocab_size))
    own = get_task("translation", data_dir=str(tmp_path), tokenizer="moses-bpe", vocab_size=150)
    de_tok, en_tok = own.build_tokenizers(own.examples("train"))  # default de -> en, a vocabulary each
    assert (de_tok.lang, en_tok.lang, de_tok.kind) == ("de", "en", "moses-bpe")
    assert de_tok.decode(de_tok.encode(DE[1])) == DE[1]


def test_a_run_trains_saves_and_reopens_its_moses_tokenizers(tmp_path: Path) -> None:
    from qkv.cli import main
    from qkv.training.run import load_run

    test_translation_task_splits_each_side_by_its_language(tmp_path)  # writes the tiny Multi30k files
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "task: {name: translation, options: {src_lang: en, tgt_lang: de, tokenizer: lowercase-moses-bpe,\n"
        f"  vocab_size: 200, shared_vocab: true, data_dir: {str(tmp_path)!r}}}}}\n"
        "model: {name: transformer, d_model: 16, n_heads: 2, d_ff: 32, n_encoder_layers: 1, n_decoder_layers: 1,\n"
        "  share_embeddings: true, tie_embeddings: true}\n"
        "training: {max_steps: 4, max_tokens: 256, log_every: 1}\n"
        "eval: {every: 4, max_examples: 4, max_len: 8, samples: 0}\n"
    )
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    run = load_run(tmp_path / "run")
    assert isinstance(run.src_tok, MosesBPETokenizer) and (run.src_tok.lang, run.tgt_tok.lang) == ("en", "de")
    assert run.tgt_tok.encode(DE[0]) == train_moses_bpe({"en": EN, "de": DE}, 200, lowercase=True)["de"].encode(DE[0])


def test_the_pieces_are_subword_nmts_own(tmp_path: Path) -> None:
    """The merges, applied by Hugging Face, split every word as subword-nmt's ``apply_bpe`` does with them
    (its ``@@`` marks a piece that does not end a word; ours mark the piece that does, with ``</w>``)."""
    import io

    from subword_nmt.apply_bpe import BPE
    from subword_nmt.learn_bpe import learn_bpe

    tok = train_moses_bpe({"de": DE}, 180, lowercase=True)["de"]
    moses = MosesTokenizer(lang="de")
    lines = [moses.tokenize(t.lower(), return_str=True, escape=False) for t in DE]
    codes = io.StringIO()
    learn_bpe(lines, codes, 180 - 4 - len({t for t in tok.hf.get_vocab() if len(t.removesuffix("</w>")) == 1}))
    codes.seek(0)
    reference = BPE(codes)
    for text, line in zip(DE[:6] + ["Ein kleiner Hund spielt im Freien."], lines[:6] + [None], strict=True):
        line = line or moses.tokenize(text.lower(), return_str=True, escape=False)
        ours = " ".join(
            tok.token(i).removesuffix("</w>") + ("" if tok.token(i).endswith("</w>") else "@@")
            for i in tok.encode(text)
        )
        assert ours == reference.process_line(line)

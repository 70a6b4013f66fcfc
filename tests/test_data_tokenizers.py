"""Tokenizers: round trips (hypothesis), special ids, hand-worked encodings, save/load."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qkv.data.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    LowercaseBPETokenizer,
    LowercaseWordTokenizer,
    PretrainedTokenizer,
    WordTokenizer,
    coverage,
    describe,
    load_tokenizer,
    train_tokenizer,
)
from qkv.errors import UserError
from qkv.special import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

CORPUS = ["Ein Hund läuft über die Wiese.", "Zwei Männer spielen Fußball 😀", "a\tb\nc  d", "naïve café"]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(CORPUS * 20, vocab_size=400)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_char_round_trip(text):
    tok = CharTokenizer.train([text])
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200).filter(lambda t: not any(s in t for s in SPECIAL_TOKENS)))
def test_byte_level_bpe_round_trip_on_unseen_text(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids) and UNK_ID not in ids
    assert bpe.decode(ids) == text


def test_special_ids_and_decode_skips_them(bpe):
    for tok in (CharTokenizer.train(CORPUS), WordTokenizer.train(CORPUS), _lowercase_words(), bpe):
        assert [tok.token(i) for i in range(4)] == ["<pad>", "<bos>", "<eos>", "<unk>"]
        ids = tok.encode("Hund")
        assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == tok.decode(ids)


def test_char_tokenizer_hand_worked():
    tok = CharTokenizer.train(["abca", "cb"])
    assert tok.tokens == SPECIAL_TOKENS + ["a", "b", "c"]
    assert tok.encode("cab") == [6, 4, 5]
    assert tok.encode("axb") == [4, UNK_ID, 5]
    assert tok.decode([4, UNK_ID, 5]) == "a<unk>b"


def test_word_tokenizer_frequency_order_newlines_and_unk():
    tok = WordTokenizer.train(["b a a\n", "c a b\n"], max_size=7)
    # a (3), \n (2), b (2), c (1): frequency, then alphabetical ("\n" < "b"); max_size keeps 3 words
    assert tok.tokens == SPECIAL_TOKENS + ["a", "\n", "b"]
    assert tok.encode("a c <unk> b\nb") == [4, UNK_ID, UNK_ID, 6, 5, 6]
    assert tok.decode(tok.encode("a b\nb a\n")) == "a b\nb a\n"


def _lowercase_words() -> LowercaseWordTokenizer:
    return LowercaseWordTokenizer.train(CORPUS, min_frequency=1)


def test_lowercase_word_tokenizer_hand_worked():
    # "re" 3, ":" 2, "budget" 2, "q3" 1 ("Re" and "RE" are one word); min_frequency 2 drops "q3"
    tok = train_tokenizer("lowercase-word", ["Re: Q3 budget", "RE: budget re"], 100)
    assert tok.kind == "lowercase-word"
    assert [tok.token(i) for i in range(4, tok.vocab_size)] == ["re", ":", "budget"]
    assert tok.encode("Budget, re: Q3!") == [6, UNK_ID, 4, 5, UNK_ID, UNK_ID]  # "," "q3" "!" unseen
    assert tok.decode([BOS_ID, 4, 5, 6, EOS_ID, PAD_ID]) == "re : budget"
    assert tok.decode([4, UNK_ID]) == "re <unk>"  # an unknown word stays visible


def test_lowercase_words_leave_rouge_unchanged():
    """ROUGE (rouge-score: lowercased, split at non-alphanumerics, Porter-stemmed) of a decoded hypothesis
    equals ROUGE of the raw text it came from, whenever no word became <unk>."""
    from rouge_score import rouge_scorer

    texts = ["Re: Q3 Budget-Review (draft #2)", "FW: Meeting 10/30/01 at 9:00am", "Can't attend -- John's call!"]
    tok = LowercaseWordTokenizer.train(texts, min_frequency=1)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    reference = "q3 budget review meeting for John"
    for text in texts:
        decoded = tok.decode(tok.encode(text))
        assert decoded != text and UNK_ID not in tok.encode(text)
        assert scorer.score(reference, decoded) == scorer.score(reference, text)


def test_save_load_round_trip(tmp_path, bpe):
    for i, tok in enumerate([CharTokenizer.train(CORPUS), WordTokenizer.train(CORPUS), _lowercase_words(), bpe]):
        tok.save(tmp_path / str(i))
        back = load_tokenizer(tmp_path / str(i))
        assert type(back) is type(tok) and back.vocab_size == tok.vocab_size
        for text in CORPUS:
            assert back.encode(text) == tok.encode(text)
    with pytest.raises(UserError, match="no tokenizer saved"):
        load_tokenizer(tmp_path / "nothing")


def test_lowercase_bpe_reads_any_case_as_lowercase_and_is_saved_so(tmp_path):
    """``lowercase-bpe`` = the same byte-level BPE trained on the lowercased corpus, behind a Lowercase
    normalizer: "Ein Hund" and "ein hund" are one token sequence, equal to plain BPE's on the lowercased text,
    decoding gives lowercase text back, the special tokens still match, and a saved one lowercases too."""
    tok = train_tokenizer("lowercase-bpe", CORPUS * 20, 400)
    assert isinstance(tok, LowercaseBPETokenizer) and tok.kind == "lowercase-bpe"
    plain = BPETokenizer.train([t.lower() for t in CORPUS * 20], vocab_size=400)
    for text in CORPUS + ["ZWEI MÄNNER", "Naïve CAFÉ"]:
        assert tok.encode(text) == tok.encode(text.lower()) == plain.encode(text.lower())
        assert tok.decode(tok.encode(text)) == text.lower()
    assert tok.encode("Hund<eos>") == tok.encode("hund") + [EOS_ID]
    tok.save(tmp_path)
    back = load_tokenizer(tmp_path)
    assert type(back) is LowercaseBPETokenizer and back.encode("EIN HUND") == tok.encode("ein hund")


def test_bpe_matches_hugging_face_and_learns_merges(bpe):
    text = "Ein Hund läuft"
    assert bpe.encode(text) == bpe.hf.encode(text).ids
    assert len(bpe.encode(text)) < len(text.encode("utf-8"))  # merges shorten the byte sequence
    assert bpe.encode_batch(CORPUS) == [bpe.encode(t) for t in CORPUS]


def test_coverage_and_train_tokenizer():
    tok = train_tokenizer("word", ["a b c"])
    assert coverage(tok, ["a b x y"]) == pytest.approx(0.5)
    assert coverage(train_tokenizer("bpe", CORPUS, 300), ["völlig neu ✓"]) == 1.0
    with pytest.raises(UserError, match="unknown tokenizer 'sentencepiece'"):
        train_tokenizer("sentencepiece", CORPUS)


def test_describe_reports_kind_size_and_coverage():
    tok = train_tokenizer("char", ["abc"])
    assert describe(tok, ["abcd"]) == {"kind": "char", "vocab_size": 7, "coverage": 0.75}


def test_token_outside_the_vocabulary_raises_index_error_for_every_kind(tmp_path, bpe):
    bpe.save(tmp_path)
    pretrained = PretrainedTokenizer.from_file(tmp_path / "tokenizer.json")  # the same file, read as a checkpoint's
    for tok in (CharTokenizer.train(CORPUS), WordTokenizer.train(CORPUS), _lowercase_words(), bpe, pretrained):
        last = tok.vocab_size - 1
        expected = tok.hf.id_to_token(last) if hasattr(tok, "hf") else tok.tokens[last]
        assert tok.token(last) == expected
        for bad in (tok.vocab_size, -1):
            with pytest.raises(IndexError, match=rf"token id {bad} is outside the vocabulary \(ids 0 to {last}\)"):
                tok.token(bad)


def test_reading_a_tokenizer_does_not_import_the_checkpoint_loaders():
    code = (
        "import sys, qkv.data.tokenizers, qkv.data.hf_tokenizers; "
        "print(sorted(m for m in sys.modules if m == 'qkv.pretrained' or m.startswith('qkv.pretrained.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""The models qkv ships (qkv.assets): they load with their files verified, translate and transcribe
sensibly, and the commands open them when given no RUN."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import torch

from qkv.assets import SHIPPED, load_shipped, shipped, verify
from qkv.assets.pack import WEIGHTS, dequantize, quantize
from qkv.data.metrics import bleu, edit_distance
from qkv.errors import UserError
from qkv.training.generate import generate_texts

# Multi30k validation sentences (val.de / val.en lines 20-29) with their reference translations
MULTI30K_VAL = [
    ("Drei Männer gehen auf einer Straße in den Bergen.", "Three men are walking on a road in the mountains."),
    ("Ein süßes Baby lächelt einem anderen Kind zu.", "A cute baby is smiling at another child."),
    (
        "Zwei Hunde spielen im hohen Gras mit einem orangen Spielzeug.",
        "Two dogs play with an orange toy in tall grass.",
    ),
    (
        "Ein asiatisches Mädchen mit grünem Hut und Schürze serviert Getränke auf einem Tablett.",
        "An Asian girl in a green hat and apron is serving drinks on a tray.",
    ),
    (
        "Eine Person beim Parasailing über einem großen Gewässer.",
        "A person is parasailing over a large body of water.",
    ),
    (
        "Ein einzelner Mann in einem schwarzen T-Shirt überragt die anderen Menschen in einer gut besuchten Bar.",
        "A single man in a black t-shirt standing above the crowd at a busy bar.",
    ),
]
# CMUdict pronunciations (ARPAbet without stress), the G2P task's references
CMUDICT = {
    "attention": "AH T EH N SH AH N",
    "query": "K W IH R IY",
    "value": "V AE L Y UW",
    "water": "W AO T ER",
    "model": "M AA D AH L",
    "window": "W IH N D OW",
    "garden": "G AA R D AH N",
    "station": "S T EY SH AH N",
}


@pytest.fixture(scope="module")
def translator():
    return load_shipped("multi30k-de-en")


def test_every_shipped_model_is_small_and_verified():
    total = 0
    for name, model in SHIPPED.items():
        verify(model.directory)  # every file against manifest.json
        assert (model.directory / "TRAINED.md").read_text().count("command:") == 1, name
        total += sum(p.stat().st_size for p in model.directory.rglob("*") if p.is_file())
    assert total < 20 * 2**20  # what the repository and the wheel carry


def test_default_model_translates_validation_sentences(translator):
    hyps = generate_texts(translator, [de for de, _ in MULTI30K_VAL], max_len=60)
    score = bleu(hyps, [[en] for _, en in MULTI30K_VAL]).value
    assert score >= 25, (score, hyps)  # the model's BLEU on the whole validation set is ~36
    assert translator.model.kind == "seq2seq"
    assert all(p.dtype == torch.float32 for p in translator.model.parameters())


def test_g2p_model_transcribes_dictionary_words():
    run = load_shipped("g2p-cmudict")
    words = list(CMUDICT)
    hyps = generate_texts(run, words, max_len=30)
    edits = sum(edit_distance(h.split(), CMUDICT[w].split()) for h, w in zip(hyps, words, strict=True))
    phonemes = sum(len(CMUDICT[w].split()) for w in words)
    assert edits / phonemes <= 0.15, hyps  # phoneme error rate (the model's test PER is 7.2%)
    assert hyps[0] == CMUDICT["attention"]


def test_int8_storage_is_within_half_a_step_of_the_weights():
    torch.manual_seed(0)
    weights = {"w": torch.randn(5, 7) * torch.arange(1, 6)[:, None], "b": torch.randn(7), "ids": torch.arange(3)}
    stored = quantize(weights, "int8")
    assert stored["w"].dtype == torch.int8 and stored["b"].dtype == torch.float32
    back = dequantize(stored)
    step = weights["w"].abs().amax(dim=1, keepdim=True) / 127  # one scale per row
    assert torch.all((back["w"] - weights["w"]).abs() <= step / 2 + 1e-7)
    assert torch.equal(back["b"], weights["b"]) and torch.equal(back["ids"], weights["ids"])
    assert set(back) == set(weights)
    half = dequantize(quantize(weights, "float16"))
    torch.testing.assert_close(half["w"], weights["w"].half().float(), rtol=0, atol=0)


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    model = SHIPPED["g2p-cmudict"]
    copy = tmp_path / model.name
    shutil.copytree(model.directory, copy)
    data = bytearray((copy / WEIGHTS).read_bytes())
    data[-10] ^= 0xFF  # one flipped byte inside a tensor
    (copy / WEIGHTS).write_bytes(bytes(data))
    monkeypatch.setitem(SHIPPED, model.name, type(model)(model.name, copy, model.task, model.example, model.about))
    with pytest.raises(UserError, match="sha256 differs"):
        shipped(model.name)
    with pytest.raises(UserError, match="no such shipped model"):
        shipped("nope")


def test_explain_with_no_run_uses_the_shipped_translator(capsys):
    from qkv.cli import main

    assert main(["explain", "--kind", "cross", "--layer", "2", "--token", "2", "--html", ""]) == 0
    out = capsys.readouterr().out
    assert "multi30k-de-en (shipped with qkv)" in out and "checked against the forward pass" in out
    assert "output (greedy): A brown dog" in out
    assert main(["explain", "g2p-cmudict", "Two words", "--html", ""]) == 2
    assert "one word at a time" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_with_no_run_starts():
    proc = subprocess.Popen(
        [sys.executable, "-m", "qkv", "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert "qkv explorer for multi30k-de-en" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = next(w for w in line.split() if w.startswith("http://"))
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            info = json.loads(r.read())
        assert info["task"] == "translation" and info["example"] == SHIPPED["multi30k-de-en"].example
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_packages_data_lists_the_models():
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert "assets/models/*/*/*" in text


def test_g2p_explorer_reads_one_lowercased_word():
    from qkv.viz.inspector import Inspector
    from qkv.viz.server import Explorer

    explorer = Explorer(Inspector.from_shipped("g2p-cmudict"))
    info = explorer.info()
    assert info["task"] == "g2p" and info["example"] == "attention" and info["shipped"]
    a = explorer.analyze({"text": "  Attention "})
    assert a["text"] == "attention" and a["output"] == CMUDICT["attention"]
    assert a["labels"]["encoder_self"]["query"] == [*"attention", "<eos>"]  # letters, no <unk>
    for text, message in (("the cat sat", "one word at a time"), ("x2", "never saw ('2')")):
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            explorer.analyze({"text": text})

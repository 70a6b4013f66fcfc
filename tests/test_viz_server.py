"""The explorer's JSON API over real HTTP: analysis, walkthrough, limits, errors, static export."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from qkv.viz.server import MAX_BODY, Explorer, export, make_server
from test_viz_standin import tiny_inspector


@pytest.fixture(scope="module")
def server():
    explorer = Explorer(tiny_inspector(n_heads=2))
    srv = make_server(explorer, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv
    srv.shutdown()
    srv.server_close()


def call(url: str, body: bytes | dict | None = None) -> tuple[int, dict | str]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw, status, ctype = r.read(), r.status, r.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        raw, status, ctype = err.read(), err.code, err.headers["Content-Type"]
    return status, json.loads(raw) if ctype.startswith("application/json") else raw.decode()


def test_binds_to_localhost_by_default(server):
    _, srv = server
    assert srv.server_address[0] == "127.0.0.1"


def test_page_and_info(server):
    url, _ = server
    with urllib.request.urlopen(url + "/app.js", timeout=30) as r:
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert "innerHTML" not in r.read().decode().split("\n", 3)[3]  # only the header comment mentions it
    status, page = call(url + "/")
    assert status == 200 and '<script src="app.js"' in page and "http" not in page.split("<body>")[1]
    status, info = call(url + "/api/info")
    assert status == 200 and info["kind"] == "seq2seq" and info["max_chars"] > 0


def test_analyze_and_explain_agree(server):
    url, _ = server
    status, a = call(url + "/api/analyze", {"text": "the cat sat", "search": "greedy"})
    assert status == 200
    assert a["labels"]["encoder_self"]["query"] == ["the", "cat", "sat", "<eos>"]
    assert a["labels"]["cross"]["query"][0] == "<bos>"
    enc = np.array(a["attentions"]["encoder_self"][1])  # (H, T, T)
    assert enc.shape == (2, 4, 4)
    np.testing.assert_allclose(enc.sum(-1), 1.0, atol=1e-3)
    status, w = call(
        url + "/api/explain", {"text": "the cat sat", "kind": "encoder_self", "layer": 1, "head": 1, "token": 2}
    )
    assert status == 200, w
    np.testing.assert_allclose(w["weights"], enc[1, 2], atol=2e-4)
    assert w["query_token"] == "sat" and w["d_k"] == 16 and w["max_abs_error"] < 1e-4


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        ({"text": 3}, 400, '"text"'),
        ({"text": "cat " * 1500}, 400, "the limit is"),
        ({"text": "the cat", "kind": "encoder_self", "layer": 9, "head": 0, "token": 0}, 400, "out of range"),
    ],
)
def test_bad_requests_get_a_clear_message(server, body, status, message):
    url, _ = server
    path = "/api/explain" if isinstance(body, dict) and "kind" in body else "/api/analyze"
    got, data = call(url + path, body)
    assert got == status and message in data["error"]


def test_oversized_body_is_413(server):
    url, _ = server
    status, data = call(url + "/api/analyze", json.dumps({"text": "a" * (MAX_BODY + 10)}).encode())
    assert status == 413 and "too large" in data["error"]


def test_unknown_path_is_404(server):
    url, _ = server
    assert call(url + "/etc/passwd")[0] == 404
    assert call(url + "/../setup.py")[0] == 404


def test_static_export(tmp_path):
    explorer = Explorer(tiny_inspector(n_heads=2, n_encoder_layers=1, n_decoder_layers=1))
    out = export(explorer, ["the cat", "a dog </script><script>x()</script>"], tmp_path / "site")
    names = {p.name for p in out.iterdir()}
    assert names == {"index.html", "app.js", "style.css", "data.js"}
    script = (out / "data.js").read_text()
    assert "</script>" not in script  # the data cannot close the script element
    data = json.loads(script.removeprefix("window.QKV_STATIC = ").rstrip().rstrip(";"))
    first = data["entries"][0]
    t_s = len(first["analysis"]["labels"]["encoder_self"]["query"])
    assert len([k for k in first["walkthroughs"] if k.startswith("encoder_self/")]) == 1 * 2 * t_s
    assert '<script src="data.js"></script>' in (out / "index.html").read_text()


def test_static_export_cuts_vectors_not_the_per_key_scores_and_weights(tmp_path):
    """``dims`` shortens each vector of a walkthrough; the scores and weights (one per key token) stay whole, so a
    text longer than ``dims`` tokens still has every key's weight (they were once cut too: NaN rows on the page)."""
    text = "the cat sat on the mat " * 3  # 18 words + <eos> = 19 source tokens, more than dims
    transformer = tiny_inspector(n_heads=2, n_encoder_layers=1, n_decoder_layers=1)
    for inspector in (transformer, tiny_inspector("gru-attention", hidden_size=24, n_rnn_layers=1)):
        explorer = Explorer(inspector)
        out = export(explorer, [text], tmp_path / inspector.name, dims=4)
        data = json.loads((out / "data.js").read_text().removeprefix("window.QKV_STATIC = ").rstrip().rstrip(";"))
        walks = data["entries"][0]["walkthroughs"]
        kind = "encoder_self" if any(k.startswith("encoder_self/") for k in walks) else "cross"
        key = next(k for k in walks if k.startswith(kind + "/"))
        walk = walks[key]
        _, layer, head, token = key.split("/")
        fields = {"kind": kind, "layer": int(layer), "head": int(head), "token": int(token)}
        whole = explorer.explain({"text": text, **fields})
        assert len(walk["key_tokens"]) >= 19
        for name in ("dots", "weights") + (("scaled",) if "scaled" in walk else ()):
            assert walk[name] == whole[name]  # every key, the same rounded numbers as the server's
        assert sum(walk["weights"]) == pytest.approx(1.0, abs=1e-4)
        assert all(len(row) == 4 for row in walk["keys"]) and len(walk["keys"]) == len(walk["key_tokens"])
        # and every cut vector's full size goes with it, for the page's "first 4 of N numbers"
        if "family" in walk:  # the GRU + attention: its query (the decoder state) and its values (encoder states)
            assert (len(walk["query"]), walk["query_size"]) == (4, len(whole["query"])) and walk["query_size"] > 4
            assert walk["value_size"] == len(whole["values"][0]) > 4
        else:  # the Transformer's data flow around the attention
            for stage, full in zip(walk["flow"]["stages"], whole["flow"]["stages"], strict=True):
                assert len(stage["vector"]) == 4 and stage["vector_size"] == len(full["vector"]) > 4

"""The explorer's views in a real browser (Playwright + Debian's chromium): the layers x heads grid, the
head view, the value side (its sum is the head output), q ∘ k_j by dimension, the recurrent walkthrough on a
GRU-attention model, and the language-model mode (probabilities that sum to 1)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from qkv.viz.server import Explorer, export, make_server
from test_explorer_browser import ARGS, CHROMIUM, pytestmark  # noqa: F401  (the browser marks and skips)
from test_viz_standin import tiny_inspector


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright.sync_api", reason="playwright (Python package) is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def serve(inspector):
    explorer = Explorer(inspector)
    srv = make_server(explorer, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/", explorer


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


def numbers(page, selector: str) -> list[list[float]]:
    """The full vectors behind the elements matching ``selector`` (each .vec keeps them in data-values)."""
    values = page.eval_on_selector_all(selector + " .vec", "els => els.map(e => e.dataset.values)")
    return [[float(x) for x in v.split(",")] for v in values]


def test_grid_head_view_value_side_and_neurons(browser):
    ins = tiny_inspector(n_heads=2, n_encoder_layers=2, n_decoder_layers=3)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        # rendered on load, with the model's example text: no click needed
        page.wait_for_selector("table.grid svg.mini")
        example = page.input_value("#text")
        assert example == ins.example
        analysis = explorer.analyze({"text": example})
        for kind in analysis["kinds"]:
            page.select_option("#kind", kind)
            layers = analysis["attentions"][kind]
            page.wait_for_function(f"document.querySelector('table.grid').dataset.layers === '{len(layers)}'")
            assert page.locator("table.grid svg.mini").count() == len(layers) * len(layers[0])
            assert page.locator("table.grid th").all_text_contents()[1:3] == ["head 0", "head 1"]
        # a click on a map opens that layer and head
        page.click("table.grid svg.mini[data-layer='2'][data-head='1']")
        assert page.input_value("#layer") == "2" and page.input_value("#head") == "1"
        assert page.locator("svg.heatmap text.axis-title").all_text_contents() == [
            "source token (key)",
            "target token (query)",
        ]
        assert page.locator("#figure .legend svg.colourbar").count() == 1

        # head view: one colour per head of the layer
        page.select_option("#view", "heads")
        page.wait_for_selector("svg.head-lines")
        assert page.locator(".head-key input[type=checkbox]").count() == 2
        heads_drawn = page.eval_on_selector_all(
            "svg.head-lines line", "ls => new Set(ls.map(l => l.dataset.head)).size"
        )
        assert heads_drawn == 2
        page.select_option("#view", "heatmap")

        # the walkthrough of query token 2 in cross layer 2 head 1
        page.click("#tokens button.token >> nth=2")
        page.wait_for_selector("#value-table")
        walk = explorer.explain({"text": example, "kind": "cross", "layer": 2, "head": 1, "token": 2})
        weighted = np.array(numbers(page, "#value-table tr.value-row td.weighted"))  # (T_k, D): w_j v_j as shown
        shown_output = np.array(numbers(page, "#value-table td.head-output")[0])
        assert weighted.shape == (len(walk["key_tokens"]), walk["d_k"])
        np.testing.assert_allclose(weighted.sum(0), shown_output, atol=1e-4)  # the rows add up to the head output
        np.testing.assert_allclose(shown_output, walk["head_output"], atol=1e-9)
        values = np.array(numbers(page, "#value-table tr.value-row td:nth-child(4)"))
        np.testing.assert_allclose(values * np.array(walk["weights"])[:, None], weighted, atol=1e-4)
        assert float(page.get_attribute(".value-check", "data-diff")) < 1e-4
        assert page.locator("ol.steps > li").count() == 7  # the same seven steps as `qkv explain`

        # q ∘ k_j: each row's sum is the score q·k_j of the table
        page.click("details summary")
        sums = [float(t) for t in page.locator("svg.neuron text.row-sum").all_text_contents()]
        np.testing.assert_allclose(sums, walk["dots"], atol=1e-3)
        assert page.locator("svg.neuron rect.prod").count() == len(walk["key_tokens"]) * walk["d_k"]

        # the layer's data flow: pre-norm residual sums, checked on the page and here from the model's vectors
        page.click("#flow summary")
        stages = walk["flow"]["stages"]
        assert [st.get("child") for st in stages][2:8] == [
            "self_attn_norm",
            "self_attn",
            "cross_attn_norm",
            "cross_attn",
            "ff_norm",
            "ff",
        ]
        diffs = [float(d) for d in page.eval_on_selector_all(".residual-check", "cs => cs.map(c => c.dataset.diff)")]
        assert len(diffs) == 3 and max(diffs) < 1e-4
        stream = np.array(stages[1]["vector"])  # the layer input
        for sub, after in ((3, stages[4]["input"]), (5, stages[6]["input"]), (7, stages[8]["vector"])):
            np.testing.assert_allclose(stream + np.array(stages[sub]["vector"]), after, atol=1e-4)
            stream = np.array(after)
        np.testing.assert_allclose(stages[4]["vector"], walk["x"], atol=1e-4)  # cross_attn_norm output = step 1 x

        # whole vectors on demand
        first = page.locator("ol.steps > li >> nth=0")
        assert "(32 numbers)" in first.text_content()
        first.locator("button.more").click()
        assert first.locator(".vec > span").first.text_content().count(",") == 31
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_static_export_labels_cut_vectors_with_their_size(browser, tmp_path):
    ins = tiny_inspector(n_heads=1, n_encoder_layers=1, n_decoder_layers=1)  # d_k = d_model = 32
    out = export(Explorer(ins), ["the cat"], tmp_path / "site", dims=16)
    page, errors = open_page(browser, (out / "index.html").as_uri())
    page.wait_for_selector("table.grid svg.mini")
    page.click("#tokens button.token >> nth=1")
    page.wait_for_selector("#value-table")
    query = page.locator("ol.steps > li >> nth=1").text_content()
    assert "(first 16 of 32 numbers)" in query and "(16 numbers)" not in query
    head_output = page.text_content("#value-table td.head-output")
    assert "(first 16 of 32 numbers)" in head_output  # the value side too
    page.click("details summary")  # q ∘ k_j: its row sums cover 16 of 32 dimensions, and say so
    assert "partial" in page.locator("svg.neuron text.axis-title").all_text_contents()[1]
    assert errors == []
    page.close()


def test_static_export_names_its_own_search(browser, tmp_path):
    ins = tiny_inspector(n_heads=1, n_encoder_layers=1, n_decoder_layers=1)
    out = export(Explorer(ins), ["the cat"], tmp_path / "site", search="beam")
    page, errors = open_page(browser, (out / "index.html").as_uri())
    page.wait_for_selector("table.grid svg.mini")
    assert page.input_value("#search") == "beam" and page.is_disabled("#search")
    assert errors == []
    page.close()


def test_static_export_of_a_language_model_has_no_next_token_controls(browser, tmp_path):
    """A static page has no server to ask for next-token probabilities: no temperature / top-k, and a click on a
    token shows its walkthrough without an error."""
    ins = tiny_inspector("gpt", n_decoder_layers=1, n_encoder_layers=0)
    out = export(Explorer(ins), ["the cat"], tmp_path / "site", dims=16)
    page, errors = open_page(browser, (out / "index.html").as_uri())
    page.wait_for_selector("table.grid svg.mini")
    assert page.is_hidden("#lm-controls")
    page.click("#tokens button.token >> nth=1")
    page.wait_for_selector("#value-table")
    assert page.text_content("#error") == "" and page.is_hidden("#next-panel")
    assert errors == []
    page.close()


def test_the_next_token_table_follows_the_click_before_the_walkthrough_comes(browser):
    """The next-token table of a clicked token is asked for beside its walkthrough, not after it: with the
    walkthrough held back, the table already shows the new position (before, it kept the previous token's table,
    and kept it for good if the walkthrough was superseded by a head change or failed). A next-token error then
    clears when the next request succeeds."""
    ins = tiny_inspector("gpt", n_decoder_layers=2, n_encoder_layers=0)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        analyze_lm_text(page, explorer, "the cat sat")
        page.click("#tokens button.token >> nth=1")
        page.wait_for_function("document.getElementById('next').textContent.includes('(position 1)')")
        held = []
        page.route("**/api/explain", lambda route: held.append(route))
        page.click("#tokens button.token >> nth=3")
        page.wait_for_function("document.getElementById('next').textContent.includes('(position 3)')")
        assert len(held) == 1  # the walkthrough is still on its way
        api = explorer.next_tokens({"text": "the cat sat", "position": 3, "temperature": 1.0, "top_k": 0})
        first_cells = "t => t.map(x => JSON.parse(x.textContent))"
        shown = page.eval_on_selector_all("#next-table td.tok:first-child", first_cells)
        assert len(shown) >= 3 and shown == api["tokens"][: len(shown)]  # the page shows the most likely ones
        held[0].continue_()
        page.wait_for_function("document.querySelector('.walk-title')?.textContent.includes('query token 3 ')")
        # a bad temperature: the server's message; a good one afterwards: the message goes
        page.fill("#temperature", "0")
        page.dispatch_event("#temperature", "change")
        page.wait_for_function("document.getElementById('error').textContent.includes('temperature')")
        page.fill("#temperature", "2")
        page.dispatch_event("#temperature", "change")
        page.wait_for_function("document.getElementById('next').textContent.includes('temperature 2')")
        assert page.text_content("#error") == ""
        errors = [e for e in errors if "400" not in e]  # the browser logs the refused request itself
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_recurrent_walkthrough_renders_on_a_gru_attention_model(browser):
    ins = tiny_inspector("gru-attention", hidden_size=24, n_rnn_layers=1)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        page.wait_for_selector("table.grid svg.mini")
        assert page.locator("table.grid svg.mini").count() == 1  # one layer, one head
        page.click("#tokens button.token >> nth=1")
        page.wait_for_selector("#walk-table")
        text = page.text_content("#walkthrough")
        assert "Bahdanau (additive) attention" in text and "internal error" not in page.text_content("#error")
        analysis = explorer.analyze({"text": ins.example})
        n_src = len(analysis["labels"]["cross"]["key"])
        assert page.locator("#walk-table tr").count() == 1 + n_src
        weighted = np.array(numbers(page, "#value-table tr.value-row td.weighted"))
        context = np.array(numbers(page, "#value-table td.head-output")[0])
        np.testing.assert_allclose(weighted.sum(0), context, atol=1e-4)
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def drawn_tokens_are(page, explorer: Explorer, text: str) -> None:
    """Wait until the page shows the tokens of ``text``'s analysis (the API's labels), not the previous text's."""
    labels = explorer.analyze({"text": text})["labels"]["decoder_self"]["query"]
    page.wait_for_function(
        "expected => JSON.stringify([...document.querySelectorAll('#tokens button.token')]"
        ".map(b => b.textContent)) === JSON.stringify(expected)",
        arg=labels,
    )


def shown_probabilities(page) -> list[float]:
    """The next-token probabilities of the table on the page, as it holds them (full precision in data-p)."""
    return [float(p) for p in page.eval_on_selector_all("#next-table td[data-p]", "t => t.map(x => x.dataset.p)")]


def analyze_lm_text(page, explorer: Explorer, text: str) -> None:
    """Wait for a language model's page, then analyze ``text`` and wait for its own tokens to be drawn.

    The page draws the model's example on load; waiting for "some tokens" would pass on the example's and let a
    token click race the new analysis (which then clears the selection): wait for this text's tokens."""
    page.wait_for_selector("table.grid svg.mini")
    assert page.is_visible("#lm-controls")
    page.fill("#text", text)
    page.click("#run")
    drawn_tokens_are(page, explorer, text)


def test_language_model_mode_probabilities_sum_to_one(browser):
    ins = tiny_inspector("gpt", n_decoder_layers=2, n_encoder_layers=0)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        analyze_lm_text(page, explorer, "the cat sat")
        page.fill("#top-k", "0")
        page.click("#tokens button.token >> nth=2")
        page.wait_for_selector("#next-table tr.next-row")
        probs = shown_probabilities(page)
        rest = page.text_content("#next").split("all other tokens together: ")
        total = sum(probs) + (float(rest[1]) if len(rest) > 1 else 0.0)
        assert total == pytest.approx(1.0, abs=1e-4)
        # top-k 3: three tokens, renormalised, and the page agrees with the API
        page.fill("#top-k", "3")
        page.dispatch_event("#top-k", "change")
        page.wait_for_function("document.querySelectorAll('#next-table tr.next-row').length === 3")
        probs = shown_probabilities(page)
        assert sum(probs) == pytest.approx(1.0, abs=1e-6)  # float32 softmax
        api = explorer.next_tokens({"text": "the cat sat", "position": 2, "temperature": 1.0, "top_k": 3})
        np.testing.assert_allclose(probs, api["probs"], atol=1e-12)
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_late_answer_to_an_older_question_does_not_overwrite_the_newer_one(browser):
    """Change top-k to "all", then to 3, with the "all" answer held back until the 3 answer is shown: the page
    keeps showing top-k 3 (the last thing asked for), not the stale full distribution that arrives last."""
    ins = tiny_inspector("gpt", n_decoder_layers=2, n_encoder_layers=0)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        analyze_lm_text(page, explorer, "the cat sat")
        page.fill("#top-k", "5")
        page.click("#tokens button.token >> nth=2")
        page.wait_for_function("document.querySelectorAll('#next-table tr.next-row').length === 5")
        held = []

        def hold_top_k_all(route):
            if route.request.post_data_json["top_k"] == 0:
                held.append(route)
            else:
                route.continue_()

        page.route("**/api/next", hold_top_k_all)
        page.fill("#top-k", "0")
        page.dispatch_event("#top-k", "change")
        for _ in range(100):  # the route handler runs while Playwright is waited on
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        page.fill("#top-k", "3")
        page.dispatch_event("#top-k", "change")
        page.wait_for_function("document.querySelectorAll('#next-table tr.next-row').length === 3")
        with page.expect_response(lambda r: r.url.endswith("/api/next")) as late:
            held[0].continue_()
        assert late.value.json()["top_k"] == 0  # the stale answer did arrive ...
        page.wait_for_timeout(300)  # ... and had time to be drawn, were it drawn
        assert page.locator("#next-table tr.next-row").count() == 3
        assert "top-k 3" in page.text_content("#next")
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_token_clicked_while_a_new_text_is_analyzed_asks_about_the_drawn_text(browser):
    """A click on a token while the next text's analysis is still on its way asks about the text whose tokens are
    on the page; once the new analysis is drawn, that answer is stale and is not shown (it would show a walkthrough
    and next-token table for a token that is no longer selected, and the top-k control would then do nothing)."""
    ins = tiny_inspector("gpt", n_decoder_layers=2, n_encoder_layers=0)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        page.wait_for_selector("table.grid svg.mini")
        drawn_tokens_are(page, explorer, ins.example)
        held: dict[str, list] = {"analyze": [], "explain": []}

        def hold(kind):
            return lambda route: held[kind].append(route)

        def wait_until_held(kind):
            for _ in range(250):  # the route handlers run while Playwright is waited on
                if held[kind]:
                    return held[kind][0]
                page.wait_for_timeout(20)
            raise AssertionError(f"no /api/{kind} request was made")

        page.route("**/api/analyze", hold("analyze"))
        page.route("**/api/explain", hold("explain"))
        page.fill("#text", "the mat")
        page.click("#run")
        analysis = wait_until_held("analyze")
        page.click("#tokens button.token >> nth=2")  # a token of the example, still on the page
        explain = wait_until_held("explain")
        assert explain.request.post_data_json["text"] == ins.example
        assert explain.request.post_data_json["token"] == 2
        analysis.continue_()
        drawn_tokens_are(page, explorer, "the mat")
        with page.expect_response(lambda r: r.url.endswith("/api/explain")) as late:
            explain.continue_()
        assert late.value.json()["token"] == 2  # the stale answer did arrive ...
        page.wait_for_timeout(300)  # ... and had time to be drawn, were it drawn
        assert page.is_hidden("#walk-panel") and page.is_hidden("#next-panel")
        assert page.locator("#tokens button.token.selected").count() == 0
        # and the page still works: a click on the new text's token, then top-k 3
        page.unroute("**/api/explain")
        page.fill("#top-k", "3")
        page.click("#tokens button.token >> nth=1")
        page.wait_for_function("document.querySelectorAll('#next-table tr.next-row').length === 3")
        probs = shown_probabilities(page)
        api = explorer.next_tokens({"text": "the mat", "position": 1, "temperature": 1.0, "top_k": 3})
        np.testing.assert_allclose(probs, api["probs"], atol=1e-12)
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_walkthrough_follows_the_chosen_layer_and_head_and_goes_with_the_kind(browser):
    """With a token selected, choosing another head (the menu) or another layer and head (a click on the grid)
    shows that head's walkthrough of the same token; choosing another attention kind deselects the token, since
    token i of the source is not token i of the target, and its walkthrough goes with it."""
    ins = tiny_inspector(n_heads=2, n_encoder_layers=2, n_decoder_layers=2)
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        page.wait_for_selector("table.grid svg.mini")
        example = ins.example
        page.select_option("#kind", "cross")
        page.select_option("#layer", "1")
        page.select_option("#head", "1")
        page.click("#tokens button.token >> nth=2")
        page.wait_for_function("document.querySelector('.walk-title')?.textContent.includes('layer 1 · head 1 ')")

        def shows(layer: int, head: int) -> None:
            page.wait_for_function(
                "t => document.querySelector('.walk-title')?.textContent.includes(t)",
                arg=f"cross attention · layer {layer} · head {head} of 2 · query token 2 ",
            )
            walk = explorer.explain({"text": example, "kind": "cross", "layer": layer, "head": head, "token": 2})
            shown = np.array(numbers(page, "#value-table td.head-output")[0])
            np.testing.assert_allclose(shown, walk["head_output"], atol=1e-9)
            assert page.locator("#tokens button.token.selected").all_text_contents() == [walk["query_token"]]

        page.select_option("#head", "0")
        shows(1, 0)
        page.click("table.grid svg.mini[data-layer='0'][data-head='1']")
        shows(0, 1)
        page.select_option("#kind", "encoder_self")
        assert page.is_hidden("#walk-panel")
        assert page.locator("#tokens button.token.selected").count() == 0
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_next_token_distribution_is_the_softmax_of_the_logits():
    import torch

    ins = tiny_inspector("gpt", n_decoder_layers=2, n_encoder_layers=0)
    explorer = Explorer(ins)
    r = explorer.next_tokens({"text": "the cat", "position": 1, "temperature": 0.5, "top_k": 0})
    analysis = ins.analyze("the cat")
    with torch.no_grad():
        logits = analysis.forward().logits[0, 1].double()
    expected = torch.softmax(logits / 0.5, dim=-1)
    top = torch.argsort(expected, descending=True)[: len(r["ids"])]
    assert r["ids"] == top.tolist()
    np.testing.assert_allclose(r["probs"], expected[top].numpy(), atol=1e-12)
    assert json.dumps(r)  # JSON-ready


def test_the_shipped_translator_renders_on_load(browser):
    from qkv.viz.inspector import Inspector

    ins = Inspector.from_shipped()
    srv, url, explorer = serve(ins)
    try:
        page, errors = open_page(browser, url)
        page.wait_for_selector("table.grid svg.mini")
        assert page.input_value("#text") == ins.example
        expected = explorer.analyze({"text": ins.example})
        assert page.text_content("#output-text") == expected["output"]
        page.select_option("#kind", "cross")
        page.wait_for_function("document.querySelector('table.grid').dataset.heads === '8'")
        assert page.locator("table.grid svg.mini").count() == 3 * 8  # 3 decoder layers x 8 heads
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()

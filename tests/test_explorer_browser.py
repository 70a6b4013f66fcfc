"""The explorer in a real browser: headless Chromium (Debian's package) driven by Playwright.

CI installs the browser with ``apt-get install -y chromium``; without /usr/bin/chromium the test is skipped.
"""

from __future__ import annotations

import os
import threading

import pytest

from qkv.viz.server import Explorer, make_server
from test_viz_standin import tiny_inspector

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# words of the test vocabulary, so that they reach the page as token labels (and may be generated as output)
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img/src=x/onerror="window.__pwned=2">'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def page_url():
    pytest.importorskip("playwright.sync_api", reason="playwright (Python package) is not installed")
    srv = make_server(Explorer(tiny_inspector(n_heads=2, extra_words=(SCRIPT, IMG))), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_type_look_click_and_no_script_runs(browser, page_url):
    # bypass_csp: the server's Content-Security-Policy would block inline scripts anyway; switching it off
    # proves the page itself never turns text into markup (and lets Playwright poll with predicates).
    page = browser.new_page(bypass_csp=True)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_url)
    page.wait_for_function("document.getElementById('model-name').textContent.includes('tiny')")

    # type a sentence: 6 words + <eos> = 7 source tokens
    page.fill("#text", "the cat sat on the mat")
    page.click("#run")
    page.wait_for_selector("svg.heatmap")
    page.select_option("#kind", "encoder_self")
    svg = page.locator("svg.heatmap")
    assert svg.get_attribute("data-rows") == "7" and svg.get_attribute("data-cols") == "7"
    assert page.locator("svg.heatmap rect.cell").count() == 49
    rows = page.eval_on_selector_all("svg.heatmap rect.cell", "els => new Set(els.map(e => e.dataset.row)).size")
    cols = page.eval_on_selector_all("svg.heatmap rect.cell", "els => new Set(els.map(e => e.dataset.col)).size")
    assert (rows, cols) == (7, 7)
    labels = page.locator("svg.heatmap text.row-label").all_text_contents()
    assert labels == ["the", "cat", "sat", "on", "the", "mat", "<eos>"]

    # cross-attention: rows = target tokens, columns = the 7 source tokens
    page.select_option("#kind", "cross")
    page.wait_for_function("document.querySelector('svg.heatmap').dataset.cols === '7'")

    # click a token -> its walkthrough
    page.select_option("#kind", "encoder_self")
    page.click("#tokens button.token >> nth=2")
    page.wait_for_selector("#walk-table")
    assert "query token 2" in page.text_content("#walkthrough")
    assert "“sat”" in page.text_content("#walkthrough")
    assert page.locator("#walk-table tr").count() == 1 + 7
    assert "Checked against the model's own forward pass" in page.text_content("#walkthrough")

    # lines view
    page.select_option("#view", "lines")
    page.wait_for_selector("svg.lines line")
    page.select_option("#view", "heatmap")

    # a text with <script> is shown as text and never runs
    page.fill("#text", f"the {SCRIPT} {IMG} cat")
    page.click("#run")
    page.wait_for_function("document.querySelectorAll('#tokens button.token').length === 5")
    assert page.locator("#tokens button.token").all_text_contents() == ["the", SCRIPT, IMG, "cat", "<eos>"]
    page.click("#tokens button.token >> nth=1")
    page.wait_for_function("document.getElementById('walkthrough').textContent.includes('query token 1')")
    assert SCRIPT in page.text_content("#walkthrough")  # shown as text
    assert SCRIPT in page.text_content("svg.heatmap")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#figure script, #tokens script, #walkthrough script, #output-text script").count() == 0
    assert page.locator("#figure img, #tokens img, #walkthrough img").count() == 0
    assert errors == []
    page.close()


def test_server_errors_are_shown_not_thrown(browser, page_url):
    page = browser.new_page(bypass_csp=True)
    page.goto(page_url)
    page.fill("#text", "   ")
    page.click("#run")
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert "empty" in page.text_content("#error")
    page.close()

"""A screenshot of the explorer, taken by a headless browser (for the docs)::

    python -m qkv.viz.screenshot docs/images/explorer_views.png [RUN] [--kind cross --layer 2 --head 0 --token 2]

Starts the explorer on RUN (default: the shipped translator) on a free port, opens it in Debian's chromium
through Playwright (both optional: ``pip install playwright``, ``apt-get install chromium``), shows its example
text, opens the chosen head, clicks the chosen query token and saves the page.
"""

from __future__ import annotations

import argparse
import threading

from qkv.errors import UserError

CHROMIUM = "/usr/bin/chromium"


def screenshot(out: str, run: str | None = None, *, kind: str = "cross", layer: int = 2, head: int = 0, token: int = 2):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError("the screenshot needs Playwright: pip install playwright") from None
    from qkv.viz.inspector import open_inspector
    from qkv.viz.server import Explorer, make_server

    srv = make_server(Explorer(open_inspector(run)), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"], headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/")
            page.wait_for_selector("table.grid svg.mini")
            page.select_option("#kind", kind)
            page.click(f"table.grid svg.mini[data-layer='{layer}'][data-head='{head}']")
            page.click(f"#tokens button.token >> nth={token}")
            page.wait_for_selector("#value-table")
            page.screenshot(path=out, full_page=True)
            browser.close()
        _shrink(out)
    finally:
        srv.shutdown()
        srv.server_close()


def _shrink(path: str) -> None:
    """256 colours are plenty for a page of text and flat colours (a third of the bytes)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256)
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="a screenshot of the qkv explorer")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("run", nargs="?", help="run directory or shipped model (default: the shipped translator)")
    parser.add_argument("--kind", default="cross", help="attention kind to open (default cross)")
    parser.add_argument("--layer", type=int, default=2, help="layer to open (default 2)")
    parser.add_argument("--head", type=int, default=0, help="head to open (default 0)")
    parser.add_argument("--token", type=int, default=2, help="query token to click (default 2)")
    args = parser.parse_args()
    screenshot(args.out, args.run, kind=args.kind, layer=args.layer, head=args.head, token=args.token)
    print(args.out)


if __name__ == "__main__":
    main()

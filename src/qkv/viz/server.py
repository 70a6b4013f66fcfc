"""The explorer: a local web page to type a text and look inside the model (``qkv serve``).

Standard library only (:class:`http.server.ThreadingHTTPServer`), bound to 127.0.0.1 unless told otherwise.
Static files come from ``qkv/web/`` (vanilla JavaScript, no CDN, no network); the JSON API is::

    GET  /api/info                                   -> model name and kind, input limits
    POST /api/analyze {"text", "search"}             -> tokens, output, attention of every layer and head
    POST /api/explain {"text", "search", "kind", "layer", "head", "token"}  -> the Q/K/V walkthrough

Request bodies over :data:`MAX_BODY` bytes get 413, malformed requests and texts over the limits 400, each
with ``{"error": "..."}``. :func:`export` writes the same page with precomputed JSON for static hosting.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from qkv.errors import UserError
from qkv.viz.inspector import Analysis, Inspector

MAX_BODY = 16 * 1024  # bytes of JSON a request may carry
STATIC = {"/": ("index.html", "text/html"), "/index.html": ("index.html", "text/html"),
          "/app.js": ("app.js", "text/javascript"), "/style.css": ("style.css", "text/css")}
SEARCHES = ("greedy", "beam")


class Explorer:
    """The API behind the page, independent of HTTP (so it can be tested and exported)."""

    def __init__(self, inspector: Inspector, cache_size: int = 8) -> None:
        self.inspector = inspector
        self.lock = threading.Lock()  # one forward pass at a time: the model is shared by the threads
        self.cache: OrderedDict[tuple[str, str], Analysis] = OrderedDict()
        self.cache_size = cache_size

    def info(self) -> dict:
        return self.inspector.describe()

    def _analysis(self, payload: dict) -> Analysis:
        text = payload.get("text")
        if not isinstance(text, str):
            raise UserError('the request needs a "text" string')
        search = payload.get("search", "greedy")
        if search not in SEARCHES:
            raise UserError(f'"search" must be one of {", ".join(SEARCHES)}')
        key = (text, search)
        if key not in self.cache:
            self.cache[key] = self.inspector.analyze(text, search)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        self.cache.move_to_end(key)
        return self.cache[key]

    def analyze(self, payload: dict) -> dict:
        with self.lock:
            return self._analysis(payload).to_dict()

    def explain(self, payload: dict, dims: int | None = 64) -> dict:
        fields = {}
        for name in ("layer", "head", "token"):
            value = payload.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise UserError(f'the request needs an integer "{name}"')
            fields[name] = value
        kind = payload.get("kind")
        if not isinstance(kind, str):
            raise UserError('the request needs a "kind" string (encoder_self, decoder_self or cross)')
        with self.lock:
            analysis = self._analysis(payload)
            return self.inspector.explain(analysis, kind, **fields).to_dict(dims=dims)


WEB_DIR = Path(__file__).resolve().parent.parent / "web"  # qkv/web: index.html, app.js, style.css


def _web_file(name: str) -> bytes:
    return (WEB_DIR / name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    explorer: Explorer  # set by make_server on a subclass
    server_version = "qkv-explorer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass  # quiet; errors reach the page as JSON

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        path = self.path.split("?", 1)[0]
        if path == "/api/info":
            self._json(200, self.explorer.info())
        elif path in STATIC:
            name, ctype = STATIC[path]
            self._send(200, _web_file(name), ctype)
        else:
            self._json(404, {"error": f"not found: {path}"})

    def do_POST(self) -> None:  # noqa: N802
        routes = {"/api/analyze": self.explorer.analyze, "/api/explain": self.explorer.explain}
        path = self.path.split("?", 1)[0]
        if path not in routes:
            self._json(404, {"error": f"not found: {path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self._json(400, {"error": "bad Content-Length"})
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"request too large: {length} bytes, the limit is {MAX_BODY}"})
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(payload, dict):
                raise UserError("the request body must be a JSON object")
            self._json(200, routes[path](payload))
        except json.JSONDecodeError as err:
            self._json(400, {"error": f"the request body is not valid JSON: {err.msg}"})
        except UserError as err:
            self._json(400, {"error": str(err)})


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for ``explorer`` (call ``serve_forever()``; ``port=0`` picks a free port)."""
    handler = type("ExplorerHandler", (Handler,), {"explorer": explorer})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def export(explorer: Explorer, texts: list[str], out_dir: str | Path, search: str = "greedy",
           dims: int = 16) -> Path:
    """Write a static copy of the explorer (no server needed) for ``texts``: the page, and ``data.js`` with
    every analysis and the walkthrough of every kind, layer, head and query token (vectors cut to ``dims``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for text in texts:
        payload = {"text": text, "search": search}
        analysis = explorer.analyze(payload)
        walks = {}
        for kind in analysis["kinds"]:
            for layer, weights in enumerate(analysis["attentions"][kind]):
                for head in range(len(weights)):
                    for token in range(len(weights[head])):
                        walk = explorer.explain({**payload, "kind": kind, "layer": layer, "head": head,
                                                 "token": token}, dims=dims)
                        walks[f"{kind}/{layer}/{head}/{token}"] = walk
        entries.append({"analysis": analysis, "walkthroughs": walks})
    data = {"info": explorer.info(), "entries": entries}
    script = "window.QKV_STATIC = " + json.dumps(data).replace("</", "<\\/") + ";\n"
    (out / "data.js").write_text(script, encoding="utf-8")
    for name in ("app.js", "style.css"):
        (out / name).write_bytes(_web_file(name))
    index = _web_file("index.html").decode().replace("<!--static-data-->", '<script src="data.js"></script>')
    (out / "index.html").write_text(index, encoding="utf-8")
    return out


__all__ = ["MAX_BODY", "Explorer", "export", "make_server"]

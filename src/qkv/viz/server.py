"""The explorer: a local web page to type a text and look inside the model (``qkv serve``).

:class:`Explorer` is the API, independent of HTTP. Its HTTP layer is Starlette on uvicorn (h11), bound to
127.0.0.1 unless told otherwise (IPv6 too: ``--host ::1``). Static files come from ``qkv/web/`` (vanilla
JavaScript, no CDN, no network); the JSON API is::

    GET  /api/info                                   -> model name and kind, input limits
    POST /api/analyze {"text", "search"}             -> tokens, output, attention of every layer and head
    POST /api/explain {"text", "search", "kind", "layer", "head", "token"}  -> the Q/K/V walkthrough
    POST /api/next {"text", "position", "temperature", "top_k"}  -> next-token probabilities (language models)

Every error is ``{"error": "..."}`` with its status, never a dropped connection:

- 413: a body over :data:`MAX_BODY` bytes, whether announced by ``Content-Length`` (refused before reading)
  or sent chunked (reading stops at the limit); 400: an invalid ``Content-Length`` (e.g. ``-1``: the
  connection is closed, nothing is read), a body that is not UTF-8, not JSON, nested too deeply, or not an
  object; 408: a body not complete within :data:`BODY_TIMEOUT` seconds;
- 503 (with ``Retry-After``): more than :data:`MAX_PENDING` model requests waiting, or more than
  :data:`MAX_CONNECTIONS` connections; the model runs in a small thread pool (one forward pass at a time);
- 421: a ``Host`` header that is not this server (DNS rebinding); 403: a cross-site POST (``Origin`` or
  ``Sec-Fetch-Site`` of another site, whatever its content type).

Every response carries :data:`SECURITY_HEADERS` (CSP, nosniff, Referrer-Policy, X-Frame-Options DENY).
Idle keep-alive connections close after :data:`KEEP_ALIVE` s, and a connection that has not sent a complete
request head within :data:`HEAD_TIMEOUT` s is closed. :func:`export` writes the same page with precomputed
JSON for static hosting.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import os
import signal
import socket
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h11
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn import Config, Server
from uvicorn.protocols.http.h11_impl import H11Protocol

from qkv.errors import UserError
from qkv.viz.inspector import Analysis, Inspector

MAX_BODY = 16 * 1024  # bytes of JSON a request may carry
BODY_TIMEOUT = 10.0  # seconds a request body may take to arrive, in all
HEAD_TIMEOUT = 10.0  # seconds from a connection's first byte (or its opening) to a complete request head
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
MAX_PENDING = 64  # model requests running or waiting; more get 503
MAX_CONNECTIONS = 1000  # open connections (and running requests); more get 503
BACKLOG = 2048  # listen backlog: connections the kernel queues before the server accepts them
LINGER = 2.0  # seconds a closing connection still reads (and drops) what the client sends
LINGER_BYTES = 16 * 1024 * 1024  # ... and at most this much
WORKERS = 2  # threads for model work (the Explorer's lock runs one forward pass at a time)
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
STATIC = {
    "/": ("index.html", "text/html"),
    "/index.html": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
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

    def next_tokens(self, payload: dict) -> dict:
        from qkv.viz.next_token import next_tokens

        position = payload.get("position")
        if not isinstance(position, int) or isinstance(position, bool):
            raise UserError('the request needs an integer "position"')
        temperature, top_k = payload.get("temperature", 1.0), payload.get("top_k", 0)
        with self.lock:
            return next_tokens(self.inspector, self._analysis(payload), position, temperature, top_k)

    def explain(self, payload: dict, dims: int | None = None) -> dict:
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
            walk = self.inspector.explain(analysis, kind, **fields).to_dict(dims=dims)
            if "family" not in walk:  # a Transformer: the layer's data flow around this attention
                flow = self.inspector.data_flow(analysis, kind, fields["layer"], fields["token"])
                if flow is not None and dims is not None:
                    for stage in flow["stages"]:
                        for key in ("vector", "input"):
                            if key in stage:
                                stage[key + "_size"] = len(stage[key])  # the page says "first 16 of 128"
                                stage[key] = stage[key][:dims]
                walk["flow"] = flow
            return walk


WEB_DIR = Path(__file__).resolve().parent.parent / "web"  # qkv/web: index.html, app.js, style.css
LOG = logging.getLogger("qkv.viz.server")


def _web_file(name: str) -> bytes:
    return (WEB_DIR / name).read_bytes()


def _json(status: int, obj: Any, *, close: bool = False, headers: dict[str, str] | None = None) -> Response:
    extra = dict(headers or {})
    if close:  # the request body was not read to its end: the connection cannot carry another request
        extra["Connection"] = "close"
    return Response(json.dumps(obj).encode(), status, headers=extra, media_type="application/json")


class _Refused(Exception):
    def __init__(self, status: int, message: str, close: bool = False, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.close, self.headers = status, close, headers

    def response(self) -> Response:
        return _json(self.status, {"error": str(self)}, close=self.close, headers=self.headers)


def _host_name(value: str) -> str | None:
    """The host of a ``Host`` header or URL authority (``name``, ``name:port``, ``[v6]:port``), lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        if "]" not in value:
            return None
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
        if (rest and not rest.startswith(":")) or not _is_ip(name):
            return None
    else:
        name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class _Guard:
    """ASGI middleware in front of the routes: the Host check (DNS rebinding) and the cross-site POST check."""

    def __init__(self, app: Any, host: str) -> None:
        self.app = app
        bound = host.strip("[]").lower().rstrip(".")
        self.allowed = {"localhost", "127.0.0.1", "::1", bound}
        # bound to every address: any IP literal is this machine (a rebinding attack needs a host *name*)
        self.any_ip = bound in ("", "0.0.0.0", "::")

    def host_ok(self, host: str | None) -> bool:
        if host is None:
            return False
        name = _host_name(host)
        return name is not None and (name in self.allowed or (self.any_ip and _is_ip(name)))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get("host")
            refusal = None
            if not self.host_ok(host):
                refusal = _Refused(
                    421,
                    f"this server does not answer for the host {host!r} (use "
                    "http://127.0.0.1:PORT/ or http://localhost:PORT/)",
                    close=True,
                )
            elif scope["method"] not in ("GET", "HEAD", "OPTIONS"):
                origin = headers.get("origin")
                site = headers.get("sec-fetch-site")
                if (origin is not None and origin.lower() != f"http://{(host or '').lower()}") or site not in (
                    None,
                    "same-origin",
                    "none",
                ):
                    refusal = _Refused(
                        403,
                        f"cross-site request refused (Origin {origin!r}): the explorer only answers its own page",
                        close=True,
                    )
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Api:
    """The routes: static files, /api/info, and the model calls (run in a bounded thread pool)."""

    def __init__(self, explorer: Explorer, *, body_timeout: float, max_pending: int, workers: int) -> None:
        self.explorer = explorer
        self.body_timeout = body_timeout
        self.max_pending = max_pending
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qkv-explorer")
        self.pending = 0  # touched only on the event loop

    async def static(self, request: Request) -> Response:
        name, ctype = STATIC[request.url.path]
        return Response(_web_file(name), media_type=f"{ctype}; charset=utf-8")

    async def info(self, request: Request) -> Response:
        return _json(200, self.explorer.info())

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")  # h11 has checked it is digits (else 400, closed)
        if length is not None and int(length) > MAX_BODY:
            raise _Refused(413, f"request too large: {int(length)} bytes, the limit is {MAX_BODY}", close=True)

        async def read() -> bytes:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:  # chunked, or more than announced: stop reading here
                    raise _Refused(
                        413, f"request too large: more than {MAX_BODY} bytes, the limit is {MAX_BODY}", close=True
                    )
            return bytes(body)

        try:
            return await asyncio.wait_for(read(), self.body_timeout)
        except asyncio.TimeoutError:
            raise _Refused(408, f"the request body did not arrive within {self.body_timeout:g} s", close=True) from None
        except ClientDisconnect:
            raise _Refused(400, "the client went away before its request body was complete", close=True) from None

    @staticmethod
    def _payload(body: bytes) -> dict:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _Refused(400, f"the request body is not valid UTF-8 (byte {err.start})") from None
        try:
            payload = json.loads(text or "{}")
        except json.JSONDecodeError as err:
            raise _Refused(400, f"the request body is not valid JSON: {err.msg}") from None
        except RecursionError:
            raise _Refused(400, "the request body is not valid JSON: nested too deeply") from None
        if not isinstance(payload, dict):
            raise _Refused(400, "the request body must be a JSON object")
        return payload

    async def _model(self, request: Request, method: Any) -> Response:
        try:
            payload = self._payload(await self._body(request))
            if self.pending >= self.max_pending:
                raise _Refused(
                    503,
                    f"the explorer is busy ({self.pending} requests ahead); try again shortly",
                    headers={"Retry-After": "1"},
                )
            self.pending += 1
            try:
                result = await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(method, payload))
            finally:
                self.pending -= 1
            return _json(200, result)
        except _Refused as refusal:
            return refusal.response()
        except UserError as err:
            return _json(400, {"error": str(err)})
        except Exception as err:  # a bug: say so as JSON, keep serving
            LOG.exception("explorer request failed")
            return _json(500, {"error": f"internal error: {type(err).__name__}: {err}"})

    async def analyze(self, request: Request) -> Response:
        return await self._model(request, self.explorer.analyze)

    async def explain(self, request: Request) -> Response:
        return await self._model(request, self.explorer.explain)

    async def next_tokens(self, request: Request) -> Response:
        return await self._model(request, self.explorer.next_tokens)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = f"not found: {request.url.path}" if exc.status_code == 404 else exc.detail
    return _json(exc.status_code, {"error": message}, headers=dict(exc.headers) if exc.headers else None)


def build_app(
    explorer: Explorer,
    host: str = "127.0.0.1",
    *,
    body_timeout: float = BODY_TIMEOUT,
    max_pending: int = MAX_PENDING,
    workers: int = WORKERS,
) -> Any:
    """The explorer as an ASGI application (the routes behind the Host/Origin guard)."""
    api = _Api(explorer, body_timeout=body_timeout, max_pending=max_pending, workers=workers)
    routes = [Route(path, api.static, methods=["GET"]) for path in STATIC]
    routes += [
        Route("/api/info", api.info, methods=["GET"]),
        Route("/api/analyze", api.analyze, methods=["POST"]),
        Route("/api/explain", api.explain, methods=["POST"]),
        Route("/api/next", api.next_tokens, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    guarded = _Guard(app, host)
    guarded.pool = api.pool  # type: ignore[attr-defined]
    return guarded


class _Connection(h11.Connection):
    """h11's connection, remembering why a request was rejected (for the JSON error)."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as err:
            self.error = err
            raise


class _LingeringTransport:
    """The connection's transport, but ``close()`` is a lingering close: the response is flushed, the write side
    shut (the client sees the end), and what the client still sends is read and thrown away for a moment
    (at most :data:`LINGER` s and :data:`LINGER_BYTES`), so that the kernel does not answer it with a reset
    that would destroy the response before the client reads it (a 413 while a client is still sending)."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def close(self) -> None:
        if not self._transport.is_closing() and not self._protocol.lingering:
            self._protocol.linger()


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with JSON errors (bad requests, too many connections) carrying the security
    headers, and a deadline for the request head (a client that opens a connection and stalls is cut off)."""

    head_timeout: float = HEAD_TIMEOUT
    max_connections: int = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, self.config.h11_max_incomplete_event_size or 16 * 1024)
        self.limit_concurrency = None  # checked below, so that the 503 is JSON
        self._head_timer: asyncio.TimerHandle | None = None
        app = self.app

        async def limited(scope: dict, receive: Any, send: Any) -> None:
            # this request's task is already in self.tasks, this connection in self.connections
            if len(self.connections) > self.max_connections or len(self.tasks) > self.max_connections:
                refusal = _Refused(
                    503,
                    "the explorer has too many connections; try again shortly",
                    close=True,
                    headers={"Retry-After": "1"},
                )
                await refusal.response()(scope, receive, send)
                return
            await app(scope, receive, send)

        self.app = limited

    def _set_head_timer(self, on: bool) -> None:
        if on and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)
        elif not on and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if (
            not self.transport.is_closing()
            and self.conn.their_state is h11.IDLE
            and (self.cycle is None or self.cycle.response_complete)
        ):
            self.transport.close()

    lingering = False
    _discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _LingeringTransport(transport, self)  # type: ignore[assignment]
        self._set_head_timer(True)

    def linger(self) -> None:
        self.lingering = True
        self._set_head_timer(False)
        self._unset_keepalive_if_required()
        real = self.transport._transport  # type: ignore[attr-defined]
        try:
            real.write_eof()  # after the buffered response is sent
            real.resume_reading()
        except (OSError, RuntimeError, NotImplementedError):
            real.close()
            return
        self.loop.call_later(LINGER, real.close)

    def data_received(self, data: bytes) -> None:
        if self.lingering:  # closing: read and drop, up to a point
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport._transport.close()  # type: ignore[attr-defined]
            return
        super().data_received(data)
        self._set_head_timer(self.conn.their_state is h11.IDLE and not self.transport.is_closing())

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_head_timer(False)
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        err = getattr(self.conn, "error", None)  # a _Connection remembers why it rejected the request
        status = err.error_status_hint if err is not None and 400 <= err.error_status_hint < 500 else 400
        detail = str(err) if err is not None and str(err) else "malformed request"
        body = json.dumps({"error": f"invalid HTTP request: {detail}"}).encode()
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=status, headers=headers)) or b"")
            self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:  # a response was already under way: nothing more can be said
            pass
        self.transport.close()


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    host = host.strip("[]")
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class ExplorerServer:
    """The explorer served by uvicorn on a socket bound at construction (so ``port=0`` has its number at once,
    and a busy port fails here). ``serve_forever()`` blocks; ``shutdown()`` (from another thread) stops it."""

    def __init__(
        self,
        explorer: Explorer,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        body_timeout: float = BODY_TIMEOUT,
        head_timeout: float = HEAD_TIMEOUT,
        keep_alive: int = KEEP_ALIVE,
        max_pending: int = MAX_PENDING,
        max_connections: int = MAX_CONNECTIONS,
        backlog: int = BACKLOG,
        workers: int = WORKERS,
    ) -> None:
        self.socket = _bind(host, port, backlog)
        self.app = build_app(explorer, host, body_timeout=body_timeout, max_pending=max_pending, workers=workers)
        protocol = type(
            "ExplorerProtocol", (_Protocol,), {"head_timeout": head_timeout, "max_connections": max_connections}
        )
        self.config = Config(
            self.app,
            http=protocol,
            lifespan="off",
            log_config=None,
            log_level="error",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=SECURITY_HEADERS,
            backlog=backlog,
            timeout_keep_alive=keep_alive,
            limit_concurrency=max_connections,
            timeout_graceful_shutdown=3,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self.config.load()
        self.server = Server(self.config)
        # uvicorn fills these in at its first tick; set them now, so that no response can go out without them
        self.server.server_state.default_headers = list(self.config.encoded_headers)
        self._running = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple:
        return self.socket.getsockname()

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` or Ctrl-C; on Ctrl-C raise ``KeyboardInterrupt`` after the graceful stop.

        uvicorn captures SIGINT while it serves and re-raises it to the handler it found once it has
        stopped. Left to asyncio's default handler that re-raise could be swallowed (the process then
        exited 0, not 130, in one CI run); so in the main thread a handler of our own is
        installed first, records the interrupt and asks the server to stop.
        """
        self._running.set()
        interrupted = False

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupted
            interrupted = True
            self.server.should_exit = True  # (a Ctrl-C before uvicorn installed its own handler)

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if main else None
        try:
            self.server.run(sockets=[self.socket])
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            self._stopped.set()
        if interrupted:
            raise KeyboardInterrupt

    def shutdown(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True  # a serve_forever() that has not started yet returns at once
        if self._running.is_set():
            self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()
        self.app.pool.shutdown(wait=False, cancel_futures=True)


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8000, **limits: Any) -> ExplorerServer:
    """An HTTP server for ``explorer`` (call ``serve_forever()``; ``port=0`` picks a free port). ``limits``:
    the keyword arguments of :class:`ExplorerServer` (timeouts, queue and connection limits)."""
    return ExplorerServer(explorer, host, port, **limits)


def export(explorer: Explorer, texts: list[str], out_dir: str | Path, search: str = "greedy", dims: int = 16) -> Path:
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
                        walk = explorer.explain(
                            {**payload, "kind": kind, "layer": layer, "head": head, "token": token}, dims=dims
                        )
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


__all__ = ["MAX_BODY", "SECURITY_HEADERS", "Explorer", "ExplorerServer", "build_app", "export", "make_server"]

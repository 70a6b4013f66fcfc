"""The explorer's HTTP layer against lying and abusive clients, on loopback (issue 13).

Each test is bounded in time: the server under test runs with short timeouts (1-2 s), and every client socket
has a timeout. Memory is measured on this process (the server runs in a thread of it).
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from qkv.viz.server import MAX_BODY, Explorer, make_server
from test_viz_standin import tiny_inspector

pytestmark = pytest.mark.timeout(120)

BODY_TIMEOUT = 1.0
HEAD_TIMEOUT = 1.5
KEEP_ALIVE = 1
REQUIRED_HEADERS = {
    "content-security-policy": "default-src 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def start(explorer: Explorer, host: str = "127.0.0.1", **limits):
    srv = make_server(explorer, host, 0, **limits)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    return srv, thread


def stop(srv, thread) -> None:
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def explorer():
    return Explorer(tiny_inspector(n_heads=2, n_encoder_layers=1, n_decoder_layers=1))


@pytest.fixture(scope="module")
def server(explorer):
    srv, thread = start(explorer, body_timeout=BODY_TIMEOUT, head_timeout=HEAD_TIMEOUT, keep_alive=KEEP_ALIVE)
    yield srv.server_address[1]
    stop(srv, thread)


class Reply:
    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.raw = resp.read()

    @property
    def json(self) -> dict:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return json.loads(self.raw)


def connect(port: int, host: str = "127.0.0.1", timeout: float = 30) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, port))
    return sock


class _Reader:
    """One buffered reader for a socket, so that two responses read in turn do not lose bytes read ahead."""

    class _File(io.BufferedReader):
        def close(self) -> None:  # HTTPResponse closes its file after the body; keep it for the next one
            pass

    def __init__(self, sock: socket.socket) -> None:
        self.file = self._File(socket.SocketIO(sock, "rb"))

    def makefile(self, mode: str) -> object:
        return self.file


def read_reply(sock: socket.socket | _Reader, method: str = "POST") -> Reply:
    resp = http.client.HTTPResponse(sock, method=method)  # type: ignore[arg-type]
    resp.begin()
    return Reply(resp)


def raw(port: int, data: bytes, method: str = "POST") -> Reply:
    with connect(port) as sock:
        sock.sendall(data)
        return read_reply(sock, method)


def post(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    timeout: float = 60,
) -> Reply:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        return Reply(conn.getresponse())
    finally:
        conn.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        return Reply(conn.getresponse())
    finally:
        conn.close()


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def eventually(attempt, done, seconds: float = 10.0):
    """``attempt()`` every 0.1 s until ``done`` holds for its result or ``seconds`` pass; the last result."""
    deadline = time.monotonic() + seconds
    result = attempt()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(0.1)
        result = attempt()
    return result


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def flood(sock: socket.socket, total: int, chunked: bool = False) -> dict:
    """Send ``total`` bytes of body on ``sock`` in a thread (1 MB at a time, one buffer reused); returns a dict
    filled with how many were sent before the server stopped taking them."""
    chunk = b"a" * (1 << 20)
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n" if chunked else chunk
    state = {"sent": 0}

    def run() -> None:
        try:
            while state["sent"] < total:
                sock.sendall(frame)
                state["sent"] += len(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    state["thread"] = thread
    return state


BIG = 300 * 1000 * 1000


def test_200_concurrent_analyze_all_answered(server):
    texts = ["the cat sat", "a dog ran", "the mat", "cat on the mat"]
    barrier = threading.Barrier(200, timeout=60)

    def one(i: int) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=90)
        try:
            conn.connect()
            barrier.wait()
            conn.request(
                "POST",
                "/api/analyze",
                body=json.dumps({"text": texts[i % len(texts)]}),
                headers={"Content-Type": "application/json"},
            )
            reply = Reply(conn.getresponse())
            return reply.status, reply.json
        finally:
            conn.close()

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))  # a reset or a timeout would raise here
    assert len(results) == 200
    for status, body in results:
        assert status in (200, 429, 503), (status, body)
        assert ("labels" in body) if status == 200 else ("error" in body)
    assert sum(status == 200 for status, _ in results) >= 1


def test_busy_server_answers_503_json(explorer):
    class Slow(Explorer):
        def analyze(self, payload: dict) -> dict:
            time.sleep(0.3)
            return {"ok": True}

    srv, thread = start(Slow(explorer.inspector), max_pending=2, workers=1)
    try:
        port = srv.server_address[1]
        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(lambda _: post(port, "/api/analyze", b'{"text": "x"}'), range(12)))
        statuses = sorted(r.status for r in replies)
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 2 and 503 in statuses, statuses
        for r in replies:
            if r.status == 503:
                assert "busy" in r.json["error"] and r.headers["retry-after"] == "1"
    finally:
        stop(srv, thread)


def test_too_many_connections_get_503_json(explorer):
    srv, thread = start(explorer, max_connections=4)
    port = srv.server_address[1]
    idle = [connect(port) for _ in range(6)]  # open connections that send nothing
    try:
        # the server counts a connection once its loop has accepted it: poll rather than guess how long that takes
        reply = eventually(lambda: get(port, "/api/info"), lambda r: r.status == 503)
        assert reply.status == 503 and "too many connections" in reply.json["error"]
    finally:
        for sock in idle:
            sock.close()
    try:
        assert eventually(lambda: get(port, "/api/info"), lambda r: r.status == 200).status == 200
    finally:
        stop(srv, thread)


def test_announced_oversized_body_is_413_without_reading_it(server):
    before = rss_bytes()
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % BIG
        )
        state = flood(sock, BIG)
        reply = read_reply(sock)
        state["thread"].join(30)
    assert reply.status == 413 and "too large" in reply.json["error"]
    assert reply.headers["connection"] == "close"
    assert state["sent"] < 100 * 1000 * 1000  # the server stopped taking the body early
    if before is not None:
        assert rss_bytes() - before < 50 * 1024 * 1024


def test_chunked_body_over_the_limit_is_413_and_memory_stays_bounded(server):
    before = rss_bytes()
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        state = flood(sock, BIG, chunked=True)
        reply = read_reply(sock)
        state["thread"].join(30)
    assert reply.status == 413 and f"the limit is {MAX_BODY}" in reply.json["error"]
    assert state["sent"] < 100 * 1000 * 1000
    if before is not None:
        assert rss_bytes() - before < 50 * 1024 * 1024


def test_negative_content_length_is_400_json_and_nothing_is_read(server):
    before = rss_bytes()
    with connect(server) as sock:
        sock.sendall(b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n")
        state = flood(sock, BIG)
        reply = read_reply(sock)
        state["thread"].join(30)
        assert closed_within(sock, 5)
    assert reply.status == 400 and "Content-Length" in reply.json["error"]
    for name, value in REQUIRED_HEADERS.items():
        assert value in reply.headers[name]
    assert state["sent"] < 100 * 1000 * 1000
    if before is not None:
        assert rss_bytes() - before < 50 * 1024 * 1024


def test_content_length_smaller_than_the_body_reads_only_what_it_says(server):
    # Content-Length 10, then 300 MB: the 10 bytes are the request; the rest is no request at all
    before = rss_bytes()
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 10\r\n\r\n{"text":1}'
        )
        state = flood(sock, BIG)
        reader = _Reader(sock)
        first = read_reply(reader)
        second = read_reply(reader)
        state["thread"].join(30)
    assert first.status == 400 and '"text"' in first.json["error"]
    assert second.status in (400, 431) and "invalid HTTP request" in second.json["error"]
    assert state["sent"] < 100 * 1000 * 1000
    if before is not None:
        assert rss_bytes() - before < 50 * 1024 * 1024


def test_a_body_that_never_ends_is_cut_off_after_the_timeout(server):
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"text": '
        )
        t0 = time.monotonic()
        reply = read_reply(sock)
        elapsed = time.monotonic() - t0
        assert reply.status == 408 and "did not arrive" in reply.json["error"]
        assert BODY_TIMEOUT * 0.8 <= elapsed < BODY_TIMEOUT + 5
        assert closed_within(sock, 5)


def test_a_request_head_that_never_ends_is_cut_off(server):
    with connect(server) as sock:
        sock.sendall(b"POST /api/analyze HTTP/1.1\r\nHost: 127.0")
        t0 = time.monotonic()
        assert closed_within(sock, HEAD_TIMEOUT + 5)
        assert time.monotonic() - t0 >= HEAD_TIMEOUT * 0.8
    with connect(server) as sock:  # a connection that sends nothing at all
        assert closed_within(sock, HEAD_TIMEOUT + 5)


def test_idle_keep_alive_connection_times_out(server):
    with connect(server) as sock:
        sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = read_reply(sock, "GET")
        assert reply.status == 200 and reply.headers.get("connection") != "close"
        t0 = time.monotonic()
        assert closed_within(sock, KEEP_ALIVE + 5)
        assert time.monotonic() - t0 >= KEEP_ALIVE * 0.8


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'\xff\xfe{"text": "a"}', "not valid UTF-8"),
        (b'{"text": "caf\xc3"}', "not valid UTF-8"),
        (b"[" * 8000 + b"]" * 8000, "nested too deeply"),
        (b'{"a":' * 2500 + b"1" + b"}" * 2500, "nested too deeply"),
        (b"hello", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"\x00" * 100, "not valid JSON"),
    ],
)
def test_bad_bodies_get_a_400_json_error_not_a_dropped_connection(server, body, message):
    assert len(body) <= MAX_BODY
    reply = post(server, "/api/analyze", body)
    assert reply.status == 400 and message in reply.json["error"], reply.raw[:200]


def test_bad_host_is_refused(server):
    for host in ("evil.example", f"evil.example:{server}", "127.0.0.1.evil.example", "[::1", ""):
        reply = raw(server, b"GET /api/info HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode(), "GET")
        assert reply.status in (400, 421), (host, reply.status)
        assert "error" in reply.json
    reply = raw(
        server, b'POST /api/analyze HTTP/1.1\r\nHost: rebind.example\r\nContent-Length: 15\r\n\r\n{"text": "cat"}'
    )
    assert reply.status == 421 and "host" in reply.json["error"]
    reply = raw(server, b"GET /api/info HTTP/1.0\r\n\r\n", "GET")  # no Host at all
    assert reply.status in (400, 421)
    for host in (f"127.0.0.1:{server}", f"localhost:{server}", "localhost", f"LOCALHOST.:{server}"):
        reply = raw(server, b"GET /api/info HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode(), "GET")
        assert reply.status == 200, host


def test_cross_site_post_is_403_and_the_model_does_not_run(server, explorer):
    text = "the mat sat on the cat"
    for headers in (
        {"Origin": "http://evil.example", "Content-Type": "text/plain"},
        {"Origin": "null", "Content-Type": "text/plain"},
        {"Origin": f"http://localhost:{server}"},  # another origin than the page's 127.0.0.1
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    ):
        reply = post(server, "/api/analyze", json.dumps({"text": text}).encode(), headers)
        assert reply.status == 403 and "cross-site" in reply.json["error"], headers
    assert all(key[0] != text for key in explorer.cache)
    same = post(
        server,
        "/api/analyze",
        json.dumps({"text": text}).encode(),
        {"Origin": f"http://127.0.0.1:{server}", "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status == 200 and same.json["labels"]


def test_security_headers_on_every_response(server):
    replies = [
        get(server, "/"),
        get(server, "/app.js"),
        get(server, "/style.css"),
        get(server, "/api/info"),
        get(server, "/nope"),
        get(server, "/api/analyze"),  # 404, 405
        post(server, "/api/analyze", b'{"text": "the cat"}'),
        post(server, "/api/analyze", b"{oops"),
        post(server, "/api/analyze", b"x" * (MAX_BODY + 1)),
        post(server, "/nope", b"{}"),
        post(server, "/api/analyze", b"{}", {"Origin": "http://evil.example"}),
        raw(server, b"GET /api/info HTTP/1.1\r\nHost: evil.example\r\n\r\n", "GET"),
        raw(server, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n", "GET"),
        raw(server, b"GARBAGE\r\n\r\n", "GET"),
    ]
    statuses = [r.status for r in replies]
    assert statuses == [200, 200, 200, 200, 404, 405, 200, 400, 413, 404, 403, 421, 400, 400], statuses
    for reply in replies:
        for name, value in REQUIRED_HEADERS.items():
            assert value in reply.headers.get(name, ""), (reply.status, name, reply.headers)
        if reply.status >= 400:
            assert "error" in reply.json


def test_ipv6_loopback_serves(explorer):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    srv, thread = start(explorer, host="::1")
    try:
        host, port = srv.server_address[:2]
        assert host == "::1"
        conn = http.client.HTTPConnection("::1", port, timeout=30)
        conn.request("GET", "/api/info")
        reply = Reply(conn.getresponse())
        conn.close()
        assert reply.status == 200 and reply.json["kind"] == "seq2seq"
        analyzed = post(port, "/api/analyze", b'{"text": "the cat"}', {"Origin": f"http://[::1]:{port}"}, host="::1")
        assert analyzed.status == 200
    finally:
        stop(srv, thread)


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_qkv_serve_host_ipv6_serves_and_stops_on_ctrl_c(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    from qkv.training import train
    from qkv.training.config import from_dict

    run = tmp_path / "run"
    train(
        from_dict(
            {
                "task": {
                    "name": "reverse",
                    "options": {"length": 5, "num_examples": 32, "num_eval_examples": 2, "vocab_size": 8},
                },
                "model": {
                    "name": "transformer",
                    "d_model": 16,
                    "n_heads": 2,
                    "n_encoder_layers": 1,
                    "n_decoder_layers": 1,
                    "d_ff": 32,
                    "dropout": 0.0,
                },
                "training": {"max_steps": 1, "max_tokens": 100, "device": "cpu"},
                "eval": {"every": 1, "max_examples": 2, "max_len": 8},
            }
        ),
        run,
        progress=False,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "qkv", "serve", str(run), "--host", "::1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://\[::1\]:(\d+)/", line)
        if not match and not line:  # stdout closed: the server stopped; say why (its stderr), not just ""
            proc.wait(timeout=30)
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        port = int(match.group(1))
        conn = http.client.HTTPConnection("::1", port, timeout=30)
        conn.request("GET", "/api/info")
        reply = Reply(conn.getresponse())
        conn.close()
        assert reply.status == 200 and reply.json["name"] == "run"
        assert reply.headers["x-frame-options"] == "DENY"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

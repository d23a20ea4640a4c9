"""Keys never reach a log or an error body; logged paths are escaped; slow request heads are cut."""
import json
import socket
import time

import pytest
import requests

from live import TIMEOUT, wait_for
from rawhttp import exchange, read_all, split_response

KEY = "key-hardening-9c41e7"


@pytest.fixture(scope="module")
def keyed_server(start_server):
    """Auth on, request heads cut after 2 s."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS=KEY, HARKEN_HEADER_TIMEOUT_S="2")


def _marker_seen(server, marker, seconds=5):
    return wait_for(lambda: marker in server.log(), seconds)


@pytest.mark.parametrize("request_line", [
    f"GET /analyze/live/x?api_key={KEY} HTTP/1.1 extra",
    f"GET /analyze/live/x?api_key={KEY}\x01 HTTP/1.1",
    f"GET /analyze/live/x?api_key={KEY} HTTP/7.0",
    f"GET /analyze/live/x?api_key={KEY}&pad={'a' * 9000} HTTP/1.1",
    f"G\x01T /analyze/live/x?api_key={KEY} HTTP/1.1",
])
def test_malformed_request_lines_never_show_the_key(keyed_server, request_line):
    """Neither the error log nor the error body repeats a key from a line gunicorn refuses."""
    raw = exchange(keyed_server.port, request_line.encode("latin-1") + b"\r\nHost: x\r\n\r\n")
    status, _, body = split_response(raw)
    assert 400 <= status < 500
    assert KEY.encode() not in raw
    requests.get(keyed_server.url + "/healthz?mark=after-malformed-line", timeout=TIMEOUT)
    assert _marker_seen(keyed_server, "/healthz")
    assert KEY not in keyed_server.log()


def test_header_key_and_bad_header_never_logged(keyed_server):
    """A key in a malformed header line is not echoed either."""
    raw = exchange(keyed_server.port,
                   f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-API-Key {KEY}\r\n\r\n".encode())
    assert KEY.encode() not in raw
    assert KEY not in keyed_server.log()


@pytest.mark.parametrize("path, forbidden", [
    ("/forge%0D%0A127.0.0.1%20%22GET%20/admin%22%20200", "\n127.0.0.1 \"GET /admin\" 200"),
    ("/nul%00byte", "\x00"),
    ("/esc%1B%5B31mred", "\x1b["),
])
def test_logged_paths_are_escaped(keyed_server, path, forbidden):
    """Control characters in a path are escaped in the access log: no forged lines, no NULs."""
    exchange(keyed_server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    stem = path.split("%")[0]
    assert _marker_seen(keyed_server, stem)
    assert forbidden not in keyed_server.log()


def test_slow_request_heads_are_dropped(keyed_server):
    """Connections that leave a request line half sent are closed by the head timeout (2 s here)."""
    socks = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", keyed_server.port), timeout=10)
        sock.sendall(b"GET /healthz HTT")
        socks.append(sock)
    started = time.monotonic()
    for sock in socks:
        read_all(sock)
        sock.close()
    assert time.monotonic() - started < 8
    assert requests.get(keyed_server.url + "/healthz", timeout=TIMEOUT).status_code == 200


def test_idle_keepalive_connection_outlives_the_head_timeout(keyed_server):
    """The head timeout starts at a request's first byte: an idle keep-alive connection is kept."""
    with socket.create_connection(("127.0.0.1", keyed_server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(3)  # idle longer than the 2 s head timeout, within the 75 s keep-alive
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (first + read_all(sock)).count(b"HTTP/1.1 200") == 2


def test_json_lines_carry_request_and_session_ids(start_server):
    """HARKEN_LOG_FORMAT=json: every app and access line is JSON; a request's lines share its id."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_LOG_FORMAT="json")
    started = requests.post(server.url + "/analyze/live/start", json={"suffix": ".pcm"},
                            headers={"X-Request-ID": "req-soak-1"}, timeout=TIMEOUT)
    assert started.headers["X-Request-ID"] == "req-soak-1"
    session_id = started.json()["session_id"]
    made = requests.get(server.url + "/healthz", headers={"X-Request-ID": "bad id <x>"}, timeout=TIMEOUT)
    assert made.headers["X-Request-ID"] != "bad id <x>" and len(made.headers["X-Request-ID"]) == 16
    assert _marker_seen(server, '"req-soak-1"')
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    of_request = [line for line in lines if line.get("request_id") == "req-soak-1"]
    assert any(line.get("access") and line["path"] == "/analyze/live/start" for line in of_request)
    assert any(line.get("session_id") == session_id and "session started" in line["msg"]
               for line in of_request)

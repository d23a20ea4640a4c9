"""A loopback TCP forwarder for client tests: passes HTTP through, and on cue cuts event streams mid-event, drops or delays requests.

It works on sockets, below HTTP libraries, so the client meets real resets and truncated
chunked bodies. Each client connection carries one request (the proxy asks the server
to close after answering), which lets a fault target exactly one request.
"""
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlparse

_FRAME_START = re.compile(rb"(?<=\n)id: \d")
_CHUNK_SEQ = re.compile(rb'name="chunk_seq"\r\n\r\n(\d+)\r\n')


@dataclass
class Fault:
    """What the proxy does to one request.

    drop: close the client's connection before forwarding anything (the request never lands).
    reset: the same, with a TCP reset instead of an orderly close.
    lose_response: forward the request, wait for the whole answer, then close without
        passing it on (the request landed; the client cannot know).
    delay_s: hold the request this long before forwarding it.
    cut_after_events: pass this many SSE events, then part of the next one, then close
        both sides (a connection lost mid-event).
    """

    drop: bool = False
    reset: bool = False
    lose_response: bool = False
    delay_s: float = 0.0
    cut_after_events: Optional[int] = None


@dataclass
class Seen:
    """One request the proxy received, with what was done to it."""

    method: str
    path: str
    headers: dict
    chunk_seq: Optional[int]
    at: float
    fault: Fault = field(default_factory=Fault)
    cut_at: Optional[float] = None


class FaultyProxy:
    """Listens on a free loopback port (`url`) and forwards to `upstream_url`; `faults(seen)` picks each request's `Fault`."""

    def __init__(self, upstream_url, faults=None):
        parsed = urlparse(upstream_url)
        self.upstream = (parsed.hostname, parsed.port)
        self.faults = faults or (lambda seen: None)
        self.seen = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="faulty-proxy").start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Stop accepting; connections in flight end with their server side."""
        self._listener.close()

    def requests_to(self, suffix, method=None):
        """The requests seen so far whose path (without query) ends with `suffix`."""
        with self._lock:
            return [s for s in self.seen if s.path.split("?")[0].endswith(suffix)
                    and (method is None or s.method == method)]

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, client):
        with client:
            request = _read_request(client)
            if request is None:
                return
            head, body = request
            method, path, headers = _parse_head(head)
            match = _CHUNK_SEQ.search(body)
            seen = Seen(method, path, headers, int(match.group(1)) if match else None,
                        time.monotonic())
            with self._lock:
                self.seen.append(seen)
            seen.fault = self.faults(seen) or Fault()
            if seen.fault.reset:  # linger 0: close() sends RST
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if seen.fault.drop or seen.fault.reset:
                return
            if seen.fault.delay_s:
                time.sleep(seen.fault.delay_s)
            try:
                with socket.create_connection(self.upstream) as upstream:
                    upstream.sendall(_ask_to_close(head) + body)
                    if seen.fault.lose_response:
                        while upstream.recv(65536):
                            pass
                        return
                    self._relay(upstream, client, seen)
            except OSError:  # either side went away (a delayed request may outlive the test's server)
                return

    def _relay(self, upstream, client, seen):
        frames = 0
        while True:
            data = upstream.recv(65536)
            if not data:
                return
            if seen.fault.cut_after_events is not None:
                for match in _FRAME_START.finditer(data):
                    frames += 1
                    if frames > seen.fault.cut_after_events:
                        client.sendall(data[:match.end() + 4])
                        seen.cut_at = time.monotonic()
                        client.shutdown(socket.SHUT_RDWR)
                        return
            client.sendall(data)


def _read_request(sock):
    """(head, body) of one HTTP request with a Content-Length body, or None if the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        if not block:
            return None
        data += block
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    remaining = int(length.group(1)) if length else 0
    while len(body) < remaining:
        block = sock.recv(65536)
        if not block:
            return None
        body += block
    return head + b"\r\n\r\n", body


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _ask_to_close(head):
    """The request head with `Connection: close`, so the answer ends with the connection."""
    lines = [line for line in head.split(b"\r\n") if line and not line.lower().startswith(b"connection:")]
    return b"\r\n".join(lines + [b"Connection: close", b"", b""])

"""gunicorn-side pieces of Harken: the worker and the logger that `app/gunicorn_conf.py` names.

gunicorn's master loads this file by path before it forks (see `app/gunicorn_conf.py`):
importing the `app` package there would load Flask and the pipeline before gevent patches
the worker.

- `HarkenWorker`: the gevent worker, plus (1) a deadline on each request head that starts at
  its first byte, so half-sent request lines cannot hold connections for the keep-alive time,
  and (2) the requests gunicorn itself refuses (bad request line, 414, bad headers) answered
  with Harken's JSON error body, never echoing what the client sent.
- `HarkenLogger`: gunicorn's logger with every logged value escaped (no forged lines, no
  NULs or terminal escapes) and anything that looks like an API key redacted.
"""
import json
import re
import socket

import gevent
from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

# `api_key=…`, `api-key: …`, `X-API-Key …`, percent-encoded `api_key%3D…`: the value is cut.
_KEY_VALUE = re.compile(r"(?i)(api[-_ ]?key(?:\s*[=:]\s*|%3d|\s+))[^\s&'\";,]+")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\"]")

# gunicorn's refusals: exception class -> (status, reason phrase, wire code, message).
_REFUSALS = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long",
     "The request line is longer than the server accepts."),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large",
     "request_header_fields_too_large", "The request headers are larger than the server accepts."),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "not_implemented",
     "The Transfer-Encoding is not supported."),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed",
     "The Expect header cannot be met."),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden", "Request forbidden."),
    (http_errors.ParseException, 400, "Bad Request", "bad_request",
     "The request is not well-formed HTTP."),
)


def scrub(text):
    """`text` safe for a log line, text or JSON: key values redacted, control characters,
    quotes and backslashes written as \\u00NN escapes."""
    text = _KEY_VALUE.sub(r"\1[redacted]", text)
    return _UNSAFE.sub(lambda m: "\\u%04x" % ord(m.group()), text)


def json_error(status, reason, code, message):
    """A whole HTTP/1.1 answer carrying the `{"error": {...}}` body; the connection closes after it."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    return head + body


class _ScrubFilter:
    """Rewrites each record of gunicorn's error log through `scrub` before any handler sees it."""

    def filter(self, record):
        record.msg, record.args = scrub(record.getMessage()), ()
        return True


class HarkenLogger(Logger):
    """gunicorn's logger, with error-log lines and access-log values scrubbed."""

    def setup(self, cfg):
        super().setup(cfg)
        self.error_log.addFilter(_ScrubFilter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if "api-key" in name or "api_key" in name:
                atoms[name] = "[redacted]"
            elif isinstance(value, str):
                atoms[name] = scrub(value)
        return atoms


class _WatchedSocket:
    """The connection's socket, telling `on_read` (when set) that a read returned bytes."""

    def __init__(self, sock):
        self._sock = sock
        self.on_read = None

    def recv(self, *args):
        data = self._sock.recv(*args)
        if data and self.on_read is not None:
            self.on_read()
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _HeadDeadline:
    """Bounds the read of one request head: `idle_s` until its first byte, then `head_s` more.

    An idle keep-alive connection may wait for its next request as long as gunicorn's
    `keepalive`; a client that has started a request must finish its head quickly.
    Expiry shuts the socket down: the pending read sees end of file, gunicorn closes the
    connection as it does for any client that leaves, and the FIN goes out at once.
    """

    def __init__(self, sock, idle_s, head_s):
        self._sock, self._idle_s, self._head_s = sock, idle_s, head_s
        self._timer = None

    def __enter__(self):
        self._arm(self._idle_s)
        self._sock.on_read = self._first_byte
        return self

    def _arm(self, seconds):
        if self._timer is not None:
            self._timer.stop()
        self._timer = gevent.get_hub().loop.timer(seconds)
        self._timer.start(self._expire)

    def _first_byte(self):
        self._sock.on_read = None
        self._arm(self._head_s)

    def _expire(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already gone
            pass

    def __exit__(self, kind, exc, tb):
        self._sock.on_read = None
        self._timer.stop()
        return False


class HarkenWorker(GeventWorker):
    """gunicorn's gevent worker with a request-head deadline and JSON answers to bad requests."""

    head_timeout_s = 10.0  # gunicorn.conf.py sets it from HARKEN_HEADER_TIMEOUT_S

    def handle(self, listener, client, addr):
        client = _WatchedSocket(client)
        gevent.getcurrent().harken_client = client
        super().handle(listener, client, addr)

    def timeout_ctx(self):
        client = getattr(gevent.getcurrent(), "harken_client", None)
        if client is None:
            return super().timeout_ctx()
        return _HeadDeadline(client, self.cfg.keepalive, min(self.head_timeout_s, self.cfg.keepalive))

    def handle_error(self, req, client, addr, exc):
        """Refusals of malformed requests as JSON that repeats nothing the client sent."""
        for kind, status, reason, code, message in _REFUSALS:
            if isinstance(exc, kind) and not isinstance(
                    exc, (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)):
                break
        else:
            return super().handle_error(req, client, addr, exc)
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], type(exc).__name__)
        try:
            util.write_nonblock(client, json_error(status, reason, code, message))
        except Exception:
            self.log.debug("Failed to send error message.")

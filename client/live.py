"""`LiveClient`: the live capture endpoints on one `requests.Session`, with timeouts, bounded retries and resumable events."""
import logging
import time
from dataclasses import dataclass, fields
from typing import Optional
from urllib.parse import quote, urljoin

import requests

from . import errors
from .errors import ChunkOutOfOrder, ConnectionFailed, HarkenError, ReconnectFailed, RequestTimeout
from .events import is_terminal, parse_event
from .retry import RetryPolicy
from .sse import SSEParser
from .streaming import FileStream

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 30.0)
# Three of the server's default 15 s keepalives: a silent stream that long is a dead one.
DEFAULT_EVENTS_READ_TIMEOUT_S = 45.0
# What the SSE standard leaves to the client until the server sends `retry:`.
DEFAULT_RECONNECT_DELAY_S = 2.0
MAX_RECONNECT_DELAY_S = 30.0
DEFAULT_CHUNK_BYTES = 32 * 1024


def _from_dict(cls, data):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class LiveSession:
    """A started live session, as `POST /analyze/live/start` described it."""

    session_id: str
    conversation_id: Optional[str] = None
    chunk_endpoint: Optional[str] = None
    events_endpoint: Optional[str] = None
    control_endpoint: Optional[str] = None
    next_chunk_seq: int = 0
    expires_at: Optional[str] = None
    status: Optional[str] = None

    @classmethod
    def from_dict(cls, data):
        """From the start answer's JSON; keys this client does not know are ignored."""
        return _from_dict(cls, data)


@dataclass
class ChunkReceipt:
    """The server's answer to one chunk; `duplicate` is true when the chunk had already landed."""

    session_id: str
    chunk_seq: int
    next_chunk_seq: int
    received_bytes: Optional[int] = None
    total_bytes: Optional[int] = None
    status: Optional[str] = None
    expires_at: Optional[str] = None
    duplicate: bool = False

    @classmethod
    def from_dict(cls, data):
        """From the chunk answer's JSON; keys this client does not know are ignored."""
        return _from_dict(cls, data)


def _session_id(session):
    return session.session_id if isinstance(session, LiveSession) else session


class LiveClient:
    """A client for one Harken (or Live Capture API) server.

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:8000``.
        api_key: sent as ``X-API-Key`` on every request when given.
        timeout: ``(connect_s, read_s)`` (or one number for both) for every request but the
            event stream.
        events_read_timeout_s: longest silence on the event stream before it counts as
            dropped and is reconnected; keep it a few of the server's keepalive intervals.
        retry: the `RetryPolicy` for uploads and control requests.
        reconnect_tries: reconnects allowed in a row (without an event in between)
            before `events()` raises `ReconnectFailed`.
        session: a `requests.Session` to use instead of a new one (it is closed with the client).

    Use it as a context manager, or call `close()`.
    """

    def __init__(self, base_url, api_key=None, timeout=DEFAULT_TIMEOUT,
                 events_read_timeout_s=DEFAULT_EVENTS_READ_TIMEOUT_S, retry=None,
                 reconnect_tries=5, session=None):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.events_timeout = (self.timeout[0], events_read_timeout_s)
        self.retry = retry or RetryPolicy()
        self.reconnect_tries = reconnect_tries
        self.http = session or self._new_session()
        if api_key:
            self.http.headers["X-API-Key"] = api_key

    def _new_session(self):
        """A Session that reads proxy and CA-bundle variables from the environment once, not on every call.

        requests re-reads them per request when `trust_env` is on, which costs about as much
        client CPU as the rest of a small chunk upload.
        """
        http = requests.Session()
        settings = http.merge_environment_settings(self.base_url, {}, None, None, None)
        http.proxies.update(settings["proxies"])
        http.verify = settings["verify"]
        http.trust_env = False
        return http

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Close the pooled connections."""
        self.http.close()

    def start(self, *, goal=None, filename=None, suffix=None, ttl_seconds=None, sample_rate=None,
              channels=None, language=None, metadata=None):
        """Start a live session.

        Args:
            goal: the analysis focus, echoed in the summary.
            filename: a name whose extension tells the server the audio format.
            suffix: the format's extension, e.g. ``.wav``, ``.webm``, ``.pcm`` (server default ``.mp4``).
            ttl_seconds: idle lifetime, 60-3600 (server default 900).
            sample_rate: Hz, for headerless raw PCM (``.pcm``/``.raw``, s16le).
            channels: for headerless raw PCM.
            language: speech language (server default ``en``).
            metadata: a JSON object echoed back in ``done`` and the summary.

        Returns:
            A `LiveSession`.

        Raises:
            APIError: e.g. `ValidationFailed` naming a bad field, `Unauthorized`, `ServerFull`
                (retried here while retries remain, after its ``Retry-After``). A start whose
                answer was lost on the network is not retried: it may have created a session.
        """
        body = {"goal": goal, "filename": filename, "suffix": suffix, "ttl_seconds": ttl_seconds,
                "sample_rate": sample_rate, "channels": channels, "language": language,
                "metadata": metadata}
        body = {k: v for k, v in body.items() if v is not None}
        response = self._retrying(
            lambda: self._send("POST", "analyze/live/start", json=body),
            only=errors.APIError)
        return LiveSession.from_dict(_json(response))

    def upload(self, session, chunk_seq, data):
        """Upload one chunk of the audio file (multipart, as the reference API takes it).

        Args:
            session: a `LiveSession` or a session id.
            chunk_seq: this chunk's zero-based number; it must be the server's ``next_chunk_seq``.
            data: the chunk's bytes.

        Returns:
            A `ChunkReceipt`. Safe to call again with the same arguments: connection errors,
            timeouts, 5xx, 429 and 503 are retried with backoff and jitter (``Retry-After``
            honoured), and a chunk that already landed (a 200 ``duplicate``, or a 409
            `ChunkOutOfOrder` whose ``expected_chunk_seq`` is past ``chunk_seq``) counts as
            success, with ``duplicate`` true.

        Raises:
            APIError: `ChunkOutOfOrder` for a gap, `ChunkConflict`, `SessionClosed`,
                `InvalidChunk`, `PayloadTooLarge`, …; the last `TransportError` or `ServerError`
                once the retries are spent.
        """
        url = self._endpoint(session, "chunk")

        def attempt():
            try:
                response = self._send("POST", url, data={"chunk_seq": str(chunk_seq)},
                                      files={"chunk": ("chunk", data, "application/octet-stream")})
            except ChunkOutOfOrder as error:
                expected = error.expected_chunk_seq
                if isinstance(expected, int) and expected > chunk_seq:
                    log.info("chunk %d had already landed (server expects %d)", chunk_seq, expected)
                    return ChunkReceipt(_session_id(session), chunk_seq, expected, duplicate=True)
                raise
            return ChunkReceipt.from_dict(_json(response))

        return self._retrying(attempt)

    def events(self, session, last_event_id=None):
        """Iterate the session's events as typed objects, reconnecting when the stream drops.

        Args:
            session: a `LiveSession` or a session id.
            last_event_id: resume after this event id (the events up to it are not sent again).

        Yields:
            One `client.events.Event` subclass per SSE event, `UnknownEvent` for names this
            client does not know. Stops after `Done` or a fatal `Error`.

        Raises:
            ReconnectFailed: the stream dropped and `reconnect_tries` reconnects in a row
                failed (each after the server's ``retry:`` delay, doubled per failure).
            APIError: a reconnect was refused for good, e.g. `SessionNotFound`, `SessionExpired`.
        """
        url = self._endpoint(session, "events")
        retry_ms = None
        failures = 0
        while True:
            parser = None
            try:
                with self._open_events(url, last_event_id) as response:
                    parser = SSEParser(response.iter_content(chunk_size=None))
                    for message in parser.events():
                        event = parse_event(message.event, message.data, message.id)
                        last_event_id = parser.last_event_id
                        failures = 0
                        yield event
                        if is_terminal(event):
                            return
                cause = ConnectionFailed("the server closed the event stream before `done`")
            except requests.RequestException as exc:
                cause = ConnectionFailed(f"event stream dropped: {exc}")
                cause.__cause__ = exc
            except HarkenError as error:
                if not error.retryable:
                    raise
                cause = error
            if parser is not None and parser.retry_ms is not None:
                retry_ms = parser.retry_ms
            failures += 1
            if failures > self.reconnect_tries:
                raise ReconnectFailed(f"event stream lost after {self.reconnect_tries} reconnects: "
                                      f"{cause}") from cause
            delay = getattr(cause, "retry_after_s", None)
            if delay is None:
                base = retry_ms / 1000 if retry_ms is not None else DEFAULT_RECONNECT_DELAY_S
                delay = min(base * 2 ** (failures - 1), max(base, MAX_RECONNECT_DELAY_S))
            log.info("event stream dropped (%s); reconnecting after id %s in %.1fs",
                     cause, last_event_id, delay)
            time.sleep(delay)

    def control(self, session, action, reason=None):
        """Send ``finalize``, ``cancel`` or ``keepalive``.

        Args:
            session: a `LiveSession` or a session id.
            action: ``"finalize"`` (flush and finish; idempotent), ``"cancel"`` (abort; the
                event consumer gets an ``error`` with code ``cancelled``) or ``"keepalive"``.
            reason: optional, passed on to the server (and to the ``error`` of a cancel).

        Returns:
            The server's answer: ``session_id``, ``action``, ``status``, ``detail``, ``expires_at``.

        Raises:
            APIError: `SessionClosed` for a finished session, `ValidationFailed` for an unknown
                action; the last `TransportError` or `ServerError` once the retries are spent.
        """
        body = {"action": action}
        if reason is not None:
            body["reason"] = reason
        url = self._endpoint(session, "control")
        return _json(self._retrying(lambda: self._send("POST", url, json=body)))

    def state(self, session):
        """The session's state (a Harken extension): status, next_chunk_seq, total_bytes, audio_seconds, …

        Args:
            session: a `LiveSession` or a session id.

        Raises:
            APIError: `SessionNotFound` or `SessionExpired`; the last `TransportError` once the retries are spent.
        """
        url = f"analyze/live/{quote(_session_id(session), safe='')}"
        return _json(self._retrying(lambda: self._send("GET", url)))

    def stream_file(self, path, chunk_bytes=DEFAULT_CHUNK_BYTES, realtime=False, **options):
        """Start a session for a recorded file, upload it from a background thread and iterate its events.

        Args:
            path: the audio file, in any format the server accepts; its extension is sent
                as ``suffix`` unless ``suffix`` is given.
            chunk_bytes: bytes per chunk.
            realtime: pace the chunks at the audio's own speed, as a microphone would
                deliver them (see `client.audio` for how the speed is found).
            **options: `start()` arguments (``goal``, ``metadata``, ``sample_rate``, …) and
                `FileStream`'s (``duration_s``, ``on_chunk``, ``finalize_at``, ``cancel_at``).

        Returns:
            A `FileStream`: iterate it for the events; a failure of the upload thread is
            raised from that iteration as `UploadFailed`.
        """
        return FileStream(self, path, chunk_bytes=chunk_bytes, realtime=realtime, **options)

    def _endpoint(self, session, kind):
        if isinstance(session, LiveSession) and getattr(session, f"{kind}_endpoint"):
            return getattr(session, f"{kind}_endpoint").lstrip("/")
        return f"analyze/live/{quote(_session_id(session), safe='')}/{kind}"

    def _open_events(self, url, last_event_id):
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        return self._send("GET", url, headers=headers, stream=True, timeout=self.events_timeout)

    def _send(self, method, url, **kwargs):
        """One request; the error body, or the network's failure, raised as a `HarkenError`."""
        kwargs.setdefault("timeout", self.timeout)
        url = urljoin(self.base_url, url)
        try:
            response = self.http.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise RequestTimeout(f"{method} {url}: no answer in time ({exc})",
                                 request=exc.request) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise ConnectionFailed(f"{method} {url}: {exc}", request=exc.request) from exc
        if response.status_code >= 400:
            error = errors.from_response(response)
            response.close()
            raise error
        return response

    def _retrying(self, attempt, only=HarkenError):
        """Call `attempt()` until it succeeds, or fails in a way `self.retry` will not retry."""
        for tried in range(self.retry.tries):
            try:
                return attempt()
            except only as error:
                if not self.retry.should_retry(tried, error):
                    raise
                delay = self.retry.delay_s(tried, error)
                log.info("retrying in %.2fs after %s", delay, error)
                time.sleep(delay)


def _json(response):
    try:
        return response.json()
    except ValueError as exc:
        raise errors.APIError(f"expected JSON, got {response.headers.get('Content-Type')!r}",
                              status=response.status_code, code="invalid_response",
                              request=response.request, response=response) from exc

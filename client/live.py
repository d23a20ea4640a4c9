"""`LiveClient`: the live capture endpoints on one `requests.Session`, with timeouts, bounded retries and resumable events."""
import copy
import logging
import threading
import time
from typing import Any, Dict, Iterator, Optional, Tuple, Union
from urllib.parse import urljoin

import requests

from . import errors, protocol
from .errors import ChunkOutOfOrder, ConnectionFailed, HarkenError, RequestTimeout
from .events import Event, is_terminal, parse_event
from .multipart import FileUpload
from .protocol import (DEFAULT_ANALYZE_READ_TIMEOUT_S, DEFAULT_CHUNK_BYTES,
                       DEFAULT_EVENTS_READ_TIMEOUT_S, DEFAULT_RECONNECT_TRIES, DEFAULT_TIMEOUT,
                       ChunkReceipt, LiveSession, SessionRef)
from .result import AnalysisResult
from .retry import RetryPolicy
from .sources import AudioInput
from .sse import SSEParser
from .streaming import LiveStream

log = logging.getLogger(__name__)

Timeout = Union[float, Tuple[float, float]]


def _typed(parser: SSEParser) -> Iterator[Event]:
    """The typed events of an SSE stream's messages."""
    for message in parser.events():
        yield parse_event(message.event, message.data, message.id)


class LiveClient:
    """A client for one Harken (or Live Capture API) server.

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:8000``.
        api_key: sent as ``X-API-Key`` on every request when given.
        timeout: ``(connect_s, read_s)`` (or one number for both) for every request but the
            event stream.
        events_read_timeout_s: longest silence on the event stream before it counts as
            dropped and is reconnected; keep it a few of the server's keepalive intervals.
        analyze_read_timeout_s: longest wait for `analyze_file`'s answer once the file is
            sent: the server answers only when the whole analysis is done.
        retry: the `RetryPolicy` for uploads and control requests.
        reconnect_tries: reconnects allowed in a row (without an event in between)
            before `events()` raises `ReconnectFailed`.
        session: a `requests.Session` to use instead of a new one (it is closed with the client).

    Use it as a context manager, or call `close()`.
    """

    def __init__(self, base_url: str, api_key: Optional[str] = None, timeout: Timeout = DEFAULT_TIMEOUT,
                 events_read_timeout_s: float = DEFAULT_EVENTS_READ_TIMEOUT_S,
                 analyze_read_timeout_s: float = DEFAULT_ANALYZE_READ_TIMEOUT_S,
                 retry: Optional[RetryPolicy] = None, reconnect_tries: int = DEFAULT_RECONNECT_TRIES,
                 session: Optional[requests.Session] = None):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.events_timeout = (self.timeout[0], events_read_timeout_s)
        self.analyze_timeout = (self.timeout[0], analyze_read_timeout_s)
        self.retry = retry or RetryPolicy()
        self.reconnect_tries = reconnect_tries
        self._halt = threading.Event()
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

    def twin(self, halt: Optional[threading.Event] = None) -> "LiveClient":
        """This client on a `requests.Session` of its own, for another thread.

        requests does not promise that one Session is safe to use from two threads at once
        (its cookie jar and adapter lookup are not locked). The twin copies the headers,
        auth, proxies and TLS settings, and shares the transport adapters, whose urllib3
        connection pools are thread-safe; it is never closed itself (`close()` on this
        client closes the shared pools). Once `halt` is set, the twin retries nothing more:
        the thread that owns it has been told to stop.
        """
        twin = copy.copy(self)
        twin._halt = halt or threading.Event()
        twin.http = requests.Session()
        for name in ("headers", "auth", "proxies", "verify", "cert", "trust_env", "max_redirects"):
            setattr(twin.http, name, copy.copy(getattr(self.http, name)))
        twin.http.adapters = self.http.adapters
        return twin

    def __enter__(self) -> "LiveClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.http.close()

    def start(self, *, goal: Optional[str] = None, filename: Optional[str] = None,
              suffix: Optional[str] = None, ttl_seconds: Optional[int] = None,
              sample_rate: Optional[int] = None, channels: Optional[int] = None,
              language: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> LiveSession:
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
        body = protocol.start_body(dict(
            goal=goal, filename=filename, suffix=suffix, ttl_seconds=ttl_seconds,
            sample_rate=sample_rate, channels=channels, language=language, metadata=metadata))
        response = self._retrying(lambda: self._send("POST", protocol.START_PATH, json=body),
                                  only=errors.APIError)
        return LiveSession.from_dict(protocol.answer_json(response))

    def upload(self, session: SessionRef, chunk_seq: int, data: bytes) -> ChunkReceipt:
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
        url = protocol.endpoint(session, "chunk")
        form, files = protocol.chunk_form(chunk_seq, data)

        def attempt():
            try:
                response = self._send("POST", url, data=form, files=files)
            except ChunkOutOfOrder as error:
                receipt = protocol.landed(session, chunk_seq, error)
                if receipt is None:
                    raise
                return receipt
            return ChunkReceipt.from_dict(protocol.answer_json(response))

        return self._retrying(attempt)

    def events(self, session: SessionRef, last_event_id: Optional[int] = None) -> Iterator[Event]:
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
        url = protocol.endpoint(session, "events")
        reconnects = protocol.Reconnects(self.reconnect_tries, last_event_id)
        while True:
            parser = None
            cause: HarkenError
            try:
                with self._send("GET", url, headers=protocol.event_headers(reconnects.last_event_id),
                                stream=True, timeout=self.events_timeout) as response:
                    parser = SSEParser(response.iter_content(chunk_size=None))
                    for event in _typed(parser):
                        reconnects.received(event.id)
                        yield event
                        if is_terminal(event):
                            return
                cause = ConnectionFailed("the server closed the event stream before `done`")
            except requests.RequestException as exc:
                cause = ConnectionFailed(f"event stream dropped: {exc}")
                cause.__cause__ = exc
            except HarkenError as error:
                cause = error
            if parser is not None and parser.retry_ms is not None:
                reconnects.retry_ms = parser.retry_ms
            time.sleep(reconnects.dropped(cause))

    def control(self, session: SessionRef, action: str, reason: Optional[str] = None) -> Dict[str, Any]:
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
        body = protocol.control_body(action, reason)
        url = protocol.endpoint(session, "control")
        return protocol.answer_json(self._retrying(lambda: self._send("POST", url, json=body)))

    def state(self, session: SessionRef) -> Dict[str, Any]:
        """The session's state (a Harken extension): status, next_chunk_seq, total_bytes, audio_seconds, …

        Args:
            session: a `LiveSession` or a session id.

        Raises:
            APIError: `SessionNotFound` or `SessionExpired`; the last `TransportError` once the retries are spent.
        """
        url = protocol.state_path(session)
        return protocol.answer_json(self._retrying(lambda: self._send("GET", url)))

    def health(self) -> Dict[str, Any]:
        """The server's liveness answer (a Harken extension, `GET /healthz`): ``status``, ``version``, ``pipeline``, …

        Asked once, not retried: it says what the server is now.

        Raises:
            APIError: `NotFound` from a server without the extension.
            TransportError: no answer (`ConnectionFailed` when nothing listens at the URL).
        """
        return protocol.answer_json(self._send("GET", protocol.HEALTH_PATH))

    def stream(self, source: AudioInput, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
               realtime: bool = False, **options: Any) -> LiveStream:
        """Start a session for a live or recorded source, upload it from a background thread and iterate its events.

        Args:
            source: a path; bytes; a binary file-like object (a file, a pipe,
                ``sys.stdin.buffer``, ``socket.makefile("rb")``, ``BytesIO``) read with
                ``read(chunk_bytes)`` until it ends; or an iterable of byte chunks (a
                generator fed by a microphone), each sent as it comes. A file name's
                extension is sent as ``suffix`` unless ``suffix`` is given.
            chunk_bytes: the most bytes per chunk.
            realtime: pace a recording's chunks at the audio's own speed, as a microphone
                would deliver them (see `client.audio` for how the speed is found).
            **options: `start()` arguments (``goal``, ``metadata``, ``sample_rate``, …) and
                the stream's (``duration_s``, ``on_chunk``, ``finalize_at``, ``cancel_at``;
                see `client.streaming.StreamPlan`).

        Returns:
            A `LiveStream`: iterate it for the events. Chunks are numbered, retried and
            slowed down on back-pressure by the upload thread; when the source ends the
            session is finalized. A failure of the upload thread is raised from the
            iteration as `UploadFailed`.

        Raises:
            TypeError: a source of no known kind, or an unknown option.
            ValueError: ``realtime`` for a source whose speed cannot be known.
        """
        return LiveStream(self, source, chunk_bytes=chunk_bytes, realtime=realtime, **options)

    stream_file = stream

    def analyze_file(self, source: AudioInput, goal: Optional[str] = None,
                     metadata: Optional[Dict[str, Any]] = None,
                     language: Optional[str] = None) -> AnalysisResult:
        """Analyse a whole recording in one request (`POST /analyze`) and return its document.

        The file is streamed from disk as it is sent, never read whole into memory. The
        server answers once the analysis is done (faster than real time, but minutes for a
        long call): the wait is bounded by ``analyze_read_timeout_s``.

        Args:
            source: a path; bytes; or a binary file-like object (read from where it stands).
                Any container the server decodes: mp4, mov, webm, mp3, wav, m4a, aac, ogg, flac.
            goal: the analysis focus, echoed in the document and its summary.
            metadata: a JSON object echoed back in the document.
            language: speech language (server default ``en``).

        Returns:
            An `AnalysisResult`: `document` is the server's whole ``AnalysisDocument``;
            `utterances`, `moments`, `summary`, `transcript` read as `ConversationResult`'s.

        Raises:
            APIError: `UnreadableRecording` or `UnsupportedMediaType` (415), `PayloadTooLarge`
                or `AudioTooLong` (413), `EmptyFile` or `ValidationFailed` (422),
                `PipelineUnavailable`, `AnalysisFailed`; `AnalysisQueueFull` (and a loading
                pipeline, both with ``Retry-After``) is retried while retries remain when the
                source can be sent again (a path, bytes, a seekable file).
            TransportError: the connection failed or no answer came in time; not retried, as
                the analysis may have run (the server stops it when the connection drops).
        """
        upload = FileUpload(source, protocol.analyze_fields(goal, metadata, language))
        response = self._retrying(
            lambda: self._post_file(protocol.ANALYZE_PATH, upload, timeout=self.analyze_timeout),
            only=upload.retry_on)
        return AnalysisResult(protocol.answer_json(response))

    def stream_file_analysis(self, source: AudioInput, goal: Optional[str] = None,
                             metadata: Optional[Dict[str, Any]] = None,
                             language: Optional[str] = None) -> Iterator[Event]:
        """Analyse a whole recording (`POST /analyze/stream`), iterating its events as the server finds them.

        The same upload as `analyze_file`, answered with the live catalog: ``status`` with
        progress 0→1, each ``final_transcript`` followed by its ``emotion`` and ``cognitive``,
        transitions and moments, ``summary_update``, then ``done`` (or a fatal ``error``
        ``analysis_failed``). The request is sent on the first ``next()``.

        Args:
            source, goal, metadata, language: as `analyze_file`.

        Returns:
            A generator of typed events (`client.events`), ending after `Done` or a fatal
            `Error`. Closing it (``close()``, leaving a ``with contextlib.closing(…)``, or
            dropping it) closes the connection, and the server stops the analysis.

        Raises:
            APIError: the refusals of `analyze_file`, from the first ``next()``.
            TransportError: the stream broke, or was silent longer than
                ``events_read_timeout_s`` (the server sends keepalives meanwhile); there is
                no resuming a file's analysis: send it again.
        """
        upload = FileUpload(source, protocol.analyze_fields(goal, metadata, language))
        return self._analysis_events(upload)

    def _analysis_events(self, upload):
        url = protocol.ANALYZE_STREAM_PATH
        response = self._retrying(
            lambda: self._post_file(url, upload, stream=True, timeout=self.events_timeout,
                                    headers=protocol.event_headers(None)),
            only=upload.retry_on)
        with response:
            try:
                for event in _typed(SSEParser(response.iter_content(chunk_size=None))):
                    yield event
                    if is_terminal(event):
                        return
            except requests.RequestException as exc:
                raise ConnectionFailed(f"POST {url}: the stream broke: {exc}",
                                       request=exc.request) from exc
        raise ConnectionFailed(f"POST {url}: the server closed the stream before `done`")

    def _post_file(self, url, upload, headers=None, **kwargs):
        """POST one attempt's multipart body; requests gets it sized (Content-Length) when its length is known."""
        body = upload.body()
        try:
            return self._send("POST", url, data=body if body.length is not None else iter(body),
                              headers={**body.headers, **(headers or {})}, **kwargs)
        finally:
            body.close()

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
        """Call `attempt()` until it succeeds, or fails in a way `self.retry` will not retry (or the client is halted)."""
        attempts = protocol.Attempts(self.retry)
        while True:
            try:
                return attempt()
            except only as error:
                if self._halt.wait(attempts.wait_after(error)):
                    raise

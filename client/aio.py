"""`AsyncLiveClient`: the live API under asyncio, on httpx and httpx-sse (``pip install 'harken[async]'``).

It is the sync `LiveClient` with awaits: the same event catalog (`client.events`), errors
(`client.errors`), `RetryPolicy`, and the request shapes, retry, back-pressure and
reconnect rules of `client.protocol`; only the I/O differs. The sync client stays the
primary interface.
"""
import asyncio
import contextlib
import logging
import time
from typing import Any, AsyncGenerator, AsyncIterable, AsyncIterator, Dict, Optional, Union
from urllib.parse import urljoin

try:
    import httpx
    from httpx_sse import EventSource
except ImportError as missing:
    raise ImportError(f"AsyncLiveClient needs httpx and httpx-sse ({missing}): "
                      "pip install 'harken[async]'") from missing

from . import errors, protocol
from .errors import ChunkOutOfOrder, ConnectionFailed, HarkenError, RequestTimeout
from .events import Event, is_terminal, parse_event
from .multipart import FileUpload
from .protocol import (DEFAULT_ANALYZE_READ_TIMEOUT_S, DEFAULT_CHUNK_BYTES,
                       DEFAULT_EVENTS_READ_TIMEOUT_S, DEFAULT_RECONNECT_TRIES, DEFAULT_TIMEOUT,
                       ChunkReceipt, LiveSession, SessionRef)
from .result import AnalysisResult
from .retry import RetryPolicy
from .sources import AudioInput, pieces
from .streaming import StreamPlan

log = logging.getLogger(__name__)

__all__ = ["AsyncLiveClient", "AsyncLiveStream"]


class AsyncLiveClient:
    """An asyncio client for one Harken (or Live Capture API) server.

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:8000``.
        api_key: sent as ``X-API-Key`` on every request when given.
        timeout: ``(connect_s, read_s)`` (or one number for both) for every request but the
            event stream.
        events_read_timeout_s: longest silence on the event stream before it counts as
            dropped and is reconnected.
        analyze_read_timeout_s: longest wait for `analyze_file`'s answer once the file is sent.
        retry: the `RetryPolicy` for start, uploads and control requests.
        reconnect_tries: reconnects allowed in a row before `events()` raises `ReconnectFailed`.
        client: an `httpx.AsyncClient` to use instead of a new one (closed with this client).

    Use it as an async context manager, or call `aclose()`. One instance may serve many
    tasks at once: httpx's AsyncClient is safe to share between tasks of one event loop.
    """

    def __init__(self, base_url: str, api_key: Optional[str] = None,
                 timeout: Union[float, tuple] = DEFAULT_TIMEOUT,
                 events_read_timeout_s: float = DEFAULT_EVENTS_READ_TIMEOUT_S,
                 analyze_read_timeout_s: float = DEFAULT_ANALYZE_READ_TIMEOUT_S,
                 retry: Optional[RetryPolicy] = None, reconnect_tries: int = DEFAULT_RECONNECT_TRIES,
                 client: Optional[httpx.AsyncClient] = None):
        self.base_url = base_url.rstrip("/") + "/"
        connect_s, read_s = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.timeout = httpx.Timeout(read_s, connect=connect_s)
        self.events_timeout = httpx.Timeout(events_read_timeout_s, connect=connect_s)
        self.analyze_timeout = httpx.Timeout(analyze_read_timeout_s, connect=connect_s)
        self.retry = retry or RetryPolicy()
        self.reconnect_tries = reconnect_tries
        self.http = client or httpx.AsyncClient()
        if api_key:
            self.http.headers["X-API-Key"] = api_key

    async def __aenter__(self) -> "AsyncLiveClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.http.aclose()

    async def start(self, *, goal: Optional[str] = None, filename: Optional[str] = None,
                    suffix: Optional[str] = None, ttl_seconds: Optional[int] = None,
                    sample_rate: Optional[int] = None, channels: Optional[int] = None,
                    language: Optional[str] = None,
                    metadata: Optional[Dict[str, Any]] = None) -> LiveSession:
        """Start a live session; the arguments and errors are `LiveClient.start`'s."""
        body = protocol.start_body(dict(
            goal=goal, filename=filename, suffix=suffix, ttl_seconds=ttl_seconds,
            sample_rate=sample_rate, channels=channels, language=language, metadata=metadata))
        response = await self._retrying(lambda: self._send("POST", protocol.START_PATH, json=body),
                                        only=errors.APIError)
        return LiveSession.from_dict(protocol.answer_json(response))

    async def upload(self, session: SessionRef, chunk_seq: int, data: bytes) -> ChunkReceipt:
        """Upload one chunk; retried, de-duplicated and slowed down on 429 as `LiveClient.upload`."""
        url = protocol.endpoint(session, "chunk")
        form, files = protocol.chunk_form(chunk_seq, data)

        async def attempt():
            try:
                response = await self._send("POST", url, data=form, files=files)
            except ChunkOutOfOrder as error:
                receipt = protocol.landed(session, chunk_seq, error)
                if receipt is None:
                    raise
                return receipt
            return ChunkReceipt.from_dict(protocol.answer_json(response))

        return await self._retrying(attempt)

    async def events(self, session: SessionRef,
                     last_event_id: Optional[int] = None) -> AsyncIterator[Event]:
        """The session's events as typed objects, reconnecting with ``Last-Event-ID`` as `LiveClient.events`.

        Yields:
            One `client.events.Event` subclass per SSE event; stops after `Done` or a fatal `Error`.

        Raises:
            ReconnectFailed: `reconnect_tries` reconnects in a row failed.
            APIError: a reconnect was refused for good, e.g. `SessionNotFound`.
        """
        url = protocol.endpoint(session, "events")
        reconnects = protocol.Reconnects(self.reconnect_tries, last_event_id)
        while True:
            cause: HarkenError
            try:
                request = self.http.build_request(
                    "GET", urljoin(self.base_url, url), timeout=self.events_timeout,
                    headers=protocol.event_headers(reconnects.last_event_id))
                async with self._open_stream(request) as response:
                    async for event in _typed(response, reconnects):
                        reconnects.received(event.id)
                        yield event
                        if is_terminal(event):
                            return
                cause = ConnectionFailed("the server closed the event stream before `done`")
            except httpx.TransportError as exc:
                cause = ConnectionFailed(f"event stream dropped: {exc!r}")
                cause.__cause__ = exc
            except HarkenError as error:
                cause = error
            await asyncio.sleep(reconnects.dropped(cause))

    async def control(self, session: SessionRef, action: str,
                      reason: Optional[str] = None) -> Dict[str, Any]:
        """Send ``finalize``, ``cancel`` or ``keepalive``, as `LiveClient.control`."""
        body = protocol.control_body(action, reason)
        url = protocol.endpoint(session, "control")
        return protocol.answer_json(await self._retrying(lambda: self._send("POST", url, json=body)))

    async def state(self, session: SessionRef) -> Dict[str, Any]:
        """The session's state (a Harken extension), as `LiveClient.state`."""
        url = protocol.state_path(session)
        return protocol.answer_json(await self._retrying(lambda: self._send("GET", url)))

    async def health(self) -> Dict[str, Any]:
        """The server's liveness answer (`GET /healthz`), asked once, as `LiveClient.health`."""
        return protocol.answer_json(await self._send("GET", protocol.HEALTH_PATH))

    def stream(self, source: Union[AudioInput, AsyncIterable[bytes]],
               chunk_bytes: int = DEFAULT_CHUNK_BYTES, realtime: bool = False,
               **options: Any) -> "AsyncLiveStream":
        """A live session fed from `source` by a task while the caller iterates its events.

        Args:
            source: what `LiveClient.stream` takes, or an async iterable of byte chunks.
                A blocking source (a file, a pipe, a sync generator) is read in a worker
                thread, never on the event loop.
            chunk_bytes, realtime, **options: as `LiveClient.stream`.

        Returns:
            An `AsyncLiveStream`: ``async with client.stream(...) as stream: async for event
            in stream: …`` (the ``async with`` cancels the session if the loop is left early).
        """
        return AsyncLiveStream(self, source, chunk_bytes=chunk_bytes, realtime=realtime, **options)

    stream_file = stream

    async def analyze_file(self, source: AudioInput, goal: Optional[str] = None,
                           metadata: Optional[Dict[str, Any]] = None,
                           language: Optional[str] = None) -> AnalysisResult:
        """Analyse a whole recording in one request (`POST /analyze`), as `LiveClient.analyze_file`.

        The file is read in a worker thread as it is sent, never on the event loop and never whole.
        """
        upload = FileUpload(source, protocol.analyze_fields(goal, metadata, language))

        async def attempt():
            body = upload.body()
            return await self._send("POST", protocol.ANALYZE_PATH, content=_in_thread(body),
                                    headers=body.headers, timeout=self.analyze_timeout)

        response = await self._retrying(attempt, only=upload.retry_on)
        return AnalysisResult(protocol.answer_json(response))

    def stream_file_analysis(self, source: AudioInput, goal: Optional[str] = None,
                             metadata: Optional[Dict[str, Any]] = None,
                             language: Optional[str] = None) -> AsyncGenerator[Event, None]:
        """The events of a whole recording's analysis (`POST /analyze/stream`), as `LiveClient.stream_file_analysis`.

        Returns:
            An async generator: ``async with contextlib.aclosing(client.stream_file_analysis(
            path)) as events: async for event in events: …``; closing it closes the
            connection and the server stops the analysis.
        """
        upload = FileUpload(source, protocol.analyze_fields(goal, metadata, language))
        return self._analysis_events(upload)

    async def _analysis_events(self, upload):
        url = protocol.ANALYZE_STREAM_PATH
        opened = contextlib.AsyncExitStack()
        async with opened:
            response = await self._retrying(lambda: opened.enter_async_context(self._open_stream(
                self._file_request(url, upload, self.events_timeout, protocol.event_headers(None)))),
                only=upload.retry_on)
            try:
                async for event in _typed(response):
                    yield event
                    if is_terminal(event):
                        return
            except httpx.TransportError as exc:
                raise ConnectionFailed(f"POST {url}: the stream broke: {exc!r}",
                                       request=exc.request) from exc
        raise ConnectionFailed(f"POST {url}: the server closed the stream before `done`")

    def _file_request(self, url, upload, timeout, headers=None):
        """A POST of one attempt's multipart body, read from its source in a worker thread."""
        body = upload.body()
        return self.http.build_request("POST", urljoin(self.base_url, url), timeout=timeout,
                                       content=_in_thread(body),
                                       headers={**body.headers, **(headers or {})})

    @contextlib.asynccontextmanager
    async def _open_stream(self, request):
        """Send `request` and hold its response open (an error answer raised as a `HarkenError`)."""
        response = await self._call(request.method, request.url, self.http.send(request, stream=True))
        try:
            if response.status_code >= 400:
                await response.aread()
                raise errors.from_response(response)
            yield response
        finally:
            await response.aclose()

    async def _send(self, method, url, **kwargs):
        """One request; the error body, or the network's failure, raised as a `HarkenError`."""
        kwargs.setdefault("timeout", self.timeout)
        url = urljoin(self.base_url, url)
        response = await self._call(method, url, self.http.request(method, url, **kwargs))
        if response.status_code >= 400:
            raise errors.from_response(response)
        return response

    @staticmethod
    async def _call(method, url, sending):
        try:
            return await sending
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"{method} {url}: no answer in time ({exc!r})",
                                 request=exc.request) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{method} {url}: {exc!r}", request=exc.request) from exc

    async def _retrying(self, attempt, only=HarkenError):
        """Await `attempt()` until it succeeds, or fails in a way `self.retry` will not retry."""
        attempts = protocol.Attempts(self.retry)
        while True:
            try:
                return await attempt()
            except only as error:
                await asyncio.sleep(attempts.wait_after(error))


async def _typed(response, reconnects: Optional[protocol.Reconnects] = None) -> AsyncIterator[Event]:
    """The typed events of an SSE response; a ``retry:`` is noted in `reconnects` when given."""
    async for message in EventSource(response).aiter_sse():
        if message.retry is not None and reconnects is not None:
            reconnects.retry_ms = message.retry
        if not message.data:  # a `retry:` alone; sseclient-py skips these too
            continue
        yield parse_event(message.event, message.data, message.id or None)


async def _in_thread(body) -> AsyncIterator[bytes]:
    """`body`'s bytes, each piece read in a worker thread so a slow disk or pipe never holds the loop."""
    pieces = iter(body)
    try:
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            yield piece
    finally:
        body.close()


class AsyncLiveStream(StreamPlan):
    """``async with`` it, then ``async for`` it (once) for the events while a task uploads the source and finalizes.

    Made by `AsyncLiveClient.stream` (see `client.streaming.StreamPlan` for its options
    and attributes). A failure of the upload task is raised from the iteration as
    `UploadFailed`; leaving the ``async with`` before the end cancels the session.
    """

    def __init__(self, client: AsyncLiveClient, source, **options: Any):
        is_async = isinstance(source, AsyncIterable)
        super().__init__(() if is_async else source, **options)
        self._async_items = source if is_async else None
        self.client = client
        self._events: Optional[AsyncGenerator[Event, None]] = None
        self._upload_task: Optional[asyncio.Task] = None

    async def __aenter__(self) -> "AsyncLiveStream":
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._events is not None:
            await self._events.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._events is not None:
            raise RuntimeError("a stream can be iterated only once")
        self._events = self._run()
        return self._events

    async def _run(self):
        self.session = await self.client.start(**self.start_options)
        upload = self._upload_task = asyncio.create_task(
            self._upload(), name=f"harken-upload-{self.session.session_id}")
        watchdog = asyncio.create_task(self._deadline()) if self.cancel_at is not None else None
        try:
            try:
                async with contextlib.aclosing(self.client.events(self.session)) as events:
                    async for event in events:
                        if not self.passes(event):
                            break
                        yield event
            except HarkenError as error:
                await self._end(upload, error)
            await self._end(upload)
        finally:
            for task in (upload, watchdog):
                if task is not None:
                    task.cancel()
            if self.abandoned:
                await _cancel(self.client, self.session, "the client stopped reading events")

    async def _end(self, upload, error=None):
        if self.upload_error is not None:
            await asyncio.wait({upload})  # it is sending the cancel: once this raises, the session is cancelled
        self.end(error)

    async def _chunks(self):
        """The source's chunks; a blocking source is read in a worker thread."""
        if self._async_items is not None:
            async for item in self._async_items:
                for piece in pieces(item, self.chunk_bytes):
                    yield piece
            return
        chunks = self.source.chunks
        while (data := await asyncio.to_thread(next, chunks, None)) is not None:
            yield data

    async def _upload(self):
        """The upload task: every chunk in order (paced if asked), then finalize; any failure is kept for the caller."""
        try:
            self.began = time.monotonic()
            async for data in self._chunks():
                send_at = self.send_at(data)
                if send_at is None:
                    break
                await asyncio.sleep(max(0.0, send_at - time.monotonic()))
                self.sent(await self.client.upload(self.session, self.chunks_sent, data), data)
            await self.client.control(self.session, "finalize", reason=self.finalize_reason)
        except Exception as error:  # the task ends here: the caller must hear of any failure
            self.upload_error = error
            await _cancel(self.client, self.session, f"upload failed: {error}")

    async def _deadline(self):
        await asyncio.sleep(max(0.0, self.cancel_at - time.monotonic()))
        self.deadline_hit = True
        self._upload_task.cancel()
        await _cancel(self.client, self.session, "deadline reached")


async def _cancel(client, session, reason):
    try:
        await client.control(session, "cancel", reason=reason)
    except HarkenError as error:
        log.info("cancel of %s not needed or failed: %s", session.session_id, error)

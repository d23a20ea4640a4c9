"""`LiveStream`: audio from any source through one live session, uploaded from a background thread while the caller reads events.

`StreamPlan` holds what the sync and the async streams share: the source, the start
options it implies, the real-time schedule and the counters a caller reads afterwards.
"""
import logging
import threading
import time
from typing import Any, Callable, Iterator, Optional

from .audio import Pacing, pacing
from .errors import HarkenError, UploadFailed
from .events import Event, is_terminal
from .protocol import ChunkReceipt, LiveSession, start_body
from .sources import AudioInput, audio_source

log = logging.getLogger(__name__)

OnChunk = Callable[[ChunkReceipt, int, Optional[int]], Any]


class StreamPlan:
    """One stream's source, start options, schedule and progress, whatever does its I/O.

    Args:
        source: a path, bytes, a binary file-like object or an iterable of byte chunks
            (see `client.sources`).
        chunk_bytes: the most bytes per chunk.
        realtime: pace the chunks at the audio's own speed, as a microphone would deliver
            them (see `client.audio`); a live source (a pipe, a microphone) needs no pacing.
        duration_s: the audio's duration, to pace compressed audio exactly.
        on_chunk: called after each accepted chunk as ``on_chunk(receipt, bytes_sent,
            total_bytes)``; ``total_bytes`` is None when the source's size is unknown.
        finalize_at: a `time.monotonic()` time after which no more chunks are sent: the
            session is finalized with the audio sent so far (`truncated` is then true).
        cancel_at: a `time.monotonic()` time at which the session is cancelled if it has not
            finished; the events then end with an ``error`` ``cancelled`` (`deadline_hit` is true).
        **start_options: `start()`'s arguments; ``filename`` and ``suffix`` default to the
            source's file name and its extension.

    Attributes:
        session: the `LiveSession`, once iteration has started it.
        total_bytes: the source's size when known, else None; bytes_sent: how much of it the
            server has accepted; chunks_sent: how many chunks.
    """

    def __init__(self, source: AudioInput, *, chunk_bytes: int, realtime: bool = False,
                 duration_s: Optional[float] = None, on_chunk: Optional[OnChunk] = None,
                 finalize_at: Optional[float] = None, cancel_at: Optional[float] = None,
                 **start_options: Any):
        self.source = audio_source(source, chunk_bytes)
        self.chunk_bytes = chunk_bytes
        if self.source.name and not start_options.get("filename"):
            start_options["filename"] = self.source.name
        if not start_options.get("suffix"):
            start_options["suffix"] = self.source.suffix
        self.start_options = start_body(start_options)
        self.pace: Optional[Pacing] = None
        if realtime:
            self.pace = pacing(self.source.path, self.start_options.get("suffix"),
                               sample_rate=self.start_options.get("sample_rate"),
                               channels=self.start_options.get("channels"),
                               duration_s=duration_s, total_bytes=self.source.total_bytes)
        self.on_chunk = on_chunk
        self.finalize_at = finalize_at
        self.cancel_at = cancel_at
        self.total_bytes = self.source.total_bytes
        self.bytes_sent = 0
        self.chunks_sent = 0
        self.session: Optional[LiveSession] = None
        self.truncated = False
        self.deadline_hit = False
        self.finished = False
        self.upload_error: Optional[BaseException] = None
        self.began = 0.0

    def send_at(self, data: bytes) -> Optional[float]:
        """The `time.monotonic()` time to send `data`, the next chunk; None when `finalize_at` stops it."""
        at = self.began + self.pace.seconds_at(self.bytes_sent + len(data)) if self.pace else 0.0
        if self.finalize_at is not None and max(at, time.monotonic()) >= self.finalize_at:
            self.truncated = True
            return None
        return at

    def sent(self, receipt: ChunkReceipt, data: bytes) -> None:
        """Count an accepted chunk and tell `on_chunk`."""
        self.chunks_sent += 1
        self.bytes_sent += len(data)
        if self.on_chunk is not None:
            self.on_chunk(receipt, self.bytes_sent, self.total_bytes)

    @property
    def finalize_reason(self) -> Optional[str]:
        """The reason sent with the closing finalize."""
        return "deadline: audio truncated" if self.truncated else None

    def passes(self, event: Event) -> bool:
        """Whether to hand `event` to the caller: not once the upload failed; notes a terminal event."""
        if self.upload_error is not None:
            return False
        self.finished = is_terminal(event)
        return True

    def end(self, error: Optional[HarkenError] = None) -> None:
        """After the events: raise `UploadFailed` when the upload failed first, else the stream's own `error`."""
        if self.upload_error is not None and not self.finished:
            raise UploadFailed(f"upload failed: {self.upload_error}") from self.upload_error
        if error is not None:
            raise error

    @property
    def abandoned(self) -> bool:
        """True when the events stopped with the session still running: it must be cancelled."""
        return not (self.finished or self.upload_error or self.deadline_hit)


class LiveStream(StreamPlan):
    """Iterate it (once) for the session's events while a background thread uploads the source and finalizes.

    Made by `LiveClient.stream` (see `StreamPlan` for its options). The upload thread uses
    a `requests.Session` of its own (sharing the connection pools), so the caller's
    thread and the upload thread never share one: requests does not promise that is safe.
    A failure of the upload thread is raised from the iteration as `UploadFailed`;
    leaving the loop early cancels the session.
    """

    def __init__(self, client, source: AudioInput, **options: Any):
        super().__init__(source, **options)
        self.client = client
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Event]:
        if self.session is not None:
            raise RuntimeError("a stream can be iterated only once")
        self.session = self.client.start(**self.start_options)
        uploader = threading.Thread(target=self._upload, args=(self.client.twin(halt=self._stop),), daemon=True,
                                    name=f"harken-upload-{self.session.session_id}")
        watchdog = None
        if self.cancel_at is not None:
            watchdog = threading.Timer(max(0.0, self.cancel_at - time.monotonic()), self._deadline)
            watchdog.daemon = True
            watchdog.start()
        uploader.start()
        try:
            try:
                for event in self.client.events(self.session):
                    if not self.passes(event):
                        break
                    yield event
            except HarkenError as error:
                self._end(uploader, error)
            self._end(uploader)
        finally:
            self._stop.set()
            if watchdog is not None:
                watchdog.cancel()
            if self.abandoned:
                _cancel(self.client, self.session, "the client stopped reading events")

    def _end(self, uploader, error=None):
        if self.upload_error is not None:
            uploader.join()  # it is sending the cancel: once this raises, the session is cancelled
        self.end(error)

    def _upload(self, client):
        """The upload thread: every chunk in order (paced if asked), then finalize; any failure is kept for the caller."""
        try:
            self.began = time.monotonic()
            for data in self.source.chunks:
                send_at = self.send_at(data)
                if send_at is None:
                    break
                if self._stop.wait(max(0.0, send_at - time.monotonic())):
                    return
                self.sent(client.upload(self.session, self.chunks_sent, data), data)
            if not self._stop.is_set():
                client.control(self.session, "finalize", reason=self.finalize_reason)
        except Exception as error:  # the thread dies here: the caller must hear of any failure
            if self._stop.is_set():
                return
            self.upload_error = error
            _cancel(client, self.session, f"upload failed: {error}")
        finally:
            _close(self.source.chunks)

    def _deadline(self):
        """The watchdog thread: cancel on a twin of the client of its own."""
        self.deadline_hit = True
        self._stop.set()
        _cancel(self.client.twin(), self.session, "deadline reached")


def _close(chunks):
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _cancel(client, session, reason):
    try:
        client.control(session, "cancel", reason=reason)
    except HarkenError as error:
        log.info("cancel of %s not needed or failed: %s", session.session_id, error)

"""`FileStream`: one recorded file through a live session, uploaded from a background thread while the caller reads events."""
import logging
import os
import threading
import time

from .audio import pacing
from .errors import HarkenError, UploadFailed
from .events import is_terminal

log = logging.getLogger(__name__)


class FileStream:
    """Iterate it (once) for the session's events while a background thread uploads the file and finalizes.

    Made by `LiveClient.stream_file`. Beyond `start()`'s options it takes:
        duration_s: the file's duration, to pace compressed audio in real time exactly.
        on_chunk: called from the upload thread as ``on_chunk(receipt, bytes_sent, total_bytes)``.
        finalize_at: a `time.monotonic()` time after which no more chunks are sent: the
            session is finalized with the audio sent so far (`truncated` is then true).
        cancel_at: a `time.monotonic()` time at which the session is cancelled if it has not
            finished; the events then end with an ``error`` ``cancelled`` (`deadline_hit` is true).

    Attributes:
        session: the `LiveSession`, once iteration has started it.
        total_bytes: the file's size; bytes_sent: how much of it the server has accepted.
    """

    def __init__(self, client, path, *, chunk_bytes, realtime, duration_s=None, on_chunk=None,
                 finalize_at=None, cancel_at=None, **start_options):
        if chunk_bytes <= 0:
            raise ValueError("chunk_bytes must be positive")
        self.client = client
        self.path = os.fspath(path)
        self.chunk_bytes = chunk_bytes
        self.realtime = realtime
        self.duration_s = duration_s
        self.on_chunk = on_chunk
        self.finalize_at = finalize_at
        self.cancel_at = cancel_at
        start_options.setdefault("filename", os.path.basename(self.path))
        if not start_options.get("suffix"):
            start_options["suffix"] = os.path.splitext(self.path)[1].lower() or None
        self.start_options = start_options
        self.total_bytes = os.path.getsize(self.path)
        self.bytes_sent = 0
        self.session = None
        self.truncated = False
        self.deadline_hit = False
        self._stop = threading.Event()
        self._error = None

    def __iter__(self):
        if self.session is not None:
            raise RuntimeError("a FileStream can be iterated only once")
        self.session = self.client.start(**self.start_options)
        uploader = threading.Thread(target=self._upload, daemon=True,
                                    name=f"harken-upload-{self.session.session_id}")
        watchdog = None
        if self.cancel_at is not None:
            watchdog = threading.Timer(max(0.0, self.cancel_at - time.monotonic()), self._deadline)
            watchdog.daemon = True
            watchdog.start()
        uploader.start()
        finished = False
        try:
            try:
                for event in self.client.events(self.session):
                    if self._error is not None:
                        break
                    finished = is_terminal(event)
                    yield event
            except HarkenError:
                if self._error is None:
                    raise
            if self._error is not None and not finished:
                raise UploadFailed(f"upload failed: {self._error}") from self._error
        finally:
            self._stop.set()
            if watchdog is not None:
                watchdog.cancel()
            if not (finished or self._error or self.deadline_hit):
                self._cancel("the client stopped reading events")

    def _upload(self):
        """The upload thread: every chunk in order (paced if asked), then finalize; any failure is kept for the caller."""
        try:
            pace = None
            if self.realtime:
                pace = pacing(self.path, self.start_options["suffix"],
                              sample_rate=self.start_options.get("sample_rate"),
                              channels=self.start_options.get("channels"),
                              duration_s=self.duration_s)
            began = time.monotonic()
            with open(self.path, "rb") as audio:
                chunk_seq = 0
                while data := audio.read(self.chunk_bytes):
                    send_at = began + pace.seconds_at(self.bytes_sent + len(data)) if pace else 0.0
                    if self.finalize_at is not None and max(send_at, time.monotonic()) >= self.finalize_at:
                        self.truncated = True
                        break
                    if self._stop.wait(max(0.0, send_at - time.monotonic())):
                        return
                    receipt = self.client.upload(self.session, chunk_seq, data)
                    chunk_seq += 1
                    self.bytes_sent += len(data)
                    if self.on_chunk is not None:
                        self.on_chunk(receipt, self.bytes_sent, self.total_bytes)
            if not self._stop.is_set():
                self.client.control(self.session, "finalize",
                                    reason="deadline: audio truncated" if self.truncated else None)
        except Exception as error:  # the thread dies here: the caller must hear of any failure
            if self._stop.is_set():
                return
            self._error = error
            self._cancel(f"upload failed: {error}")

    def _deadline(self):
        self.deadline_hit = True
        self._stop.set()
        self._cancel("deadline reached")

    def _cancel(self, reason):
        try:
            self.client.control(self.session, "cancel", reason=reason)
        except HarkenError as error:
            log.info("cancel of %s not needed or failed: %s", self.session.session_id, error)

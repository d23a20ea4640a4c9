"""One live session: its state machine, chunk ledger, decoder, analysis stream and event log.

Every method runs in the gevent hub, except decoding, which runs in the decode pool's
threads (app/audio/offload.py) while the chunk's greenlet waits. A per-session gevent lock,
held across that wait, keeps concurrent chunk uploads of the same session in order;
nothing here blocks on models.
"""
import hashlib
import logging
import time

import gevent.lock

from client import events

from . import errors
from .audio import TARGET_RATE_HZ, DecodeLimitExceeded, UndecodableAudio
from .chunkdecode import ChunkDecoder
from .eventlog import EventLog
from .pipeline import SessionContext
from .timefmt import iso_utc

WAITING, INGESTING, PROCESSING = "waiting_media", "ingesting", "processing"
COMPLETED, CANCELLED, EXPIRED, FAILED = "completed", "cancelled", "expired", "failed"
ACTIVE_STATES = (WAITING, INGESTING)
FINISHED_STATES = (COMPLETED, CANCELLED, EXPIRED, FAILED)
ALL_STATES = ACTIVE_STATES + (PROCESSING,) + FINISHED_STATES

log = logging.getLogger(__name__)


class SessionLog(logging.LoggerAdapter):
    """Puts the session id on every log line the session writes."""

    def process(self, msg, kwargs):
        kwargs["extra"] = {**kwargs.get("extra", {}), "session_id": self.extra["session_id"]}
        return f"[{self.extra['session_id']}] {msg}", kwargs


class Session:
    """A live capture session; see SPEC §2.6 for its states."""

    keeps_checkpoints = False  # AnalysisSink: in memory, nothing outlives this process to resume

    def __init__(self, *, session_id, conversation_id, owner, options, settings, pipeline, metrics, decoding):
        self.session_id = session_id
        self.conversation_id = conversation_id
        self.owner = owner
        self.options = options
        self.ttl_s = options.ttl_seconds
        self.settings = settings
        self.metrics = metrics
        self.status = WAITING
        self.created_at = time.time()
        self.expires_at = self.created_at + self.ttl_s
        self.closed_at = None
        self.next_chunk_seq = 0
        self.total_bytes = 0
        self.received_samples = 0
        self.analysed_s = 0.0
        self.consumer = None
        self.log = SessionLog(log, {"session_id": session_id})
        self.events = EventLog(settings.event_log_max)
        self._ledger = {}
        self._lock = gevent.lock.RLock()
        self._decoder = ChunkDecoder(options, settings, decoding, metrics)
        self._last_status_at = 0.0
        context = SessionContext(session_id, conversation_id, options.language, options.goal,
                                 options.metadata)
        self._stream = pipeline.open(context, self)
        self._publish(events.Status(phase=WAITING, detail="session started; waiting for audio"))

    # -- what the API reads ------------------------------------------------------------------
    @property
    def audio_seconds(self):
        return self.received_samples / TARGET_RATE_HZ

    @property
    def lag_seconds(self):
        return max(0.0, self.audio_seconds - self.analysed_s)

    @property
    def finished(self):
        return self.status in FINISHED_STATES

    def expires_iso(self):
        return iso_utc(self.expires_at)

    def state(self):
        """The document GET /analyze/live/{id} returns."""
        return {
            "session_id": self.session_id, "conversation_id": self.conversation_id,
            "status": self.status, "next_chunk_seq": self.next_chunk_seq,
            "total_bytes": self.total_bytes, "audio_seconds": round(self.audio_seconds, 3),
            "expires_at": self.expires_iso(), "consumer_attached": self.consumer is not None,
            "last_event_id": self.events.last_id, "lag_seconds": round(self.lag_seconds, 3),
            "suffix": self.options.suffix, "language": self.options.language,
        }

    # -- chunks ------------------------------------------------------------------------------
    def ingest(self, chunk_seq, data):
        """Accept chunk `chunk_seq` exactly once; a same-bytes retry is acknowledged, not re-ingested."""
        with self._lock:
            if self.status not in ACTIVE_STATES:
                raise self._closed_error(f"The session is {self.status}; it takes no more chunks.")
            digest = hashlib.sha256(data).digest()
            if chunk_seq < self.next_chunk_seq:
                return self._retry_receipt(chunk_seq, data, digest)
            if chunk_seq > self.next_chunk_seq:
                raise errors.ChunkOutOfOrder(
                    f"Expected chunk_seq {self.next_chunk_seq}, got {chunk_seq}.",
                    expected_chunk_seq=self.next_chunk_seq)
            self._refuse_if_behind()
            samples = self._decoder.decode(chunk_seq, data, self.audio_seconds)
            if self.status not in ACTIVE_STATES:  # expired or cancelled while it was decoded
                raise errors.SessionClosed(f"The session is {self.status}; it takes no more chunks.",
                                           status=self.status)
            self._ledger[chunk_seq] = digest
            self.next_chunk_seq += 1
            self.total_bytes += len(data)
            self.received_samples += len(samples)
            self.expires_at = time.time() + self.ttl_s
            self.metrics.chunks.labels("accepted").inc()
            self.metrics.chunk_bytes.inc(len(data))
            if self.status == WAITING:
                self.status = INGESTING
                self._publish_status("receiving audio", force=True)
            self._stream.feed(samples)
            return self._receipt(chunk_seq, len(data), duplicate=False)

    def _retry_receipt(self, chunk_seq, data, digest):
        if self._ledger.get(chunk_seq) != digest:
            raise errors.ChunkConflict(chunk_seq=chunk_seq, expected_chunk_seq=self.next_chunk_seq)
        self.metrics.chunks.labels("duplicate").inc()
        return self._receipt(chunk_seq, len(data), duplicate=True)

    def _receipt(self, chunk_seq, size, duplicate):
        """The chunk endpoint's JSON answer (the client reads it as `client.ChunkReceipt`)."""
        receipt = dict(session_id=self.session_id, chunk_seq=chunk_seq, received_bytes=size,
                       total_bytes=self.total_bytes, next_chunk_seq=self.next_chunk_seq,
                       status=self.status, expires_at=self.expires_iso())
        if duplicate:
            receipt["duplicate"] = True
        return receipt

    def _refuse_if_behind(self):
        """Honest back-pressure: refuse new audio while analysis is too far behind, or at the cap."""
        backlog = self._stream.backlog_seconds()
        if backlog > self.settings.max_backlog_s:
            self.metrics.backpressure.inc()
            raise errors.TooManyRequests(
                f"Analysis is {backlog:.1f} s behind; retry this chunk shortly.",
                headers={"Retry-After": str(self.settings.retry_after_s)},
                backlog_seconds=round(backlog, 3), expected_chunk_seq=self.next_chunk_seq)
        if self.audio_seconds > self.settings.max_session_audio_s:
            raise errors.PayloadTooLarge(
                f"The session reached its limit of {self.settings.max_session_audio_s:.0f} s of audio.",
                limit_seconds=self.settings.max_session_audio_s)

    # -- control -----------------------------------------------------------------------------
    def finalize(self, reason=None):
        """Stop ingest and drain analysis; idempotent while processing or completed."""
        with self._lock:
            if self.status in (PROCESSING, COMPLETED):
                return "finalize already requested"
            self._require_active()
            self.status = PROCESSING
            try:
                tail = self._decoder.flush(self.audio_seconds)
            except (UndecodableAudio, DecodeLimitExceeded) as exc:
                self.log.warning("undecodable end of stream: %s", exc)
                self._publish(events.Error(code="invalid_audio", fatal=False,
                                           message=f"The end of the audio could not be decoded: {exc}"))
                tail = ()
            self.received_samples += len(tail)
            self._publish_status("finalizing: analysing the rest of the audio", force=True)
            if len(tail):
                self._stream.feed(tail)
            self._stream.finish()
            return "ingest stopped; final analysis running"

    def cancel(self, reason=None):
        """Abort: the consumer gets a fatal `error` with code `cancelled`."""
        with self._lock:
            if self.finished:
                raise self._closed_error(f"The session is already {self.status}.")
            self._stream.cancel()
            self._end(CANCELLED, events.Error(code="cancelled", fatal=True,
                                              message=reason or "The session was cancelled."))
            return "session cancelled"

    def keepalive(self):
        """Push the expiry to now + TTL without media (also while the last audio is analysed)."""
        if self.status not in ACTIVE_STATES + (PROCESSING,):
            raise self._closed_error(f"The session is {self.status}.")
        self.expires_at = time.time() + self.ttl_s
        return "expiry extended"

    def expire(self):
        """The TTL passed with no chunk, keepalive or consumer."""
        self._stream.cancel()
        self._end(EXPIRED, events.Error(code="session_expired", fatal=True,
                                        message="No audio, keepalive or consumer within the TTL."))

    def shutdown(self):
        """The server is stopping: tell the consumer to reconnect elsewhere (non-fatal)."""
        self._publish(events.Error(code="server_shutdown", fatal=False,
                                   message="The server is shutting down; reconnect to resume."))

    def _require_active(self):
        if self.status not in ACTIVE_STATES:
            raise self._closed_error(f"The session is {self.status}.")

    def _closed_error(self, message):
        """410 session_expired once the TTL ended the session (SPEC §2.2), else 409 session_closed."""
        kind = errors.SessionExpired if self.status == EXPIRED else errors.SessionClosed
        return kind(message, status=self.status)

    def _end(self, status, last_event):
        self.status = status
        self.closed_at = time.time()
        self._publish(last_event)
        self.events.close()
        self._decoder = None
        self.log.info("session %s", status)

    # -- consumers ---------------------------------------------------------------------------
    def attach_consumer(self):
        """Claim the single consumer slot; returns a token for `detach_consumer`."""
        if self.consumer is not None:
            raise errors.ConsumerAttached()
        self.consumer = object()
        self.metrics.consumers.inc()
        return self.consumer

    def detach_consumer(self, token):
        if self.consumer is token:
            self.consumer = None
            self.metrics.consumers.dec()
            if self.status in ACTIVE_STATES:
                self.expires_at = max(self.expires_at, time.time() + self.ttl_s)

    # -- AnalysisSink: called by the pipeline, in the hub ------------------------------------
    def publish(self, event):
        if self.status in FINISHED_STATES:
            return
        self._publish(event)

    def analysed(self, audio_seconds):
        self.analysed_s = max(self.analysed_s, audio_seconds)
        if self.status == INGESTING:
            self._publish_status("analysing live audio")

    def completed(self):
        if self.status != PROCESSING:
            return
        self.analysed_s = self.audio_seconds
        self._publish(events.Status(phase=COMPLETED, progress=1.0, audio_seconds=round(self.audio_seconds, 3),
                                    lag_seconds=0.0, detail="analysis complete"))
        self._end(COMPLETED, events.Done(conversation_id=self.conversation_id,
                                         session_id=self.session_id, metadata=self.options.metadata))

    def failed(self, message):
        if self.finished:
            return
        self.log.error("analysis failed: %s", message)
        self._end(FAILED, events.Error(code="pipeline_failed", message=message, fatal=True))

    # -- events ------------------------------------------------------------------------------
    def _publish_status(self, detail, force=False):
        now = time.monotonic()
        if not force and now - self._last_status_at < self.settings.status_every_s:
            return
        self._last_status_at = now
        received = self.audio_seconds
        progress = min(1.0, self.analysed_s / received) if received else 0.0
        self._publish(events.Status(phase=self.status, progress=round(progress, 4),
                                    audio_seconds=round(received, 3),
                                    lag_seconds=round(self.lag_seconds, 3), detail=detail))

    def _publish(self, event):
        if self.events.append(event) is not None:
            self.metrics.events.labels(event.name).inc()

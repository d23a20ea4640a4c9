"""The lease holder: the one worker that decodes a session's chunks and runs its analysis.

A session's decoder (codec contexts, half-read frames) and its analysis stream (a speech
worker process) cannot move between processes, so one gunicorn worker at a time holds
them, under `harken:{id}:lease` (SET NX PX with a token, renewed by a heartbeat
greenlet). Every write it makes to the session is fenced by that token inside the Lua
script, so a holder that lost its lease (paused, partitioned) can no longer change
anything. Chunks accepted elsewhere reach it through the session's inbox list; when a
holder dies, another worker takes the lease and rebuilds the decoder from the stored
chunks and the analysis from the last checkpoint (docs/scaleout.md).
"""
import json
import logging
import time
from collections import deque

import gevent
import gevent.event
import gevent.lock

from client import events

from .. import errors
from ..audio import TARGET_RATE_HZ, DecodeLimitExceeded, UndecodableAudio
from ..chunkdecode import ChunkDecoder
from ..inputs import StartOptions
from ..pipeline import SessionContext
from ..timefmt import iso_utc
from .store import OUTAGES, now_ms, session_keys

log = logging.getLogger(__name__)
REPLAY_PAGE = 32  # stored chunks read per LRANGE while a new holder rebuilds the decoder
_RETRY_S = 0.5  # how often writes held back by a store outage are tried again


def chunk_verdict(session_id, chunk_seq, size, verdict):
    """The answer CHECK's verdict gives without the holder: a duplicate's receipt, an error, or None (new)."""
    kind = verdict[0]
    if kind == b"gone":
        raise errors.SessionNotFound()
    if kind == b"closed":
        raise closed_error(verdict[1].decode())
    if kind == b"dup":
        return dict(session_id=session_id, chunk_seq=chunk_seq, received_bytes=size,
                    total_bytes=int(verdict[3]), next_chunk_seq=int(verdict[2]),
                    status=verdict[1].decode(), expires_at=iso_utc(int(verdict[4]) / 1000),
                    duplicate=True)
    if kind == b"conflict":
        raise errors.ChunkConflict(chunk_seq=chunk_seq, expected_chunk_seq=int(verdict[2]))
    if kind in (b"ahead", b"moved"):
        raise errors.ChunkOutOfOrder(f"Expected chunk_seq {int(verdict[2])}, got {chunk_seq}.",
                                     expected_chunk_seq=int(verdict[2]))
    return None


def closed_error(status, message=None):
    """410 session_expired once the TTL ended the session (SPEC §2.2), else 409 session_closed."""
    kind = errors.SessionExpired if status == "expired" else errors.SessionClosed
    return kind(message or f"The session is {status}; it takes no more chunks.", status=status)


class Holder:
    """This worker's hold on one session: lease heartbeat, decoder, analysis stream, inbox; the stream's sink."""

    keeps_checkpoints = True  # AnalysisSink: finals come with a checkpoint, written with them by APPEND

    def __init__(self, registry, session_id, token):
        self.registry = registry
        self.session_id = session_id
        self.token = token
        self.keys = session_keys(session_id)
        self.stopped = gevent.event.Event()
        self.samples = 0
        self.analysed_s = 0.0
        self.status = None
        self.lock = gevent.lock.RLock()
        self._store = registry.store
        self._settings = registry.settings
        self._stream = None
        self._decoder = None
        self._last_status_at = 0.0
        self._greenlets = []
        self._unwritten = deque()  # store writes an outage holds back, oldest first (see _write)
        self._draining = False
        self._retrier = None
        self._progress_unrecorded = False

    # -- taking over -------------------------------------------------------------------------
    def start(self, meta):
        """Rebuild the decoder from the stored chunks and open analysis (from its checkpoint); caller holds `lock`."""
        options = StartOptions(**json.loads(meta[b"options"]))
        self.status = meta[b"status"].decode()
        self.analysed_s = float(meta.get(b"analysed_s", 0))
        self._decoder = ChunkDecoder(options, self._settings, self.registry.decoding, self.registry.metrics)
        context = SessionContext(self.session_id, meta[b"conversation_id"].decode(), options.language,
                                 options.goal, options.metadata)
        checkpoint = json.loads(meta[b"checkpoint"]) if meta.get(b"checkpoint") else None
        self._stream = self.registry.pipeline.open(context, self, resume=checkpoint)
        self._replay(self._stream.resume_samples)
        self._greenlets = [gevent.spawn(self._heartbeat), gevent.spawn(self._serve_inbox)]
        if self.status == "processing":  # finalize was asked of a holder that is gone
            self._finish()

    def _replay(self, resume_samples):
        """Decode every stored chunk again; feed analysis the samples from `resume_samples` on."""
        seq = 0
        while True:
            page = self._store.redis.lrange(self.keys[2], seq, seq + REPLAY_PAGE - 1)
            for data in page:
                samples = self._decoder.decode(seq, data, self.samples / TARGET_RATE_HZ)
                skip = max(0, resume_samples - self.samples)
                self.samples += len(samples)
                if skip < len(samples):
                    self._stream.feed(samples[skip:])
                seq += 1
            if len(page) < REPLAY_PAGE:
                return

    # -- chunks ------------------------------------------------------------------------------
    def ingest(self, chunk_seq, data, digest):
        """Decode and commit chunk `chunk_seq` (fenced by the lease), then feed it to analysis."""
        with self.lock:
            self._require_lease()
            receipt = chunk_verdict(self.session_id, chunk_seq, len(data),
                                    self._store.check(self.keys, [chunk_seq, digest]))
            if receipt is not None:
                self.registry.metrics.chunks.labels("duplicate").inc()
                return receipt
            self._refuse_if_behind(chunk_seq)
            samples = self._decoder.decode(chunk_seq, data, self.samples / TARGET_RATE_HZ)
            keep_ms, tomb_ms = self.registry.active_ttls_ms()
            verdict = self._store.commit(self.keys, [self.token, chunk_seq, digest, len(samples), now_ms(),
                                                     keep_ms, tomb_ms, data])
            if verdict[0] == b"fenced":
                self.stop(lost=True)
                raise self.registry.holder_lost()
            chunk_verdict(self.session_id, chunk_seq, len(data), verdict)  # closed or moved: raises
            _, was, next_seq, total_bytes, expires, samples_total = verdict
            self.samples = int(samples_total)
            self.registry.metrics.chunks.labels("accepted").inc()
            self.registry.metrics.chunk_bytes.inc(len(data))
            if was == b"waiting_media":
                self.status = "ingesting"
                self._publish_status("receiving audio", force=True)
            self._stream.feed(samples)
            return dict(session_id=self.session_id, chunk_seq=chunk_seq, received_bytes=len(data),
                        total_bytes=int(total_bytes), next_chunk_seq=int(next_seq), status=self.status,
                        expires_at=iso_utc(int(expires) / 1000))

    def _require_lease(self):
        if self.stopped.is_set():
            raise self.registry.holder_lost()

    def _refuse_if_behind(self, chunk_seq):
        backlog = self._stream.backlog_seconds()
        if backlog > self._settings.max_backlog_s:
            self.registry.metrics.backpressure.inc()
            raise errors.TooManyRequests(
                f"Analysis is {backlog:.1f} s behind; retry this chunk shortly.",
                headers={"Retry-After": str(self._settings.retry_after_s)},
                backlog_seconds=round(backlog, 3), expected_chunk_seq=chunk_seq)
        if self.samples / TARGET_RATE_HZ > self._settings.max_session_audio_s:
            raise errors.PayloadTooLarge(
                f"The session reached its limit of {self._settings.max_session_audio_s:.0f} s of audio.",
                limit_seconds=self._settings.max_session_audio_s)

    # -- finalize ----------------------------------------------------------------------------
    def finalize(self):
        """Another worker moved the session to `processing`: flush the decoder and drain analysis."""
        with self.lock:
            if not self.stopped.is_set() and self.status != "processing":
                self._finish()

    def _finish(self):
        self.status = "processing"
        try:
            tail = self._decoder.flush(self.samples / TARGET_RATE_HZ)
        except (UndecodableAudio, DecodeLimitExceeded) as exc:
            log.warning("[%s] undecodable end of stream: %s", self.session_id, exc)
            self.publish(events.Error(code="invalid_audio", fatal=False,
                                      message=f"The end of the audio could not be decoded: {exc}"))
            tail = ()
        self.samples += len(tail)
        self._append([self._status_event("finalizing: analysing the rest of the audio")],
                     samples_added=len(tail))
        if len(tail):
            self._stream.feed(tail)
        self._stream.finish()

    # -- AnalysisSink: called by the pipeline, in the hub ------------------------------------
    def publish(self, event):
        self._append([event])

    def commit(self, published, checkpoint):
        """A final and its analytics with the checkpoint to resume after them, in one script."""
        self._append(list(published), checkpoint=checkpoint)

    def analysed(self, audio_seconds):
        self.analysed_s = max(self.analysed_s, audio_seconds)
        if not (self.status == "ingesting" and self._publish_status("analysing live audio")):
            self._record_analysed()

    def _record_analysed(self):
        """The state endpoint's lag, on any worker, is the store's samples minus this (a status carries it too)."""
        self._append([])

    def completed(self):
        if self.status != "processing":
            return
        self.analysed_s = self.samples / TARGET_RATE_HZ
        self._record_analysed()
        self._write(self._complete)

    def _complete(self):
        meta = self._store.redis.hmget(self.keys[0], "conversation_id", "options")
        metadata = json.loads(meta[1])["metadata"]
        closing = [events.Status(phase="completed", progress=1.0, audio_seconds=round(self.analysed_s, 3),
                                 lag_seconds=0.0, detail="analysis complete"),
                   events.Done(conversation_id=meta[0].decode(), session_id=self.session_id,
                               metadata=metadata)]
        self._end("processing", "completed", closing)

    def failed(self, message):
        log.error("[%s] analysis failed: %s", self.session_id, message)
        closing = [events.Error(code="pipeline_failed", message=message, fatal=True)]
        self._write(lambda: self._end("waiting_media,ingesting,processing", "failed", closing))

    def _end(self, from_states, status, closing):
        self.registry.transition(self.session_id, from_states, status, closing, token=self.token)
        self.stop()

    def _append(self, logged, checkpoint=None, samples_added=0):
        """Append events (and the analysis progress) to the stream, fenced by the lease, after every earlier write."""
        if self.stopped.is_set():
            return
        if not (logged or checkpoint is not None or samples_added) and self._unwritten:
            self._progress_unrecorded = True  # recorded once the held-back writes are in
            return
        self._write(self._appending(logged, checkpoint, samples_added), len(logged))

    def _appending(self, logged, checkpoint=None, samples_added=0):
        """The APPEND of `logged` with the progress as of now, as a write to run now or after an outage."""
        args = [self.token, json.dumps(checkpoint) if checkpoint is not None else "", samples_added,
                self.analysed_s, self._settings.event_log_max, *self.registry.flatten(logged)]

        def attempt():
            verdict = self._store.append(self.keys, args)
            if verdict[0] == b"fenced":
                self.stop(lost=True)
            elif verdict[0] == b"ok":
                for event in logged:
                    self.registry.metrics.events.labels(event.name).inc()
        return attempt

    # -- writes an outage holds back ---------------------------------------------------------
    def _write(self, attempt, events_in_it=0):
        """Run the store write `attempt` after every earlier one.

        The analysis goes on through a store outage and its events must not be lost: a write the
        outage refuses waits, with every later one behind it in order, and one greenlet retries
        them until the store is back, or the lease is found lost (the next holder then analyses
        again from the last checkpoint written). The stream keeps HARKEN_EVENT_LOG_MAX events,
        so more held back than that would be trimmed anyway: past it the oldest writes go.
        """
        self._unwritten.append((attempt, events_in_it))
        held = sum(n for _, n in self._unwritten)
        while held > self._settings.event_log_max and len(self._unwritten) > 1:
            _, dropped = self._unwritten.popleft()
            held -= dropped
            log.error("[%s] %d events lost: the store outage outlasted %d held-back events",
                      self.session_id, dropped, self._settings.event_log_max)
        if self._draining or self._retrier is not None:
            return  # the write under way, or the retrier, takes this one in its turn
        if not self._drain():
            self._retrier = gevent.spawn(self._retry)

    def _drain(self):
        """Run the held-back writes in order; False when an outage stops them (they stay held)."""
        self._draining = True
        try:
            while not self.stopped.is_set():
                if not self._unwritten:
                    if not self._progress_unrecorded:
                        return True
                    self._progress_unrecorded = False
                    self._unwritten.append((self._appending([]), 0))
                attempt, _ = self._unwritten[0]
                try:
                    attempt()
                except OUTAGES:
                    raise
                except Exception:  # a write the store refuses for good is not retried
                    log.exception("[%s] a store write failed", self.session_id)
                self._unwritten.popleft()
            self._unwritten.clear()  # stopped: the lease or the session is gone
            return True
        except OUTAGES as exc:
            log.warning("[%s] %d store writes held back by an outage: %s", self.session_id,
                        len(self._unwritten), exc)
            return False
        finally:
            self._draining = False

    def _retry(self):
        while not self.stopped.wait(_RETRY_S):
            if self._drain():
                break
        self._retrier = None

    def _status_event(self, detail):
        received = self.samples / TARGET_RATE_HZ
        progress = min(1.0, self.analysed_s / received) if received else 0.0
        return events.Status(phase=self.status, progress=round(progress, 4), audio_seconds=round(received, 3),
                             lag_seconds=round(self.lag_seconds, 3), detail=detail)

    def _publish_status(self, detail, force=False):
        """Publish a `status` unless one went out less than HARKEN_STATUS_EVERY_S ago; whether it did."""
        now = time.monotonic()
        if not force and now - self._last_status_at < self._settings.status_every_s:
            return False
        self._last_status_at = now
        self._append([self._status_event(detail)])
        return True

    @property
    def lag_seconds(self):
        return max(0.0, self.samples / TARGET_RATE_HZ - self.analysed_s)

    # -- the lease and the inbox -------------------------------------------------------------
    def _heartbeat(self):
        """Renew the lease every third of its TTL; losing it stops this holder without a word."""
        lease_ms = int(self._settings.lease_ttl_s * 1000)
        while not self.stopped.wait(self._settings.lease_ttl_s / 3):
            try:
                if not self._store.renew(keys=[self.keys[5]], args=[self.token, lease_ms]):
                    self.stop(lost=True)
            except OUTAGES:
                continue  # Redis keeps the lease's TTL; renew again when it is back

    def _serve_inbox(self):
        """Chunks and finalize requests other workers forwarded; stops once the session is closed."""
        while not self.stopped.is_set():
            try:
                item = self._store.blocking.blpop([self.keys[7]], timeout=self._store.BLOCK_S)
                if item is None:
                    if self._store.redis.hget(self.keys[0], "closed") in (b"1", None):
                        self.stop()
                    continue
                self._handle(item[1])
            except OUTAGES:
                self.stopped.wait(0.5)

    def _handle(self, message):
        head, _, data = message.partition(b"\n")
        request = json.loads(head)
        if request["kind"] == "finalize":
            self.finalize()
            return
        try:
            answer = {"receipt": self.ingest(request["chunk_seq"], data, request["digest"])}
        except OUTAGES:
            raise
        except Exception as exc:  # the sender answers its client with this, never a 500 of ours
            if not isinstance(exc, errors.APIError):
                log.exception("[%s] chunk %s failed", self.session_id, request["chunk_seq"])
                exc = errors.APIError()
            answer = {"error": {"status": exc.status, "code": exc.code, "message": exc.message,
                                "extra": exc.extra, "headers": exc.headers}}
        pipe = self._store.redis.pipeline(transaction=True)
        pipe.rpush(request["reply"], json.dumps(answer))
        pipe.pexpire(request["reply"], int(self._settings.forward_timeout_s * 1000))
        pipe.execute()

    def stop(self, lost=False):
        """Drop the analysis and the lease (kept only if `lost`: it is someone else's then)."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self._stream is not None:
            self._stream.cancel()
        self.registry.forget(self)
        if not lost:
            try:
                self._store.release(keys=[self.keys[5]], args=[self.token])
            except OUTAGES:
                pass  # the lease runs out by itself
        current = gevent.getcurrent()
        for greenlet in [*self._greenlets, self._retrier]:
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=False)

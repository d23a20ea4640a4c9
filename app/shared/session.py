"""A live session as any worker sees it in the shared store: the API's side of app.session.Session.

Each request builds one of these from the session's hash; every change goes through a
Lua script (app/shared/store.py), so two workers never act on a stale read. Work that
needs the decoder or the analysis is done by the lease holder (app/shared/holder.py).
"""
import hashlib
import secrets
import time

from client import events

from .. import errors
from ..audio import TARGET_RATE_HZ
from ..timefmt import iso_utc
from .events import StreamLog
from .holder import chunk_verdict, closed_error
from .store import OUTAGES, now_ms, session_keys

ACTIVE = "waiting_media,ingesting"


class SharedSession:
    """One request's view of a session; `meta` is its hash as read when the request began."""

    def __init__(self, registry, session_id, meta):
        self.registry = registry
        self.session_id = session_id
        self.keys = session_keys(session_id)
        self.conversation_id = meta[b"conversation_id"].decode()
        self.status = meta[b"status"].decode()
        self.next_chunk_seq = int(meta[b"next"])
        self._meta = meta
        self._expires_ms = int(meta[b"expires"])
        self._consumer = None
        self._renewed_at = 0.0
        self.events = StreamLog(registry.store, self.keys, self._renew_consumer)

    def expires_iso(self):
        return iso_utc(self._expires_ms / 1000)

    def state(self):
        """The document GET /analyze/live/{id} returns."""
        meta = self._meta
        audio_s = int(meta[b"samples"]) / TARGET_RATE_HZ
        analysed_s = float(meta[b"analysed_s"])
        options = self.registry.options_of(meta)
        return {
            "session_id": self.session_id, "conversation_id": self.conversation_id,
            "status": self.status, "next_chunk_seq": self.next_chunk_seq,
            "total_bytes": int(meta[b"bytes"]), "audio_seconds": round(audio_s, 3),
            "expires_at": self.expires_iso(),
            "consumer_attached": bool(self.registry.store.redis.exists(self.keys[6])),
            "last_event_id": int(meta[b"last_id"]),
            "lag_seconds": round(max(0.0, audio_s - analysed_s), 3),
            "suffix": options.suffix, "language": options.language,
        }

    # -- chunks ------------------------------------------------------------------------------
    def ingest(self, chunk_seq, data):
        """Duplicates and misordered chunks are answered here; a new chunk goes to the lease holder."""
        digest = hashlib.sha256(data).hexdigest()
        holder = self.registry.holders.get(self.session_id)
        if holder is not None and not holder.stopped.is_set():
            return holder.ingest(chunk_seq, data, digest)  # it runs the same CHECK first
        receipt = chunk_verdict(self.session_id, chunk_seq, len(data),
                                self.registry.store.check(self.keys, [chunk_seq, digest]))
        if receipt is not None:
            self.registry.metrics.chunks.labels("duplicate").inc()
            return receipt
        return self.registry.forward_chunk(self.session_id, chunk_seq, data, digest)

    # -- control -----------------------------------------------------------------------------
    def finalize(self, reason=None):
        verdict = self.registry.transition(self.session_id, ACTIVE, "processing", [], close=False)
        if verdict[0] == b"state":
            self.status = verdict[1].decode()
            if self.status in ("processing", "completed"):
                return "finalize already requested"
            raise closed_error(self.status, f"The session is {self.status}.")
        self.status = "processing"
        self.registry.forward_finalize(self.session_id)
        return "ingest stopped; final analysis running"

    def cancel(self, reason=None):
        error = events.Error(code="cancelled", fatal=True, message=reason or "The session was cancelled.")
        verdict = self.registry.transition(self.session_id, ACTIVE + ",processing", "cancelled", [error])
        if verdict[0] == b"state":
            self.status = verdict[1].decode()
            raise closed_error(self.status, f"The session is already {self.status}.")
        self.status = "cancelled"
        return "session cancelled"

    def keepalive(self):
        keep_ms, tomb_ms = self.registry.active_ttls_ms()
        verdict = self.registry.store.keepalive(self.keys, [now_ms(), keep_ms, tomb_ms])
        if verdict[0] != b"ok":
            self.status = verdict[1].decode() if len(verdict) > 1 else self.status
            raise closed_error(self.status, f"The session is {self.status}.")
        self._expires_ms = int(verdict[2])
        return "expiry extended"

    # -- consumers ---------------------------------------------------------------------------
    def attach_consumer(self):
        """Claim the deployment-wide consumer slot (SET NX PX, renewed while the stream runs)."""
        token = secrets.token_hex(8)
        if not self.registry.store.redis.set(self.keys[6], token, nx=True, px=self.registry.consumer_ms):
            raise errors.ConsumerAttached()
        self._consumer, self._renewed_at = token, time.monotonic()
        self.registry.consumer_attached(self.session_id, +1)
        return token

    def detach_consumer(self, token):
        if token is None or self._consumer != token:
            return
        self._consumer = None
        self.registry.consumer_attached(self.session_id, -1)
        try:
            self.registry.store.detach(self.keys, [token, now_ms()])
        except OUTAGES:
            pass  # the slot's PX frees it

    def _renew_consumer(self):
        """Renew the consumer slot, at most every third of its life (the stream calls this every slice)."""
        now = time.monotonic()
        if self._consumer is not None and now - self._renewed_at >= self.registry.consumer_ms / 3000:
            self._renewed_at = now
            self.registry.store.renew(keys=[self.keys[6]], args=[self._consumer, self.registry.consumer_ms])

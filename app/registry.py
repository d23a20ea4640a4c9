"""The app's live sessions: creation under a limit, lookup by owner, expiry by a reaper greenlet."""
import logging
import secrets
import time

import gevent
import gevent.event

from . import errors
from .audio.offload import DecodePool
from .session import ACTIVE_STATES, ALL_STATES, Session

log = logging.getLogger(__name__)


class Tombstone:
    """What is left of a removed session: enough to answer 410 instead of 404."""

    __slots__ = ("owner", "status", "until")

    def __init__(self, owner, status, until):
        self.owner, self.status, self.until = owner, status, until


def refuse_unless_ready(registry):
    """503 with Retry-After while the server shuts down or its models are not loaded (either registry)."""
    retry = {"Retry-After": str(registry.settings.retry_after_s)}
    if registry.shutting_down.is_set():
        raise errors.ServiceUnavailable("The server is shutting down.", headers=retry)
    if not registry.pipeline.health().get("ready"):
        raise errors.PipelineUnavailable("The speech models are not loaded (yet): see /healthz.", headers=retry)


def server_full(settings):
    return errors.ServerFull(headers={"Retry-After": str(settings.retry_after_s)},
                             max_sessions=settings.max_sessions)


def reap_forever(registry):
    """`registry.reap()` every HARKEN_REAPER_INTERVAL_S until shutdown (either registry's reaper greenlet)."""
    while not registry.shutting_down.is_set():
        try:
            registry.reap()
        except Exception:  # the reaper must outlive any one session's failure
            log.exception("reaper pass failed")
        registry.shutting_down.wait(registry.settings.reaper_interval_s)


class SessionRegistry:
    """Owned by one app; every method runs in the gevent hub."""

    def __init__(self, settings, pipeline, metrics):
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = metrics
        self.decoding = DecodePool(settings.decode_threads)
        self.shutting_down = gevent.event.Event()
        self._sessions = {}
        self._tombstones = {}
        self._reaper = None

    def create(self, owner, options):
        """A new session for `owner`, or 503 with Retry-After when the server is full."""
        refuse_unless_ready(self)
        if self.open_count() >= self.settings.max_sessions:
            raise server_full(self.settings)
        self._ensure_reaper()
        session = Session(
            session_id="live_" + secrets.token_hex(12),
            conversation_id="liveconv_" + secrets.token_hex(12),
            owner=owner, options=options, settings=self.settings, pipeline=self.pipeline,
            metrics=self.metrics, decoding=self.decoding)
        self._sessions[session.session_id] = session
        session.log.info("session started (suffix %s, ttl %ss)", options.suffix, options.ttl_seconds)
        return session

    def get(self, session_id, owner):
        """The owner's session; 404 for unknown ids and other owners' sessions, 410 once removed."""
        session = self._sessions.get(session_id)
        if session is not None and session.owner == owner:
            return session
        tomb = self._tombstones.get(session_id)
        if tomb is not None and tomb.owner == owner:
            raise errors.SessionExpired(f"The session ended ({tomb.status}) and its results are gone.",
                                        status=tomb.status)
        raise errors.SessionNotFound()

    def open_count(self):
        """Sessions that still hold resources (everything not yet finished)."""
        return sum(1 for s in self._sessions.values() if not s.finished)

    def store_health(self):
        """Where sessions live: this worker's memory, always reachable."""
        return {"kind": "memory", "reachable": True}

    def count_by_state(self):
        counts = dict.fromkeys(ALL_STATES, 0)
        for session in self._sessions.values():
            counts[session.status] += 1
        return counts

    def max_lag_seconds(self):
        """The largest analysis lag of the sessions still taking audio (0 with none)."""
        return max((s.lag_seconds for s in self._sessions.values() if s.status in ACTIVE_STATES),
                   default=0.0)

    def reap(self, now=None):
        """Expire idle sessions, drop finished ones past the result TTL, forget old tombstones."""
        now = time.time() if now is None else now
        for session in list(self._sessions.values()):
            if session.status in ACTIVE_STATES:
                if session.consumer is not None:
                    session.expires_at = max(session.expires_at, now + session.ttl_s)
                elif now >= session.expires_at:
                    session.expire()
            if session.finished and now >= session.closed_at + self.settings.result_ttl_s:
                self._bury(session, now)
        for session_id in [k for k, t in self._tombstones.items() if now >= t.until]:
            del self._tombstones[session_id]

    def _bury(self, session, now):
        del self._sessions[session.session_id]
        self._tombstones[session.session_id] = Tombstone(
            session.owner, session.status, now + self.settings.tombstone_ttl_s)

    def _ensure_reaper(self):
        if self._reaper is None or self._reaper.dead:
            self._reaper = gevent.spawn(reap_forever, self)

    def shutdown(self):
        """SIGTERM: every attached consumer gets a non-fatal `server_shutdown` and its stream ends."""
        if self.shutting_down.is_set():
            return
        self.shutting_down.set()
        for session in self._sessions.values():
            if session.consumer is not None and not session.finished:
                session.shutdown()
        log.info("shutdown: %d sessions dropped", len(self._sessions))

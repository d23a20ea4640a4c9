"""The session registry of a scale-out deployment (HARKEN_REDIS_URL): every worker serves every session.

Same interface as app.registry.SessionRegistry. What this worker holds is only the leases
it took (`holders`); everything else is in Redis. A reaper greenlet per worker expires idle
sessions (the expiry is one atomic transition, so no session is reaped twice) and adopts
sessions whose lease holder is gone.
"""
import dataclasses
import json
import logging
import os
import secrets
import socket
import time

import gevent
import gevent.event

from client import events

from .. import errors
from ..audio.offload import DecodePool
from ..inputs import StartOptions
from ..registry import reap_forever, refuse_unless_ready, server_full
from ..session import ALL_STATES
from .events import SLICE_S
from .holder import Holder
from .placement import Placement
from .session import ACTIVE, SharedSession
from .store import INDEX_KEY, OUTAGES, Store, now_ms, reply_key, session_keys

log = logging.getLogger(__name__)


class SharedRegistry:
    """Sessions in Redis; every method runs in the gevent hub of one gunicorn worker."""

    def __init__(self, settings, pipeline, metrics):
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = metrics
        self.store = Store(settings.redis_url, settings.redis_timeout_s)
        self.decoding = DecodePool(settings.decode_threads)
        self.shutting_down = gevent.event.Event()
        self.holders = {}
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        # The consumer slot's life: renewed every third of it, between XREAD slices.
        self.consumer_ms = int(max(settings.lease_ttl_s, 3 * SLICE_S) * 1000)
        self._local_consumers = {}
        self._reaper = None
        model_processes = settings.pool_size if pipeline.name == "speech" else 1
        self.placement = Placement(self.store, self.worker_id, model_processes,
                                   alive_ms=int(max(3.0, 3 * settings.reaper_interval_s) * 1000))

    # -- settings as the scripts take them -----------------------------------------------------
    def active_ttls_ms(self):
        """(keys, tombstone) TTLs of an open session: past its own TTL until the reaper has ended it."""
        keep_ms = int((self.settings.max_ttl_s + self.settings.result_ttl_s + 60) * 1000)
        return keep_ms, keep_ms + int(self.settings.tombstone_ttl_s * 1000)

    def closed_ttls_ms(self):
        keep_ms = int(self.settings.result_ttl_s * 1000)
        return keep_ms, keep_ms + int(self.settings.tombstone_ttl_s * 1000)

    @staticmethod
    def flatten(logged):
        """Events as the scripts' trailing ARGV: name, one-line JSON, name, …"""
        return [part for event in logged for part in (event.name, event.to_json())]

    @staticmethod
    def options_of(meta):
        return StartOptions(**json.loads(meta[b"options"]))

    def holder_lost(self):
        return errors.ServiceUnavailable(
            "This session's analysis is moving to another worker; retry the request.",
            headers={"Retry-After": "1"})

    # -- sessions ------------------------------------------------------------------------------
    def create(self, owner, options):
        """A new session for `owner`; the deployment-wide limit is one script on the index."""
        refuse_unless_ready(self)
        session_id = "live_" + secrets.token_hex(12)
        now = now_ms()
        ttl_ms = options.ttl_seconds * 1000
        keep_ms, tomb_ms = self.active_ttls_ms()
        if not self.store.admit(keys=[INDEX_KEY], args=[session_id, now + ttl_ms, self.settings.max_sessions,
                                                        keep_ms]):
            raise server_full(self.settings)
        self._ensure_reaper()
        conversation_id = "liveconv_" + secrets.token_hex(12)
        first = events.Status(phase="waiting_media", detail="session started; waiting for audio")
        self.store.create(session_keys(session_id), [
            owner or "", conversation_id, json.dumps(dataclasses.asdict(options)), ttl_ms, now, keep_ms,
            tomb_ms, self.settings.event_log_max, *self.flatten([first])])
        self.metrics.events.labels(first.name).inc()
        log.info("[%s] session started (suffix %s, ttl %ss)", session_id, options.suffix, options.ttl_seconds)
        self._place(session_id)
        return self.get(session_id, owner)

    def _place(self, session_id):
        """The session's analysis goes to the least loaded live worker; to this one if it does not answer."""
        target = self.placement.least_loaded()
        if target != self.worker_id and self.placement.place_elsewhere(target, session_id):
            return
        self.adopt(session_id)

    def get(self, session_id, owner):
        """The owner's session; 404 for unknown ids and other owners' sessions, 410 once removed."""
        keys = session_keys(session_id)
        meta = self.store.redis.hgetall(keys[0])
        if meta and meta.get(b"owner", b"").decode() == (owner or "") and b"status" in meta:
            return SharedSession(self, session_id, meta)
        tomb_owner, status = self.store.redis.hmget(keys[4], "owner", "status")
        if not meta and tomb_owner is not None and tomb_owner.decode() == (owner or ""):
            raise errors.SessionExpired(f"The session ended ({status.decode()}) and its results are gone.",
                                        status=status.decode())
        raise errors.SessionNotFound()

    def transition(self, session_id, from_states, status, closing, close=True, token="", mode=""):
        """One atomic state change with its events; a closing one also leaves the index."""
        keep_ms, tomb_ms = self.closed_ttls_ms() if close else self.active_ttls_ms()
        verdict = self.store.transition(session_keys(session_id), [
            from_states, status, "1" if close else "0", now_ms(), keep_ms, tomb_ms, token, mode,
            self.settings.event_log_max, *self.flatten(closing)])
        if verdict[0] == b"gone":
            raise errors.SessionNotFound()
        if verdict[0] == b"ok":
            for event in closing:
                self.metrics.events.labels(event.name).inc()
            if close:
                self.store.redis.zrem(INDEX_KEY, session_id)
                log.info("[%s] session %s", session_id, status)
        return verdict

    def open_count(self):
        """Open sessions across the deployment (None while the store is unreachable)."""
        try:
            return self.store.redis.zcard(INDEX_KEY)
        except OUTAGES:
            return None

    def count_by_state(self):
        """Sessions by state across the deployment (the open ones; finished ones leave the index)."""
        counts = dict.fromkeys(ALL_STATES, 0)
        try:
            ids = self.store.redis.zrange(INDEX_KEY, 0, -1)
            with self.store.redis.pipeline(transaction=False) as pipe:
                for session_id in ids:
                    pipe.hget(session_keys(session_id.decode())[0], "status")
                for status in pipe.execute():
                    if status is not None and status.decode() in counts:
                        counts[status.decode()] += 1
        except OUTAGES:
            pass
        return counts

    def max_lag_seconds(self):
        """The largest analysis lag among the sessions this worker analyses."""
        return max((holder.lag_seconds for holder in self.holders.values()), default=0.0)

    def store_health(self):
        problem = self.store.problem()
        return {"kind": "redis", "reachable": problem is None, "worker": self.worker_id,
                "leases": len(self.holders), **({"error": problem} if problem else {})}

    # -- the lease holder ----------------------------------------------------------------------
    def adopt(self, session_id):
        """Take the session's lease if nobody holds it, and rebuild its analysis here; the Holder or None."""
        keys = session_keys(session_id)
        token = f"{self.worker_id}:{secrets.token_hex(8)}"
        if self.shutting_down.is_set() or not self.pipeline.health().get("ready"):
            return None  # a worker still loading its models leaves the session to one that has them
        if not self.store.redis.set(keys[5], token, nx=True, px=int(self.settings.lease_ttl_s * 1000)):
            return None
        meta = self.store.redis.hgetall(keys[0])
        if not meta or meta[b"closed"] == b"1":
            self.store.release(keys=[keys[5]], args=[token])
            return None
        holder = Holder(self, session_id, token)
        with holder.lock:
            self.holders[session_id] = holder
            try:
                holder.start(meta)
            except OUTAGES:
                holder.stop()
                raise
            except Exception as exc:  # a session that cannot be rebuilt ends, rather than fail every pass
                log.exception("[%s] analysis could not be rebuilt here", session_id)
                holder.failed(f"The session's analysis could not be rebuilt after its worker stopped: {exc}")
                return None
        log.info("[%s] analysis held by %s", session_id, self.worker_id)
        self._advertise()
        return holder

    def forget(self, holder):
        if self.holders.get(holder.session_id) is holder:
            del self.holders[holder.session_id]
            self._advertise()

    def _advertise(self):
        """This worker's load as of now, so the next placement sees it (once its models are loaded)."""
        if self.shutting_down.is_set() or not self.pipeline.health().get("ready"):
            return
        try:
            self.placement.advertise(len(self.holders))
        except OUTAGES:
            pass  # the next reaper pass advertises again

    def forward_chunk(self, session_id, chunk_seq, data, digest):
        """Have the lease holder decode and commit the chunk: here, or through the session's inbox."""
        holder = self.holders.get(session_id) or self._adopt_if_orphaned(session_id)
        if holder is not None:
            return holder.ingest(chunk_seq, data, digest)
        keys = session_keys(session_id)
        reply = reply_key(session_id, secrets.token_hex(8))
        head = json.dumps({"kind": "chunk", "chunk_seq": chunk_seq, "digest": digest, "reply": reply})
        message = head.encode() + b"\n" + data
        lease = self.store.redis.get(keys[5])
        self._post(keys, message)
        deadline = time.monotonic() + self.settings.forward_timeout_s
        while time.monotonic() < deadline:
            answer = self.store.blocking.blpop([reply], timeout=self.store.BLOCK_S)
            if answer is not None:
                return self._reply(json.loads(answer[1]))
            self._adopt_if_orphaned(session_id)  # the holder died: whoever takes over answers the inbox
            now_held_by = self.store.redis.get(keys[5])
            if now_held_by is not None and now_held_by != lease:
                # A new holder: the old one may have taken the message and died with it. Posting it
                # again is safe: a chunk committed already is answered as a duplicate.
                lease = now_held_by
                self._post(keys, message)
        raise errors.ServiceUnavailable(
            "The session's analysis did not answer in time; retry this chunk (a retry is safe).",
            headers={"Retry-After": str(self.settings.retry_after_s)})

    def forward_finalize(self, session_id):
        holder = self.holders.get(session_id) or self._adopt_if_orphaned(session_id)
        if holder is not None:
            gevent.spawn(holder.finalize)  # an adopting holder already finished in start()
        else:
            self._post(session_keys(session_id), json.dumps({"kind": "finalize"}).encode())

    def _post(self, keys, message):
        with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys[7], message)
            pipe.pexpire(keys[7], self.active_ttls_ms()[0])
            pipe.execute()

    def _adopt_if_orphaned(self, session_id):
        if self.store.redis.exists(session_keys(session_id)[5]):
            return None
        return self.adopt(session_id)

    @staticmethod
    def _reply(answer):
        if "receipt" in answer:
            return answer["receipt"]
        error = answer["error"]
        raised = errors.APIError(error["message"], headers=error["headers"], **error["extra"])
        raised.status, raised.code = error["status"], error["code"]
        raise raised

    # -- consumers -----------------------------------------------------------------------------
    def consumer_attached(self, session_id, delta):
        """Count this worker's consumers per session, for the shutdown notice."""
        count = self._local_consumers.get(session_id, 0) + delta
        if count > 0:
            self._local_consumers[session_id] = count
        else:
            self._local_consumers.pop(session_id, None)
        self.metrics.consumers.inc(delta)

    # -- the reaper ----------------------------------------------------------------------------
    def reap(self):
        """Advertise this worker's load, expire idle sessions, tidy the index, adopt one orphaned session."""
        try:
            self._reap()
        except OUTAGES as exc:
            log.warning("reaper pass skipped, store unreachable: %s", exc)

    def _reap(self):
        self._advertise()
        now = now_ms()
        for raw in self.store.redis.zrangebyscore(INDEX_KEY, "-inf", now, start=0, num=200):
            session_id = raw.decode()
            error = events.Error(code="session_expired", fatal=True,
                                 message="No audio, keepalive or consumer within the TTL.")
            try:
                verdict = self.transition(session_id, ACTIVE, "expired", [error], mode="expire")
            except errors.SessionNotFound:
                self.store.redis.zrem(INDEX_KEY, session_id)
                continue
            if verdict[0] == b"alive":
                self.store.redis.zadd(INDEX_KEY, {session_id: int(verdict[1])}, xx=True)
            elif verdict[0] == b"state":
                if verdict[1] == b"processing":  # finishing: look again a TTL later
                    self.store.redis.zadd(INDEX_KEY, {session_id: now + 60_000}, xx=True)
                else:
                    self.store.redis.zrem(INDEX_KEY, session_id)
        self._adopt_one_orphan()

    def _adopt_one_orphan(self):
        """One adoption per pass, by the least loaded worker, so a dead worker's sessions spread out."""
        ids = [raw.decode() for raw in self.store.redis.zrange(INDEX_KEY, 0, -1)]
        with self.store.redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.exists(session_keys(session_id)[5])
            leased = pipe.execute()
        orphans = [sid for sid, has_lease in zip(ids, leased) if not has_lease and sid not in self.holders]
        if orphans and self.placement.least_loaded() == self.worker_id:
            for session_id in orphans:
                if self.adopt(session_id):
                    return

    def _ensure_reaper(self):
        if self._reaper is None or self._reaper.dead:
            self._reaper = gevent.spawn(reap_forever, self)

    def start(self):
        """Begin reaping, watching for orphaned sessions and taking placed ones (every worker does)."""
        self._ensure_reaper()
        gevent.spawn(self.placement.serve, self.adopt, self.shutting_down)

    def shutdown(self):
        """SIGTERM: consumers here get `server_shutdown`; leases are released for other workers."""
        if self.shutting_down.is_set():
            return
        self.placement.withdraw()
        notice = events.Error(code="server_shutdown", fatal=False,
                              message="The server is shutting down; reconnect to resume.")
        for session_id in list(self._local_consumers):  # before the streams see shutting_down
            try:
                self.store.append(session_keys(session_id), ["", "", 0, "", self.settings.event_log_max,
                                                             *self.flatten([notice])])
            except OUTAGES:
                break
        self.shutting_down.set()
        held = list(self.holders.values())
        for holder in held:
            holder.stop()
        log.info("shutdown: %d analysis leases released", len(held))

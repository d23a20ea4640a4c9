"""A session's events as a Redis Stream, read the way app.sse reads the in-memory EventLog.

Entry ids are `0-<n>` with n the SSE id, so `Last-Event-ID: n` resumes with XREAD from `0-n`
on any worker. The stream and the `closed` flag are read in one MULTI, and `closed` is set
in the same script that appends the last event, so a reader that sees `closed` has the
whole tail in hand.
"""
import logging
import time

from ..eventlog import LoggedEvent
from .store import OUTAGES

log = logging.getLogger(__name__)
SLICE_S = 0.5  # how long one XREAD blocks: the longest a hang-up or shutdown goes unnoticed


def _event_id(entry_id):
    return int(entry_id.split(b"-", 1)[1])


def _logged(entries):
    return [LoggedEvent(_event_id(entry_id), fields[b"n"].decode(), fields[b"d"].decode())
            for entry_id, fields in entries]


class StreamLog:
    """The `EventLog` interface of app.sse over one session's stream; `on_wait` renews the consumer slot."""

    def __init__(self, store, keys, on_wait=lambda: None):
        self._store = store
        self._meta, self._events = keys[0], keys[3]
        self._on_wait = on_wait
        self.closed = False

    @property
    def last_id(self):
        return int(self._store.redis.hget(self._meta, "last_id") or 0)

    @property
    def first_kept_id(self):
        """The oldest id still in the stream (older ones were trimmed by HARKEN_EVENT_LOG_MAX)."""
        first = self._store.redis.xrange(self._events, count=1)
        return _event_id(first[0][0]) if first else self.last_id + 1

    def after(self, last_seen_id):
        """Every kept event after `last_seen_id`; sets `closed` as it was when they were read.

        An outage ends the stream (`closed`): the client reconnects with Last-Event-ID.
        """
        try:
            with self._store.redis.pipeline(transaction=True) as pipe:
                pipe.hget(self._meta, "closed")
                pipe.xrange(self._events, min=f"0-{last_seen_id + 1}")
                closed, entries = pipe.execute()
        except OUTAGES as exc:
            log.warning("event stream ended by a store outage: %s", exc)
            self.closed = True
            return []
        self.closed = closed in (b"1", None)  # a session gone from the store has nothing more
        return _logged(entries)

    def wait(self, last_seen_id, timeout_s, interrupts):
        """Block in slices until an event after `last_seen_id` or the close (True), an interrupt, or `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._on_wait()
                if self._store.blocking.xread({self._events: f"0-{last_seen_id}"}, count=1,
                                              block=int(SLICE_S * 1000)):
                    return True
                if self._store.redis.hget(self._meta, "closed") in (b"1", None):
                    return True
            except OUTAGES:
                return True  # after() meets the outage too and ends the stream
            if any(event.is_set() for event in interrupts):
                return True
            if time.monotonic() >= deadline:
                return False

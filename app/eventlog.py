"""A session's bounded, append-only log of SSE events with increasing ids, waking readers on append."""
import collections

import gevent.event


class LoggedEvent(collections.namedtuple("LoggedEvent", "id name data")):
    """One event as the stream sends it: its id, its name and its one-line JSON."""

    def frame(self):
        """The SSE wire form of this event."""
        return f"id: {self.id}\nevent: {self.name}\ndata: {self.data}\n\n"


class EventLog:
    """Keeps the last `max_events` events; readers resume after any id they saw."""

    def __init__(self, max_events):
        self._events = collections.deque(maxlen=max_events)
        self._last_id = 0
        self._appended = gevent.event.Event()
        self.closed = False

    @property
    def last_id(self):
        return self._last_id

    @property
    def first_kept_id(self):
        """The oldest id still held (ids before it were dropped by the bound)."""
        return self._events[0].id if self._events else self._last_id + 1

    def append(self, event):
        """Log a `client.events.Event`, give it its id and wake every waiting reader."""
        if self.closed:
            return None
        self._last_id += 1
        event.id = self._last_id
        self._events.append(LoggedEvent(self._last_id, event.name, event.to_json()))
        self._wake()
        return self._last_id

    def close(self):
        """No more events: readers drain what is left and stop."""
        self.closed = True
        self._wake()

    def after(self, last_seen_id):
        """Every kept event with an id greater than `last_seen_id`, oldest first."""
        wanted = self._last_id - max(last_seen_id, 0)
        if wanted <= 0:
            return []
        kept = len(self._events)
        if wanted >= kept:
            return list(self._events)
        # Readers are almost always near the tail: index from the right end, O(wanted).
        return [self._events[i] for i in range(kept - wanted, kept)]

    def wait(self, last_seen_id, timeout_s, interrupts):
        """Wait for an event after `last_seen_id`, the close or an interrupt (True), or `timeout_s` (False)."""
        if self._last_id > last_seen_id or self.closed:
            return True
        return bool(gevent.wait([self._appended, *interrupts], timeout=timeout_s, count=1))

    def _wake(self):
        woken, self._appended = self._appended, gevent.event.Event()
        woken.set()

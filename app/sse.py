"""Serving a session's event log as Server-Sent Events, resumable by id, ending on hang-up."""
import socket

import gevent
import gevent.event

from client import events

_READ = 1  # libev/libuv read-readiness flag


class HangupWatch:
    """Becomes ready when the client's side of the connection closes, without waiting for a write."""

    def __init__(self, sock):
        self.closed = gevent.event.Event()
        self._sock = sock
        self._watcher = None
        if sock is not None:
            self._watcher = gevent.get_hub().loop.io(sock.fileno(), _READ)
            self._watcher.start(self._readable)

    def _readable(self):
        try:
            peeked = self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            peeked = b""
        if peeked:  # the client sent bytes (a pipelined request): it is still there; stop looking
            self.stop()
            return
        self.closed.set()
        self.stop()

    def stop(self):
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None


def stream_events(session, last_seen_id, **options):
    """The SSE byte stream (see `_frames`), encoded for the WSGI server."""
    for text in _frames(session, last_seen_id, **options):
        yield text.encode()


def _frames(session, last_seen_id, *, heartbeat_s, retry_ms, shutting_down, hangup):
    """`retry:`, every event after `last_seen_id`, keepalive comments; ends with the log or hang-up."""
    yield f"retry: {retry_ms}\n\n"
    log = session.events
    if last_seen_id and last_seen_id < log.first_kept_id - 1:
        notice = events.Error(code="events_dropped", fatal=False,
                              message=f"events {last_seen_id + 1}-{log.first_kept_id - 1} are no longer kept")
        # Its id is the last dropped one, so a client that reconnects after it resumes correctly.
        yield f"id: {log.first_kept_id - 1}\nevent: {notice.name}\ndata: {notice.to_json()}\n\n"
    while True:
        waiter = log.waiter()
        for event in log.after(last_seen_id):
            yield event.frame()
            last_seen_id = event.id
        if log.closed and last_seen_id >= log.last_id:
            return
        if shutting_down.is_set():
            return
        ready = gevent.wait([waiter, shutting_down, hangup.closed], timeout=heartbeat_s, count=1)
        if hangup.closed.is_set():
            return
        if not ready:
            yield ": keepalive\n\n"

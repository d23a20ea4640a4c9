"""Serving a session's event log as Server-Sent Events, resumable by id, ending on hang-up."""
import select
import socket

import gevent
import gevent.event
import gevent.monkey
from flask import Response

from client import events

from .eventlog import LoggedEvent

_READ = 1  # libev/libuv read-readiness flag
# Linux reports a peer's FIN as POLLRDHUP even while unread bytes sit in front of it.
_PEER_GONE = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
UNREAD_POLL_S = 0.25
_poll = gevent.monkey.get_original("select", "poll")  # a zero-timeout poll never blocks the loop


class HangupWatch:
    """Becomes ready when the client's side of the connection closes, without waiting for a write.

    While the client has sent nothing, read-readiness means end of file. Once it has sent
    bytes (which stay unread: they may be a pipelined request), readiness stays on, so the
    watch switches to asking the kernel every UNREAD_POLL_S whether the peer has shut down.
    """

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
        self.stop()
        if not peeked:
            self.closed.set()
        elif _PEER_GONE & ~(select.POLLHUP | select.POLLERR):  # POLLRDHUP exists here
            self._watcher = gevent.get_hub().loop.timer(0.0, UNREAD_POLL_S)
            self._watcher.start(self._poll_peer)

    def _poll_peer(self):
        poller = _poll()
        try:
            poller.register(self._sock.fileno(), _PEER_GONE)
        except (OSError, ValueError):  # the socket is already closed on our side
            self.closed.set()
            self.stop()
            return
        if poller.poll(0):
            self.closed.set()
            self.stop()

    def stop(self):
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None


def event_stream_response(frames, on_close):
    """The response that streams `frames` (stream_events' generator) as it goes: no caching, no
    proxy buffering; `on_close` runs once the server is done with it, however the stream ended."""
    response = Response(frames, mimetype="text/event-stream", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.call_on_close(on_close)
    return response


def stream_events(session, last_seen_id, **options):
    """The SSE byte stream (see `_frames`), encoded for the WSGI server."""
    for text in _frames(session, last_seen_id, **options):
        yield text.encode()


def _frames(session, last_seen_id, *, heartbeat_s, retry_ms, shutting_down, hangup, on_end):
    """`retry:`, every event after `last_seen_id`, keepalive comments; ends with the log or hang-up.

    When the log is closed, `on_end` runs before the last frames are yielded: a client that
    reconnects the moment it reads `done` must find the consumer slot already free.
    """
    yield f"retry: {retry_ms}\n\n"
    log = session.events
    if last_seen_id and last_seen_id < log.first_kept_id - 1:
        notice = events.Error(code="events_dropped", fatal=False,
                              message=f"events {last_seen_id + 1}-{log.first_kept_id - 1} are no longer kept")
        # Its id is the last dropped one, so a client that reconnects after it resumes correctly.
        yield LoggedEvent(log.first_kept_id - 1, notice.name, notice.to_json()).frame()
    while True:
        batch = log.after(last_seen_id)
        if log.closed:
            on_end()
            yield "".join(event.frame() for event in batch)
            return
        for event in batch:
            yield event.frame()
            last_seen_id = event.id
        if shutting_down.is_set():
            return
        ready = log.wait(last_seen_id, heartbeat_s, [shutting_down, hangup.closed])
        if hangup.closed.is_set():
            return
        if not ready:
            yield ": keepalive\n\n"

"""The Live Capture API: start, chunk, events, control, plus the session's state."""
from flask import Blueprint, current_app, jsonify, request
from werkzeug.routing import BaseConverter, ValidationError

from .. import errors, inputs
from ..sse import HangupWatch, event_stream_response, stream_events

bp = Blueprint("live", __name__, url_prefix="/analyze/live")


class SessionIdConverter(BaseConverter):
    """A session id path segment; never `start`, so GET …/start is 405 rather than a session lookup."""

    def to_python(self, value):
        if value == "start":
            raise ValidationError()
        return value


bp.record_once(lambda state: state.app.url_map.converters.setdefault("session_id",
                                                                      SessionIdConverter))


def _services():
    return current_app.extensions["harken"]


@bp.before_request
def _guard():
    services = _services()
    if request.method == "OPTIONS":  # CORS preflights carry no key; Flask answers them itself
        return
    if not services.settings.live_streaming_enabled:
        raise errors.LiveStreamingDisabled()
    request.harken_owner = services.keys.owner_of_request()


def _session(session_id):
    return _services().sessions.get(session_id, request.harken_owner)


@bp.post("/start")
def start():
    """Open a session and tell the client where to send chunks and read events."""
    services = _services()
    session = services.sessions.create(request.harken_owner, inputs.start_options(services.settings))
    base = f"{bp.url_prefix}/{session.session_id}"
    return jsonify(session_id=session.session_id, conversation_id=session.conversation_id,
                   chunk_endpoint=f"{base}/chunk", events_endpoint=f"{base}/events",
                   control_endpoint=f"{base}/control", next_chunk_seq=session.next_chunk_seq,
                   expires_at=session.expires_iso(), status=session.status)


@bp.post("/<session_id:session_id>/chunk")
def chunk(session_id):
    """Accept the next numbered chunk of audio (multipart or raw body)."""
    session = _session(session_id)
    chunk_seq, data = inputs.chunk_upload(_services().settings)
    return jsonify(session.ingest(chunk_seq, data))


@bp.get("/<session_id:session_id>/events")
def events(session_id):
    """The session's SSE stream: one consumer at a time, resumable with Last-Event-ID."""
    services = _services()
    session = _session(session_id)
    last_seen_id = inputs.last_event_id()
    if last_seen_id > session.events.last_id:
        raise errors.ValidationFailed(
            f"last_event_id: {last_seen_id} is beyond this session's last event "
            f"({session.events.last_id}); resume from an id the stream sent",
            field="last_event_id", last_event_id=session.events.last_id)
    token = session.attach_consumer()
    hangup = HangupWatch(request.environ.get("gunicorn.socket"))

    def release():
        hangup.stop()
        session.detach_consumer(token)

    def body():
        # Released before the last frame is written (on_end), so a client that reconnects right
        # after `done` never meets its own old stream; call_on_close covers unstarted streams.
        try:
            yield from stream_events(session, last_seen_id, heartbeat_s=services.settings.heartbeat_s,
                                     retry_ms=services.settings.sse_retry_ms,
                                     shutting_down=services.sessions.shutting_down, hangup=hangup,
                                     on_end=release)
        finally:
            release()

    return event_stream_response(body(), release)


@bp.post("/<session_id:session_id>/control")
def control(session_id):
    """finalize, cancel or keepalive."""
    session = _session(session_id)
    action, reason = inputs.control_request(_services().settings)
    if action == "finalize":
        detail = session.finalize(reason)
    elif action == "cancel":
        detail = session.cancel(reason)
    else:
        detail = session.keepalive()
    return jsonify(session_id=session.session_id, action=action, status=session.status,
                   detail=detail, expires_at=session.expires_iso())


@bp.get("/<session_id:session_id>")
def state(session_id):
    """The session's state, for dashboards and for clients deciding how to resume."""
    return jsonify(_session(session_id).state())

"""Whole-file analysis: `POST /analyze` answers one JSON document, `POST /analyze/stream` the live SSE catalog."""
import gevent
from flask import Blueprint, Response, current_app, jsonify, request

from .. import errors
from ..files import document, upload
from ..sse import HangupWatch, event_stream_response, stream_events

bp = Blueprint("analyze", __name__, url_prefix="/analyze")

_TRUE = ("1", "true", "yes", "on")


@bp.before_request
def _guard():
    """Every /analyze/* request needs a key when keys are set."""
    if request.method != "OPTIONS":
        current_app.extensions["harken"].keys.owner_of_request()


@bp.post("")
@bp.post("/stream")
def whole_file():
    """Analyse an uploaded recording: SSE for /analyze/stream and ?stream=true, else one document."""
    services = current_app.extensions["harken"]
    as_stream = request.path.endswith("/stream") or request.args.get("stream", "").lower() in _TRUE
    received = upload.receive(services.settings)
    analysis = services.files.start(received)
    hangup = HangupWatch(request.environ.get("gunicorn.socket"))
    if as_stream:
        return _event_stream(services, analysis, hangup)
    gevent.wait([analysis.finished, hangup.closed], count=1)
    hangup.stop()
    if not analysis.finished.is_set():
        analysis.cancel()  # nobody is left to read the answer
        return Response(status=499)
    if analysis.failure is not None:
        raise errors.AnalysisFailed(analysis.failure)
    return jsonify(document.build(analysis.analysis_id, analysis.collected, received.goal,
                                  received.metadata))


def _event_stream(services, analysis, hangup):
    """The analysis's events as SSE, with ids as on live streams; a hang-up stops the work."""

    def body():
        try:
            yield from stream_events(analysis, 0, heartbeat_s=services.settings.heartbeat_s,
                                     retry_ms=services.settings.sse_retry_ms,
                                     shutting_down=services.sessions.shutting_down, hangup=hangup,
                                     on_end=hangup.stop)
        finally:
            hangup.stop()
            analysis.cancel()

    return event_stream_response(body(), analysis.cancel)

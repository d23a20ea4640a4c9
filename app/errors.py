"""One exception hierarchy for every client-visible failure, mapped to one JSON body."""
import logging
import re

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

log = logging.getLogger(__name__)


class APIError(Exception):
    """Base of every error the API reports; `code` is the wire name, `status` the HTTP status.

    Each class has its twin of the same name in client/errors.py, this one's included: the
    client's `APIError` is what it raises for any of these (its own root is `HarkenError`).
    """

    status = 500
    code = "internal_error"
    message = "The server failed to handle the request."

    def __init__(self, message=None, *, headers=None, **extra):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.extra = extra
        self.headers = headers or {}

    def body(self):
        """The `{"error": {...}}` document sent to the client."""
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class BadRequest(APIError):
    status, code, message = 400, "bad_request", "The request could not be read."


class InvalidJson(BadRequest):
    code, message = "invalid_json", "The body is not valid JSON."


class Unauthorized(APIError):
    status, code, message = 401, "unauthorized", "A valid API key is required."


class NotFound(APIError):
    status, code, message = 404, "not_found", "No such resource."


class SessionNotFound(NotFound):
    code, message = "session_not_found", "No live session has this id."


class MethodNotAllowed(APIError):
    status, code, message = 405, "method_not_allowed", "This method is not allowed here."


class Conflict(APIError):
    status, code = 409, "conflict"


class ChunkOutOfOrder(Conflict):
    code = "chunk_out_of_order"


class ChunkConflict(Conflict):
    code, message = "chunk_conflict", "A different chunk was already accepted with this chunk_seq."


class SessionClosed(Conflict):
    code, message = "session_closed", "The session no longer accepts this request."


class ConsumerAttached(Conflict):
    code, message = "consumer_attached", "Another consumer is reading this session's events."


class SessionExpired(APIError):
    status, code, message = 410, "session_expired", "The session has expired."


class PayloadTooLarge(APIError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class DecodedAudioTooLong(PayloadTooLarge):
    """A chunk decodes to more audio than HARKEN_MAX_CHUNK_AUDIO_S: a decode bomb, or a file to split."""

    code = "decoded_audio_too_long"


class TooManyAudioFrames(PayloadTooLarge):
    code = "too_many_audio_frames"


class UnsupportedMediaType(APIError):
    status, code, message = 415, "unsupported_media_type", "This content type is not accepted here."


class UnreadableRecording(UnsupportedMediaType):
    code, message = "unreadable_recording", "The file is not a recording any decoder here can read."


class AudioTooLong(PayloadTooLarge):
    code, message = "audio_too_long", "The recording holds more audio than one analysis may take."


class ValidationFailed(APIError):
    """A field has a value the API cannot use; `field` names it."""

    status, code, message = 422, "validation_failed", "A field has an invalid value."


class EmptyChunk(ValidationFailed):
    code, message = "empty_chunk", "The chunk has no bytes."


class EmptyFile(ValidationFailed):
    code, message = "empty_file", "The uploaded file has no bytes."


class InvalidChunk(ValidationFailed):
    code, message = "invalid_chunk", "The chunk is not audio the decoder can read."


class TooManyRequests(APIError):
    status, code = 429, "backpressure"


class ServiceUnavailable(APIError):
    status, code, message = 503, "service_unavailable", "The service cannot take this request now."


class LiveStreamingDisabled(ServiceUnavailable):
    code, message = "live_streaming_disabled", "Live streaming is turned off on this server."


class ServerFull(ServiceUnavailable):
    code, message = "server_full", "The server holds as many live sessions as it may."


class PipelineUnavailable(ServiceUnavailable):
    code, message = "pipeline_unavailable", "The speech pipeline is not ready."


class StoreUnavailable(ServiceUnavailable):
    """The shared session store (Redis, HARKEN_REDIS_URL) cannot be reached; safe to retry after Retry-After."""

    code, message = "store_unavailable", "The session store is unreachable; retry shortly."


class AnalysisQueueFull(ServiceUnavailable):
    code, message = "analysis_queue_full", "As many recorded files are being analysed as the server may take."


class AnalysisFailed(APIError):
    """The speech pipeline broke while analysing a recorded file (not the client's mistake)."""

    code, message = "analysis_failed", "The analysis of the file failed."


# Werkzeug's status -> Harken's error class; other statuses keep Werkzeug's name as their code.
_HTTP_CODES = {400: BadRequest, 404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge,
               415: UnsupportedMediaType}
_MARKUP = re.compile(r"<[^>]*>")


def error_response(error):
    """The one place an error becomes a response."""
    response = jsonify(error.body())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def wire_code(name):
    """An HTTP reason phrase as a wire code: "I'm a teapot" -> "i_m_a_teapot"."""
    return re.sub(r"[^a-z0-9]+", "_", (name or "error").lower()).strip("_") or "error"


class JsonErrorsFlask(Flask):
    """Flask, except that its routing redirects carry the JSON body too.

    Flask returns a RequestRedirect (Werkzeug's merge_slashes: `/a//b` -> `/a/b`, 308) as
    its own HTML response without consulting error handlers; this is the one place to catch it.
    """

    def handle_http_exception(self, e):
        if isinstance(e, RequestRedirect):
            return _redirect(e)
        return super().handle_http_exception(e)


def _redirect(exc):
    error = APIError("This resource lives at the Location given.", location=exc.new_url)
    error.status, error.code = exc.code, "redirect"
    error.headers = {"Location": exc.new_url}
    return error_response(error)


def _from_http_exception(exc):
    """Routing and Werkzeug errors (404, 405, 413, bad multipart) in Harken's JSON shape."""
    kind = _HTTP_CODES.get(exc.code)
    if kind is None:
        error = APIError(_MARKUP.sub("", exc.description or exc.name or ""))
        error.status, error.code = exc.code, wire_code(exc.name)
    else:
        error = kind()
    headers = {}
    if exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    error.headers = headers
    return error_response(error)


def _unexpected(exc):
    log.exception("unhandled error")
    return error_response(APIError())


def init_app(app):
    """Map Harken errors, HTTP errors and anything unexpected to the JSON error body."""
    app.register_error_handler(APIError, error_response)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _unexpected)

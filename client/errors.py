"""One exception hierarchy for everything the client can meet: each server error code, the network, the stream.

`HarkenError` is the root. `APIError` and its subclasses are the server's JSON errors
(`{"error": {"code", "message", ...}}`), one class per wire code; `TransportError` is
the network failing before an answer came. Each class says in its docstring whether
the request that raised it is safe to send again unchanged (`retryable`).
"""
import email.utils
import time
from typing import Optional


class HarkenError(Exception):
    """Root of every client error; `request` and `response` are the HTTP library's objects (requests' or httpx's), when there were any."""

    retryable = False

    def __init__(self, message, *, request=None, response=None):
        super().__init__(message)
        self.message = message
        self.request = request
        self.response = response


class TransportError(HarkenError):
    """The network failed (refused, reset, timed out) before a full answer came. Safe to retry."""

    retryable = True


class ConnectionFailed(TransportError):
    """The connection could not be opened or broke during the exchange. Safe to retry."""


class RequestTimeout(TransportError):
    """No answer within the (connect, read) timeout. Safe to retry."""


class StreamError(HarkenError):
    """The event stream could not be read back to its end."""


class ReconnectFailed(StreamError):
    """The event stream dropped and every one of the bounded reconnect tries failed; `__cause__` is the last failure."""


class UploadFailed(HarkenError):
    """A stream's upload (thread or task) gave up; `__cause__` is the error that stopped it."""


class APIError(HarkenError):
    """The server answered with an error body: `status` (HTTP), `code` (wire name), `details` (extra keys).

    Not safe to retry unless a subclass says so: the same request will fail the same way.
    """

    status: Optional[int] = None
    code = "error"

    def __init__(self, message, *, status=None, code=None, details=None, retry_after_s=None,
                 request=None, response=None):
        super().__init__(message, request=request, response=response)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details or {}
        self.retry_after_s = retry_after_s

    def __str__(self):
        return f"{self.status} {self.code}: {self.message}"


class BadRequest(APIError):
    """400 `bad_request`: the server could not read the request."""

    status, code = 400, "bad_request"


class InvalidJson(BadRequest):
    """400 `invalid_json`: the body is not valid JSON."""

    code = "invalid_json"


class Unauthorized(APIError):
    """401 `unauthorized`: the API key is missing or wrong."""

    status, code = 401, "unauthorized"


class NotFound(APIError):
    """404 `not_found`: no such resource."""

    status, code = 404, "not_found"


class SessionNotFound(NotFound):
    """404 `session_not_found`: no live session has this id (or it belongs to another key)."""

    code = "session_not_found"


class MethodNotAllowed(APIError):
    """405 `method_not_allowed`."""

    status, code = 405, "method_not_allowed"


class Conflict(APIError):
    """409: the request conflicts with the session's state."""

    status, code = 409, "conflict"


class ChunkOutOfOrder(Conflict):
    """409 `chunk_out_of_order`: `expected_chunk_seq` is the number the server wants next.

    `upload()` treats it as success when `expected_chunk_seq` shows the chunk already landed.
    """

    code = "chunk_out_of_order"

    @property
    def expected_chunk_seq(self):
        """The chunk number the server wants next, as its error body says."""
        return self.details.get("expected_chunk_seq")


class ChunkConflict(Conflict):
    """409 `chunk_conflict`: different bytes were already accepted under this `chunk_seq`."""

    code = "chunk_conflict"


class SessionClosed(Conflict):
    """409 `session_closed`: the session was finalized or cancelled and takes no more of this."""

    code = "session_closed"


class ConsumerAttached(Conflict):
    """409 `consumer_attached`: another reader holds the event stream.

    Safe to retry: after a dropped connection the server frees the stream once it notices.
    """

    code = "consumer_attached"
    retryable = True


class SessionExpired(APIError):
    """410 `session_expired`: the session's TTL passed."""

    status, code = 410, "session_expired"


class PayloadTooLarge(APIError):
    """413 `payload_too_large`: send smaller chunks (live), or a smaller file (`details["max_bytes"]`)."""

    status, code = 413, "payload_too_large"


class DecodedAudioTooLong(PayloadTooLarge):
    """413 `decoded_audio_too_long`: one chunk decodes to more audio than the server takes per chunk; send it in smaller chunks."""

    code = "decoded_audio_too_long"


class TooManyAudioFrames(PayloadTooLarge):
    """413 `too_many_audio_frames`: one chunk holds more container frames than the server walks per chunk; send smaller chunks."""

    code = "too_many_audio_frames"


class AudioTooLong(PayloadTooLarge):
    """413 `audio_too_long`: the recording holds more audio than one analysis may take (`details["max_audio_s"]`)."""

    code = "audio_too_long"


class UnsupportedMediaType(APIError):
    """415 `unsupported_media_type`: e.g. a file analysis not sent as multipart/form-data."""

    status, code = 415, "unsupported_media_type"


class UnreadableRecording(UnsupportedMediaType):
    """415 `unreadable_recording`: no decoder on the server reads the uploaded file."""

    code = "unreadable_recording"


class ValidationFailed(APIError):
    """422 `validation_failed`: `details["field"]` names the field with a bad value."""

    status, code = 422, "validation_failed"


class EmptyChunk(ValidationFailed):
    """422 `empty_chunk`: the chunk had no bytes."""

    code = "empty_chunk"


class EmptyFile(ValidationFailed):
    """422 `empty_file`: the uploaded recording has no bytes."""

    code = "empty_file"


class InvalidChunk(ValidationFailed):
    """422 `invalid_chunk`: the decoder cannot read the chunk; it was not accepted and the session is still usable."""

    code = "invalid_chunk"


class Backpressure(APIError):
    """429 `backpressure`: the server is behind; safe to retry after `retry_after_s`."""

    status, code = 429, "backpressure"
    retryable = True


class ServerError(APIError):
    """500 `internal_error` (or any 5xx without a known code). Safe to retry."""

    status, code = 500, "internal_error"
    retryable = True


class ServiceUnavailable(ServerError):
    """503 `service_unavailable`: safe to retry after `retry_after_s`."""

    status, code = 503, "service_unavailable"


class LiveStreamingDisabled(ServiceUnavailable):
    """503 `live_streaming_disabled`: the server has live streaming turned off; retrying will not help."""

    code = "live_streaming_disabled"
    retryable = False


class ServerFull(ServiceUnavailable):
    """503 `server_full`: the server holds as many sessions as it may; safe to retry after `retry_after_s`."""

    code = "server_full"


class PipelineUnavailable(ServiceUnavailable):
    """503 `pipeline_unavailable`: the speech pipeline is not ready.

    Safe to retry only when the server sent ``Retry-After`` (the models are still loading);
    without it the server runs with no speech models at all (``HARKEN_PIPELINE=none``) and
    asks for work only models can do, which no retry will change.
    """

    code = "pipeline_unavailable"

    @property
    def retryable(self):
        return self.retry_after_s is not None


class StoreUnavailable(ServiceUnavailable):
    """503 `store_unavailable`: a scale-out server cannot reach its Redis; nothing was changed, safe to retry after `retry_after_s`."""

    code = "store_unavailable"


class AnalysisQueueFull(ServiceUnavailable):
    """503 `analysis_queue_full`: as many files are in analysis as the server may take; safe to retry after `retry_after_s`."""

    code = "analysis_queue_full"


class AnalysisFailed(ServerError):
    """500 `analysis_failed`: the speech pipeline broke on this file.

    Not retried: the same file is likely to break it the same way, and each attempt is a
    whole analysis. Sent as a fatal ``error`` event on `POST /analyze/stream`.
    """

    code = "analysis_failed"
    retryable = False


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


BY_CODE = {cls.code: cls for cls in (APIError, *_subclasses(APIError)) if cls.status is not None}
_BY_STATUS = {400: BadRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed,
              409: Conflict, 410: SessionExpired, 413: PayloadTooLarge,
              415: UnsupportedMediaType, 422: ValidationFailed, 429: Backpressure,
              503: ServiceUnavailable}


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def from_response(response) -> "APIError":
    """The `APIError` subclass instance for an error response (requests' or httpx's, read), chosen by wire code, else by status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    code = error.get("code")
    kind = BY_CODE.get(code) or _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else APIError
    reason = getattr(response, "reason", None) or getattr(response, "reason_phrase", None)
    message = error.get("message") or reason or "error"
    return kind(message, status=response.status_code, code=code, details=details,
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                request=response.request, response=response)

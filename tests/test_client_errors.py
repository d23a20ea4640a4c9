"""The client's exception hierarchy and retry policy: every server error code maps to its class."""
import json
import random

import pytest
import requests

from app import errors as server_errors
from client import errors
from client.retry import RetryPolicy

SERVER_CODES = {
    # code: (status, client class, safe to retry)
    "bad_request": (400, errors.BadRequest, False),
    "invalid_json": (400, errors.InvalidJson, False),
    "unauthorized": (401, errors.Unauthorized, False),
    "not_found": (404, errors.NotFound, False),
    "session_not_found": (404, errors.SessionNotFound, False),
    "method_not_allowed": (405, errors.MethodNotAllowed, False),
    "conflict": (409, errors.Conflict, False),
    "chunk_out_of_order": (409, errors.ChunkOutOfOrder, False),
    "chunk_conflict": (409, errors.ChunkConflict, False),
    "session_closed": (409, errors.SessionClosed, False),
    "consumer_attached": (409, errors.ConsumerAttached, True),
    "session_expired": (410, errors.SessionExpired, False),
    "payload_too_large": (413, errors.PayloadTooLarge, False),
    "audio_too_long": (413, errors.AudioTooLong, False),
    "decoded_audio_too_long": (413, errors.DecodedAudioTooLong, False),
    "too_many_audio_frames": (413, errors.TooManyAudioFrames, False),
    "unsupported_media_type": (415, errors.UnsupportedMediaType, False),
    "unreadable_recording": (415, errors.UnreadableRecording, False),
    "validation_failed": (422, errors.ValidationFailed, False),
    "empty_chunk": (422, errors.EmptyChunk, False),
    "empty_file": (422, errors.EmptyFile, False),
    "invalid_chunk": (422, errors.InvalidChunk, False),
    "backpressure": (429, errors.Backpressure, True),
    "internal_error": (500, errors.ServerError, True),
    "analysis_failed": (500, errors.AnalysisFailed, False),
    "service_unavailable": (503, errors.ServiceUnavailable, True),
    "live_streaming_disabled": (503, errors.LiveStreamingDisabled, False),
    "server_full": (503, errors.ServerFull, True),
    "store_unavailable": (503, errors.StoreUnavailable, True),
    "analysis_queue_full": (503, errors.AnalysisQueueFull, True),
    # Retryable only with Retry-After (models loading): see test_pipeline_unavailable_*.
    "pipeline_unavailable": (503, errors.PipelineUnavailable, False),
}


def response(status, body, headers=None):
    """A `requests.Response` as the server would send it, built in memory."""
    resp = requests.Response()
    resp.status_code = status
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp.headers.update(headers or {})
    resp.reason = "Reason"
    return resp


def server_error_classes(cls=server_errors.APIError):
    """app.errors.APIError and every class below it."""
    return [cls] + [below for sub in cls.__subclasses__() for below in server_error_classes(sub)]


def test_every_server_code_has_a_class():
    """The table holds every code the server's error classes send, with its status, and the client knows each."""
    server = {cls.code: cls.status for cls in server_error_classes()}
    assert server == {code: status for code, (status, _, _) in SERVER_CODES.items()}, \
        "app/errors.py and this table disagree"
    assert set(SERVER_CODES) <= set(errors.BY_CODE)


def test_pipeline_unavailable_is_retryable_only_with_retry_after():
    """Models still loading send Retry-After (retry); a server without models does not (a retry cannot help)."""
    body = {"error": {"code": "pipeline_unavailable", "message": "m"}}
    assert errors.from_response(response(503, body, {"Retry-After": "5"})).retryable
    assert not errors.from_response(response(503, body)).retryable
    assert errors.from_response(response(503, {"error": {
        "code": "analysis_queue_full", "message": "m"}}, {"Retry-After": "5"})).retry_after_s == 5.0


@pytest.mark.parametrize("code", sorted(SERVER_CODES))
def test_error_body_maps_to_class(code):
    """`{"error": {"code": …}}` becomes its class, with the status, message, extra keys and retryability."""
    status, kind, retryable = SERVER_CODES[code]
    error = errors.from_response(response(status, {"error": {
        "code": code, "message": "what happened", "field": "ttl_seconds"}}))
    assert type(error) is kind
    assert (error.status, error.code, error.message) == (status, code, "what happened")
    assert error.details == {"field": "ttl_seconds"}
    assert error.retryable is retryable
    assert isinstance(error, errors.APIError) and isinstance(error, errors.HarkenError)
    assert error.response is not None


def test_expected_chunk_seq_and_retry_after():
    """409 carries `expected_chunk_seq`; a 503's `Retry-After` (seconds or HTTP date) is parsed."""
    conflict = errors.from_response(response(409, {"error": {
        "code": "chunk_out_of_order", "message": "m", "expected_chunk_seq": 4}}))
    assert conflict.expected_chunk_seq == 4
    full = errors.from_response(response(503, {"error": {"code": "server_full", "message": "m"}},
                                         {"Retry-After": "7"}))
    assert full.retry_after_s == 7.0
    assert errors.parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=90.0) == 10.0
    assert errors.parse_retry_after("soon") is None


@pytest.mark.parametrize("status, body, kind", [
    (502, b"<html>Bad Gateway</html>", errors.ServerError),
    (504, b"", errors.ServerError),
    (404, b"not json", errors.NotFound),
    (409, {"error": {"code": "some_new_conflict", "message": "m"}}, errors.Conflict),
    (418, {"detail": "teapot"}, errors.APIError),
])
def test_unknown_bodies_map_by_status(status, body, kind):
    """A proxy's HTML page or an unknown code still gives the class its status implies."""
    error = errors.from_response(response(status, body))
    assert type(error) is kind and error.status == status


def test_retry_policy_backoff_with_jitter():
    """Waits grow exponentially up to the cap, are jittered below it, and Retry-After wins."""
    policy = RetryPolicy(tries=5, base_delay_s=0.5, max_delay_s=3.0, rng=random.Random(1))
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0, 3.0]):
        draws = [policy.delay_s(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.9 and min(draws) < ceiling * 0.1
    busy = errors.ServerFull("m", retry_after_s=4.0)
    assert policy.delay_s(0, busy) == 4.0
    assert policy.delay_s(0, errors.ServerFull("m", retry_after_s=999)) == policy.max_retry_after_s


def test_retry_policy_bounds_and_kinds():
    """Only retryable errors are retried, and never past `tries` attempts in all."""
    policy = RetryPolicy(tries=3)
    timeout = errors.RequestTimeout("slow")
    assert policy.should_retry(0, timeout) and policy.should_retry(1, timeout)
    assert not policy.should_retry(2, timeout)
    assert not policy.should_retry(0, errors.ChunkConflict("m"))
    assert not policy.should_retry(0, ValueError("not ours"))

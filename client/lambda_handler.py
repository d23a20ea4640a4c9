"""AWS Lambda entry point: `handler(event, context)` streams one recording through a Harken live session and returns its results.

The server comes from the environment (`HARKEN_URL`, `HARKEN_API_KEY`); the audio and the
session's options from the event (see docs/client.md for its shape). The answer is an
API-Gateway-style ``{"statusCode", "headers", "body"}`` whose body is JSON, errors included.
"""
import base64
import binascii
import json
import logging
import os
import tempfile
import time
from urllib.parse import urlparse

import requests

from .errors import (HarkenError, PayloadTooLarge, StreamError, TransportError, UploadFailed,
                     ValidationFailed)
from .live import LiveClient
from .protocol import (DEFAULT_CHUNK_BYTES, DEFAULT_EVENTS_READ_TIMEOUT_S, DEFAULT_TIMEOUT,
                       START_OPTIONS)
from .result import ConversationResult

log = logging.getLogger(__name__)

# Kept back from the Lambda deadline to cancel the session and return the answer.
ANSWER_RESERVE_S = 2.0
# Kept back, before that, for the server to flush the last words and write the summary.
DEFAULT_FINALIZE_RESERVE_S = 15.0
MAX_AUDIO_BYTES = 100 * 1024 * 1024


class BadEvent(ValueError):
    """The invocation event cannot be used; the message says why."""


def handler(event, context):
    """Stream the event's audio to Harken and return the transcript, utterances, moments and summary.

    Finalizes early enough to finish before ``context.get_remaining_time_in_millis()`` runs
    out; when even that is too late, cancels and answers 504 with the partial results.
    """
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    try:
        request = _request(event)
        url = os.environ.get("HARKEN_URL")
        if not url:
            return _response(500, _error("misconfigured", "HARKEN_URL is not set"))
        answer_at = deadline - ANSWER_RESERVE_S
        if answer_at <= time.monotonic():
            return _response(504, _error("deadline", "not enough time left to stream any audio"))
        with tempfile.TemporaryDirectory() as scratch:
            path = _audio_file(request, scratch, answer_at)
            return _stream(url, path, request, answer_at, context)
    except BadEvent as error:
        return _response(400, _error("bad_event", str(error)))
    except HarkenError as error:
        cause = error.__cause__ if isinstance(error, UploadFailed) else error
        log.warning("request %s failed: %s", context.aws_request_id, error)
        return _response(_status_for(cause), _error(getattr(cause, "code", "stream_failed"),
                                                    str(error)))
    except Exception:  # the last line of defence: a JSON answer, never a stack trace
        log.exception("request %s failed", context.aws_request_id)
        return _response(500, _error("internal_error", "the handler failed; see its log"))


def _stream(url, path, request, answer_at, context):
    remaining_s = answer_at - time.monotonic()
    finalize_reserve_s = _positive(request, "finalize_reserve_s", DEFAULT_FINALIZE_RESERVE_S, float)
    chunk_bytes = _positive(request, "chunk_bytes", DEFAULT_CHUNK_BYTES, int)
    result = ConversationResult()
    timeout = (DEFAULT_TIMEOUT[0], min(DEFAULT_TIMEOUT[1], remaining_s))
    with LiveClient(url, api_key=os.environ.get("HARKEN_API_KEY"), timeout=timeout,
                    events_read_timeout_s=min(DEFAULT_EVENTS_READ_TIMEOUT_S, remaining_s)) as client:
        stream = client.stream_file(
            path, chunk_bytes=chunk_bytes,
            finalize_at=answer_at - min(finalize_reserve_s, remaining_s / 2), cancel_at=answer_at,
            **{k: request[k] for k in START_OPTIONS if request.get(k) is not None})
        for event in stream:
            result.add(event)
    body = {**result.to_dict(), "session_id": stream.session.session_id,
            "request_id": context.aws_request_id, "audio_bytes": stream.total_bytes,
            "audio_bytes_sent": stream.bytes_sent, "truncated": stream.truncated,
            "deadline_hit": stream.deadline_hit}
    if result.complete:
        return _response(200, body)
    return _response(504 if stream.deadline_hit else 502, body)


def _request(event):
    """The options document: the event itself, or the JSON body of an API Gateway / function URL event."""
    if not isinstance(event, dict):
        raise BadEvent("the event must be a JSON object")
    if "body" not in event:
        return event
    body = event["body"] or ""
    try:
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body)
        request = json.loads(body)
    except (ValueError, binascii.Error):
        raise BadEvent("the request body must be a JSON object") from None
    if not isinstance(request, dict):
        raise BadEvent("the request body must be a JSON object")
    return request


def _positive(request, key, default, kind):
    try:
        value = kind(request.get(key, default))
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise BadEvent(f"{key} must be a positive number")
    return value


def _audio_file(request, scratch, answer_at):
    """Write the event's audio (``audio_base64`` or ``audio_url``) into `scratch`; its path."""
    name = os.path.basename(request.get("filename") or "")
    if request.get("audio_base64"):
        try:
            data = base64.b64decode(request["audio_base64"], validate=True)
        except (binascii.Error, TypeError):
            raise BadEvent("audio_base64 is not valid base64") from None
        path = os.path.join(scratch, name or "audio" + (request.get("suffix") or ""))
        with open(path, "wb") as f:
            f.write(data)
        return path
    if request.get("audio_url"):
        return _download(request["audio_url"], scratch, name, request.get("suffix"), answer_at)
    raise BadEvent("give the audio as audio_base64 or audio_url")


def _download(url, scratch, name, suffix, answer_at):
    """Fetch an http(s) URL (e.g. a presigned S3 link) without the Harken key: it is not Harken's."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http"):
        raise BadEvent("audio_url must be an https:// (or http://) URL")
    path = os.path.join(scratch, name or os.path.basename(parsed.path) or
                        "audio" + (suffix or ""))
    timeout = (DEFAULT_TIMEOUT[0], max(0.1, min(DEFAULT_TIMEOUT[1], answer_at - time.monotonic())))
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise BadEvent(f"audio_url answered {response.status_code}")
            size = 0
            with open(path, "wb") as f:
                for block in response.iter_content(64 * 1024):
                    size += len(block)
                    if size > MAX_AUDIO_BYTES:
                        raise BadEvent(f"audio_url is larger than {MAX_AUDIO_BYTES} bytes")
                    f.write(block)
    except requests.RequestException as exc:
        raise BadEvent(f"audio_url could not be fetched: {exc}") from None
    return path


def _status_for(error):
    """The caller's audio or options at fault: the server's 4xx; the network or the stream lost: 504; else 502."""
    if isinstance(error, (ValidationFailed, PayloadTooLarge)):
        return error.status
    return 504 if isinstance(error, (TransportError, StreamError)) else 502


def _error(code, message):
    return {"error": {"code": code, "message": message}}


def _response(status, body):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, ensure_ascii=False)}

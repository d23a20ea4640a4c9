"""The live API without an HTTP library: paths, bodies, answer types, and the rules for retrying and reconnecting.

`LiveClient` (requests) and `AsyncLiveClient` (httpx) both do their I/O around this
module, so what a request looks like, which failures are retried and how long a dropped
event stream waits are decided once, here.
"""
import json
import logging
import time
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Union
from urllib.parse import quote

from .errors import APIError, Backpressure, ChunkOutOfOrder, HarkenError, ReconnectFailed
from .retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 30.0)
# Three of the server's default 15 s keepalives: a silent stream that long is a dead one.
DEFAULT_EVENTS_READ_TIMEOUT_S = 45.0
# What the SSE standard leaves to the client until the server sends `retry:`.
DEFAULT_RECONNECT_DELAY_S = 2.0
MAX_RECONNECT_DELAY_S = 30.0
DEFAULT_RECONNECT_TRIES = 5
DEFAULT_CHUNK_BYTES = 32 * 1024
# `POST /analyze` answers only when the whole file is analysed, and sends nothing before:
# the read timeout is the longest analysis waited for (an hour of audio on a small server).
DEFAULT_ANALYZE_READ_TIMEOUT_S = 3600.0
START_OPTIONS = ("goal", "filename", "suffix", "ttl_seconds", "sample_rate", "channels",
                 "language", "metadata")


def _from_dict(cls, data):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class LiveSession:
    """A started live session, as `POST /analyze/live/start` described it."""

    session_id: str
    conversation_id: Optional[str] = None
    chunk_endpoint: Optional[str] = None
    events_endpoint: Optional[str] = None
    control_endpoint: Optional[str] = None
    next_chunk_seq: int = 0
    expires_at: Optional[str] = None
    status: Optional[str] = None

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LiveSession":
        """From the start answer's JSON; keys this client does not know are ignored."""
        return _from_dict(cls, data)


@dataclass
class ChunkReceipt:
    """The server's answer to one chunk; `duplicate` is true when the chunk had already landed."""

    session_id: str
    chunk_seq: int
    next_chunk_seq: int
    received_bytes: Optional[int] = None
    total_bytes: Optional[int] = None
    status: Optional[str] = None
    expires_at: Optional[str] = None
    duplicate: bool = False

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ChunkReceipt":
        """From the chunk answer's JSON; keys this client does not know are ignored."""
        return _from_dict(cls, data)


SessionRef = Union[LiveSession, str]


def session_id(session: SessionRef) -> str:
    """The id of a `LiveSession` or of a session id."""
    return session.session_id if isinstance(session, LiveSession) else session


def endpoint(session: SessionRef, kind: str) -> str:
    """The relative path of a session's ``chunk``, ``events`` or ``control`` endpoint."""
    if isinstance(session, LiveSession) and getattr(session, f"{kind}_endpoint"):
        return getattr(session, f"{kind}_endpoint").lstrip("/")
    return f"analyze/live/{quote(session_id(session), safe='')}/{kind}"


def state_path(session: SessionRef) -> str:
    """The relative path of `GET /analyze/live/{id}`."""
    return f"analyze/live/{quote(session_id(session), safe='')}"


START_PATH = "analyze/live/start"
HEALTH_PATH = "healthz"
ANALYZE_PATH = "analyze"
ANALYZE_STREAM_PATH = "analyze/stream"


def start_body(options: Dict[str, Any]) -> Dict[str, Any]:
    """The start request's JSON: the given `START_OPTIONS`, without the ones left None."""
    unknown = set(options) - set(START_OPTIONS)
    if unknown:
        raise TypeError(f"unknown start option(s): {', '.join(sorted(unknown))}")
    return {k: v for k, v in options.items() if v is not None}


def analyze_fields(goal: Optional[str], metadata: Optional[Dict[str, Any]],
                   language: Optional[str]) -> Dict[str, str]:
    """The form fields of `POST /analyze` beside its file, without the ones left None (metadata as JSON text)."""
    fields = {"goal": goal, "language": language,
              "metadata": None if metadata is None else json.dumps(metadata, ensure_ascii=False)}
    return {name: value for name, value in fields.items() if value is not None}


def control_body(action: str, reason: Optional[str]) -> Dict[str, Any]:
    """The control request's JSON."""
    return {"action": action} if reason is None else {"action": action, "reason": reason}


def chunk_form(chunk_seq: int, data: bytes):
    """The multipart form fields and file part of one chunk, as the reference API takes it."""
    return {"chunk_seq": str(chunk_seq)}, {"chunk": ("chunk", data, "application/octet-stream")}


def event_headers(last_event_id: Optional[int]) -> Dict[str, str]:
    """Headers of an event-stream request, resuming after `last_event_id` when given."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return headers


def landed(session: SessionRef, chunk_seq: int, error: ChunkOutOfOrder) -> Optional[ChunkReceipt]:
    """A duplicate receipt when a 409 `chunk_out_of_order` shows the chunk had already landed, else None."""
    expected = error.expected_chunk_seq
    if isinstance(expected, int) and expected > chunk_seq:
        log.info("chunk %d had already landed (server expects %d)", chunk_seq, expected)
        return ChunkReceipt(session_id(session), chunk_seq, expected, duplicate=True)
    return None


class Attempts:
    """One request's retries under a `RetryPolicy`: call `wait_after(error)` after each failure.

    `Backpressure` (429) does not use up tries: the server asked the client to slow down,
    so its ``Retry-After`` is honoured for as long as the policy's `max_backpressure_s`,
    counted from the first 429 (wall time, so a server answering ``Retry-After: 0`` forever
    still ends it).
    """

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.tried = 0
        self.backpressure_since: Optional[float] = None

    def wait_after(self, error: Exception) -> float:
        """Seconds to wait before the next attempt; raises `error` when it must not be retried."""
        if isinstance(error, Backpressure):
            now = time.monotonic()
            if self.backpressure_since is None:
                self.backpressure_since = now
            delay = self.policy.delay_s(self.tried, error)
            if now + delay - self.backpressure_since > self.policy.max_backpressure_s:
                raise error
            log.info("server is behind (429): retrying in %.2fs", delay)
            return delay
        if not self.policy.should_retry(self.tried, error):
            raise error
        delay = self.policy.delay_s(self.tried, error)
        self.tried += 1
        log.info("retrying in %.2fs after %s", delay, error)
        return delay


class Reconnects:
    """The state of one `events()` iteration across reconnects: where to resume and how long to wait.

    The wait is the server's ``Retry-After`` when a refusal gave one, else its ``retry:``
    (or `DEFAULT_RECONNECT_DELAY_S`) doubled per failure in a row, capped at
    `MAX_RECONNECT_DELAY_S`; an event received resets the count.
    """

    def __init__(self, tries: int, last_event_id: Optional[int] = None):
        self.tries = tries
        self.last_event_id = last_event_id
        self.retry_ms: Optional[int] = None
        self.failures = 0

    def received(self, event_id: Optional[int]) -> None:
        """An event arrived: resume after it, and the failures in a row start again from 0."""
        if event_id is not None:
            self.last_event_id = event_id
        self.failures = 0

    def dropped(self, cause: HarkenError) -> float:
        """Seconds to wait before reconnecting after `cause`; raises when reconnecting cannot help."""
        if not cause.retryable:
            raise cause
        self.failures += 1
        if self.failures > self.tries:
            raise ReconnectFailed(f"event stream lost after {self.tries} reconnects: {cause}") from cause
        delay = getattr(cause, "retry_after_s", None)
        if delay is None:
            base = self.retry_ms / 1000 if self.retry_ms is not None else DEFAULT_RECONNECT_DELAY_S
            delay = min(base * 2 ** (self.failures - 1), max(base, MAX_RECONNECT_DELAY_S))
        log.info("event stream dropped (%s); reconnecting after id %s in %.1fs",
                 cause, self.last_event_id, delay)
        return delay


def answer_json(response):
    """The JSON body of a successful answer (requests' or httpx's `Response`), or `APIError` when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise APIError(f"expected JSON, got {response.headers.get('Content-Type')!r}",
                       status=response.status_code, code="invalid_response",
                       request=response.request, response=response) from exc

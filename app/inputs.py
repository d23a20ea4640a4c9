"""Reading and validating request bodies: every bad field is a 422 that names the field."""
import json
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from . import errors
from .audio import SUPPORTED_SUFFIXES

DEFAULT_SUFFIX = ".mp4"
CONTROL_ACTIONS = ("finalize", "cancel", "keepalive")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_TEXT_CHARS = 2000
# An integer on the wire: ASCII digits, no sign, space, underscore or leading zero (Python's int()
# takes all of those and other scripts' digits); 18 digits keep every value inside int64.
WIRE_INT = re.compile(r"(?:0|[1-9][0-9]{0,17})\Z")


@dataclass(frozen=True)
class StartOptions:
    """The validated fields of POST /analyze/live/start."""

    suffix: str = DEFAULT_SUFFIX
    ttl_seconds: int = 900
    goal: Optional[str] = None
    filename: Optional[str] = None
    sample_rate: int = 16000
    channels: int = 1
    language: str = "en"
    metadata: dict = field(default_factory=dict)


def body_fields(max_bytes):
    """The request's fields from a form, a JSON object, or nothing at all; 413 past `max_bytes`.

    The limit holds however the body is framed: a chunked body (no Content-Length) is read
    only up to one byte past it.
    """
    request.max_content_length = max_bytes + 1
    try:
        if request.mimetype in FORM_TYPES:
            return request.form.to_dict()
        raw = request.stream.read(max_bytes + 1)
    except RequestEntityTooLarge:
        raw = None
    if raw is None or len(raw) > max_bytes:
        raise errors.PayloadTooLarge(f"The body exceeds {max_bytes} bytes.", max_bytes=max_bytes)
    if not raw.strip():
        return {}
    doc = _strict_json(raw)
    if not isinstance(doc, dict):
        raise errors.InvalidJson("The body must be a JSON object.")
    return doc


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _strict_json(raw):
    """Parse standard JSON only: no NaN/Infinity, no unpaired surrogates, no pathological nesting.

    Whatever is accepted here may be echoed into events, which must stay valid UTF-8 JSON.
    """
    try:
        doc = json.loads(raw, parse_constant=_refuse_constant)
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise errors.InvalidJson("The body nests too deeply.") from None
    except (ValueError, UnicodeError):
        raise errors.InvalidJson() from None
    return doc


def _invalid(name, message):
    return errors.ValidationFailed(f"{name}: {message}", field=name)


def _int_field(fields, name, default, low, high):
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _invalid(name, "must be an integer")
    if isinstance(value, str):
        if not WIRE_INT.match(value):
            raise _invalid(name, "must be an integer written as plain digits")
        value = int(value)
    number = value
    if not low <= number <= high:
        raise _invalid(name, f"must be between {low} and {high}")
    return number


def _text_field(fields, name, max_chars=MAX_TEXT_CHARS):
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    if len(value) > max_chars:
        raise _invalid(name, f"must be at most {max_chars} characters")
    return value


def _suffix(fields):
    explicit = _text_field(fields, "suffix", 16)
    filename = _text_field(fields, "filename", 512)
    if explicit:
        suffix, origin = explicit.lower(), "suffix"
        suffix = suffix if suffix.startswith(".") else "." + suffix
    elif filename and os.path.splitext(filename)[1]:
        suffix, origin = os.path.splitext(filename)[1].lower(), "filename"
    else:
        return DEFAULT_SUFFIX
    if suffix not in SUPPORTED_SUFFIXES:
        raise _invalid(origin, f"unsupported extension {suffix!r}; use one of "
                               + ", ".join(SUPPORTED_SUFFIXES))
    return suffix


def _metadata(fields):
    value = fields.get("metadata")
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = _strict_json(value)
        except errors.InvalidJson:
            raise _invalid("metadata", "must be a JSON object") from None
    if not isinstance(value, dict):
        raise _invalid("metadata", "must be an object")
    if len(json.dumps(value)) > MAX_TEXT_CHARS * 4:
        raise _invalid("metadata", "is too large")
    return value


def _language(fields):
    value = _text_field(fields, "language", 16) or "en"
    if not value.replace("-", "").isalpha():
        raise _invalid("language", "must be a language code such as 'en'")
    return value.lower()


def start_options(settings):
    """Validate POST /analyze/live/start."""
    fields = body_fields(settings.max_json_bytes)
    return StartOptions(
        suffix=_suffix(fields),
        ttl_seconds=_int_field(fields, "ttl_seconds", settings.default_ttl_s,
                               settings.min_ttl_s, settings.max_ttl_s),
        goal=_text_field(fields, "goal"),
        filename=_text_field(fields, "filename", 512),
        sample_rate=_int_field(fields, "sample_rate", 16000, 8000, 192000),
        channels=_int_field(fields, "channels", 1, 1, 8),
        language=_language(fields),
        metadata=_metadata(fields),
    )


def control_request(settings):
    """Validate POST …/control: (action, reason)."""
    fields = body_fields(settings.max_json_bytes)
    action = fields.get("action")
    if action is None:
        raise _invalid("action", "is required")
    if action not in CONTROL_ACTIONS:
        raise _invalid("action", "must be one of " + ", ".join(CONTROL_ACTIONS))
    return action, _text_field(fields, "reason")


def chunk_upload(settings):
    """(chunk_seq, bytes) from multipart (`chunk_seq` + file `chunk`) or a raw body."""
    limit = settings.max_chunk_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise errors.PayloadTooLarge(f"A chunk may hold at most {limit} bytes.", max_bytes=limit)
    given = [request.args.get("chunk_seq"), request.headers.get("X-Chunk-Seq")]
    if request.mimetype == "multipart/form-data":
        given.append(request.form.get("chunk_seq"))
        part = request.files.get("chunk")
        if part is None:
            raise _invalid("chunk", "multipart uploads need a file part named 'chunk'")
        data = part.read(limit + 1)
    else:
        data = request.stream.read(limit + 1)
    given = [text for text in given if text not in (None, "")]
    if not given:
        raise _invalid("chunk_seq", "is required (form field, query parameter or X-Chunk-Seq)")
    chunk_seq = _non_negative_int("chunk_seq", given[0])
    if any(_non_negative_int("chunk_seq", text) != chunk_seq for text in given[1:]):
        raise _invalid("chunk_seq", "the form field, query parameter and X-Chunk-Seq disagree")
    if len(data) > limit:
        raise errors.PayloadTooLarge(f"A chunk may hold at most {limit} bytes.", max_bytes=limit)
    if not data:
        raise errors.EmptyChunk(field="chunk")
    return chunk_seq, data


def last_event_id():
    """The resume point from the Last-Event-ID header or the last_event_id query parameter."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if raw in (None, ""):
        return 0
    return _non_negative_int("last_event_id", raw)


def _non_negative_int(name, text):
    """`text` as an integer >= 0 written as plain ASCII digits, or a 422 naming `name`."""
    if not WIRE_INT.match(text):
        raise _invalid(name, "must be a non-negative integer written as plain digits")
    return int(text)


def analyze_options(fields):
    """Validate the form fields of POST /analyze beside its file: goal, language, metadata."""
    return {"goal": _text_field(fields, "goal"), "language": _language(fields),
            "metadata": _metadata(fields)}

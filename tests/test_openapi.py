"""openapi.yaml against the real server: every route documented, every documented status answered as described."""
import json
import re
from pathlib import Path

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from werkzeug.datastructures import Headers

from app import create_app
from app.config import Settings
from eventsamples import one_of_each
from live import control, endpoints, start, upload, wait_for

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
TIMEOUT = (5, 10)
LIVE = "/analyze/live"
# 0.1 s of 16 kHz mono s16le silence: raw PCM needs no container, so any bytes of even length decode.
PCM_CHUNK = bytes(3200)
KEYS = ("key-one", "key-two")
UNKNOWN = endpoints("live_000000000000000000000000")


@pytest.fixture(scope="module")
def spec_doc():
    """The spec as a plain document."""
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def openapi():
    """The spec loaded by openapi-core."""
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture(scope="module")
def check(openapi, spec_doc):
    """`check(response, status, code=None, request_ok=True)`: the response is the documented one."""

    def run(response, status, code=None, request_ok=True):
        assert response.status_code == status, response.text
        _assert_documented(spec_doc, response.request, status)
        request = RequestsOpenAPIRequest(response.request)
        if request_ok:
            openapi.validate_request(request)
        openapi.validate_response(request, _as_openapi_response(response))
        if code is not None:
            assert response.json()["error"]["code"] == code
        return response

    return run


@pytest.fixture(scope="module")
def event_schemas(spec_doc):
    """{event name: validator of its `data:`} from the events response's `x-sse-events`."""
    media = spec_doc["paths"][LIVE + "/{session_id}/events"]["get"]["responses"]["200"]["content"]
    catalog = media["text/event-stream"]["x-sse-events"]
    return {name: OAS30Validator({"$ref": ref["$ref"], "components": spec_doc["components"]})
            for name, ref in catalog.items()}


@pytest.fixture(scope="module")
def auth_server(start_server):
    """A server that requires one of two API keys."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS=",".join(KEYS))


@pytest.fixture(scope="module")
def limits_server(start_server):
    """One session at most, results dropped at once (tombstones answer 410), no audio allowed."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MAX_SESSIONS="1", HARKEN_RESULT_TTL_S="0",
                        HARKEN_REAPER_INTERVAL_S="0.1", HARKEN_MAX_SESSION_AUDIO_S="-1")


_OPENED = []  # (server, session, headers) of sessions these tests started


@pytest.fixture(scope="module", autouse=True)
def _cancel_leftover_sessions():
    """Cancel what these tests left open: the shared transport server has a session limit."""
    yield
    for server, session, headers in _OPENED:
        control(server.url, session, "cancel", headers=headers)  # 409 for finished ones: fine
    _OPENED.clear()


class CapturedResponse:
    """An openapi-core response built from a streamed body that was read by hand."""

    def __init__(self, response, data):
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type", "")
        self.headers = Headers(dict(response.headers))
        self.data = data


def _as_openapi_response(response):
    data = getattr(response, "captured_body", None)
    if data is not None:
        return CapturedResponse(response, data)
    return RequestsOpenAPIResponse(response)


def _template_regex(template):
    pattern = re.sub(r"\{filename\}", "(.+)", template)
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", pattern) + "$")


def _operation(spec_doc, path, method):
    matches = [(t, ops[method]) for t, ops in spec_doc["paths"].items()
               if method in ops and _template_regex(t).match(path)]
    assert matches, f"{method.upper()} {path} is not in the spec"
    # A literal path (…/start) wins over a template (…/{session_id}), as in routing.
    return min(matches, key=lambda m: m[0].count("{"))[1]


def _assert_documented(spec_doc, prepared, status):
    path = requests.utils.urlparse(prepared.url).path
    operation = _operation(spec_doc, path, prepared.method.lower())
    assert str(status) in operation["responses"], \
        f"{prepared.method} {path} answered {status}, which the spec does not list"


def _start(server, headers=None, **fields):
    """`live.start`, noting the session so that it is cancelled when these tests end."""
    session = start(server.url, headers, **fields)
    _OPENED.append((server, session, headers))
    return session


def _pcm_session(server, headers=None):
    return _start(server, headers, suffix=".pcm")


def _read_stream(server, session, headers=None, params=None, until=None):
    """GET the events; read SSE frames until the server closes or `until(frames)`; keep the body."""
    response = requests.get(server.url + session["events_endpoint"], headers=headers,
                            params=params, stream=True, timeout=TIMEOUT)
    if response.status_code != 200:
        response.content  # an error body: read it whole
        return response, []
    body, frames = b"", []
    try:
        for piece in response.iter_content(chunk_size=None):
            body += piece
            frames = _parse_frames(body)
            if until is not None and until(frames):
                break
    finally:
        response.close()
    response.captured_body = body
    return response, frames


def _parse_frames(body):
    """SSE frames of `body` (complete ones only) as dicts of field -> value."""
    frames = []
    for block in body.decode().split("\n\n")[:-1]:
        frame = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            frame[name] = value[1:] if value.startswith(" ") else value
        frames.append(frame)
    return frames


def _events(frames):
    return [f for f in frames if "event" in f]


def _assert_catalog(frames, event_schemas):
    for frame in _events(frames):
        assert frame["event"] in event_schemas, f"event {frame['event']!r} is not in the catalog"
        data = json.loads(frame["data"])
        assert data, "an event's data must have at least one key"
        event_schemas[frame["event"]].validate(data)


# -- the spec itself ------------------------------------------------------------------------

def test_spec_is_valid_openapi(spec_doc):
    """openapi.yaml validates as OpenAPI 3.0 and loads in openapi-core."""
    validate_spec(spec_doc)
    assert spec_doc["openapi"].startswith("3.")
    OpenAPI.from_file_path(str(SPEC_PATH))


def test_every_route_is_in_the_spec_and_back():
    """Each (path, method) Flask routes is documented, and the spec lists no route the app lacks."""
    app = create_app(Settings.from_env(pipeline="none"))
    routed = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        # HEAD and OPTIONS are answered by the framework for every path (see the spec's intro).
        routed |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    spec = yaml.safe_load(SPEC_PATH.read_text())
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops
                  if method in ("get", "post", "put", "patch", "delete")}
    assert routed == documented


def test_event_catalog_matches_client_events(spec_doc):
    """Each event dataclass in client/events.py has a schema with exactly its fields, and back."""
    import dataclasses

    from client import events

    media = spec_doc["paths"][LIVE + "/{session_id}/events"]["get"]["responses"]["200"]["content"]
    catalog = media["text/event-stream"]["x-sse-events"]
    assert set(catalog) == set(events.CATALOG)
    for name, kind in events.CATALOG.items():
        schema = spec_doc["components"]["schemas"][catalog[name]["$ref"].rsplit("/", 1)[1]]
        fields = {f.name for f in dataclasses.fields(kind)} - {"id", "extra"}
        assert set(schema["properties"]) == fields, name


def test_catalog_schemas_accept_well_formed_events(event_schemas):
    """Events the pipeline would emit (built from client/events.py) validate against their schemas."""
    samples = one_of_each()
    assert {s.name for s in samples} == set(event_schemas)
    for sample in samples:
        event_schemas[sample.name].validate(json.loads(sample.to_json()))


# -- start ----------------------------------------------------------------------------------

def test_start_json_form_multipart_and_empty(transport_server, check):
    """start takes JSON, a URL-encoded form, a multipart form or no body at all: 200."""
    url = transport_server.url + LIVE + "/start"
    answers = [
        check(requests.post(url, json={"goal": "close", "suffix": ".wav", "ttl_seconds": 120,
                                       "language": "en", "metadata": {"crm": 7}}, timeout=TIMEOUT), 200),
        check(requests.post(url, json={"suffix": ".pcm", "sample_rate": 8000, "channels": 2,
                                       "filename": "call.pcm", "goal": None}, timeout=TIMEOUT), 200),
        check(requests.post(url, data={"filename": "call.wav", "ttl_seconds": "61",
                                       "metadata": '{"k": 1}'}, timeout=TIMEOUT), 200),
        check(requests.post(url, files={"goal": (None, "x"), "suffix": (None, "pcm")},
                            timeout=TIMEOUT), 200),
        check(requests.post(url, timeout=TIMEOUT), 200),
    ]
    _OPENED.extend((transport_server, a.json(), None) for a in answers)
    body = answers[-1].json()
    assert body["chunk_endpoint"] == f"{LIVE}/{body['session_id']}/chunk"


def test_start_errors(transport_server, check):
    """start: 400 invalid_json, 413 for a body over the JSON limit, 422 naming the field."""
    url = transport_server.url + LIVE + "/start"
    json_type = {"Content-Type": "application/json"}
    check(requests.post(url, data="{nope", headers=json_type, timeout=TIMEOUT), 400,
          "invalid_json", request_ok=False)
    check(requests.post(url, data="[1]", headers=json_type, timeout=TIMEOUT), 400,
          "invalid_json", request_ok=False)
    big = check(requests.post(url, json={"goal": "a" * 70000}, timeout=TIMEOUT), 413,
                "payload_too_large", request_ok=False)
    assert big.json()["error"]["max_bytes"] == 65536
    for fields, field in [({"ttl_seconds": 5}, "ttl_seconds"), ({"ttl_seconds": True}, "ttl_seconds"),
                          ({"suffix": ".xyz"}, "suffix"), ({"filename": "notes.doc"}, "filename"),
                          ({"metadata": [1]}, "metadata"), ({"language": "e1"}, "language"),
                          ({"channels": 9}, "channels"), ({"goal": 3}, "goal")]:
        error = check(requests.post(url, json=fields, timeout=TIMEOUT), 422, "validation_failed",
                      request_ok=False).json()["error"]
        assert error["field"] == field


def test_start_server_full_has_retry_after(limits_server, check):
    """With HARKEN_MAX_SESSIONS sessions open, start is 503 server_full with Retry-After."""
    session = _pcm_session(limits_server)
    try:
        full = check(requests.post(limits_server.url + LIVE + "/start", timeout=TIMEOUT), 503,
                     "server_full")
        assert int(full.headers["Retry-After"]) > 0
        assert full.json()["error"]["max_sessions"] == 1
    finally:
        control(limits_server.url, session, "cancel")


# -- chunk ----------------------------------------------------------------------------------

def test_chunk_raw_query_header_multipart_and_duplicate(transport_server, check):
    """A raw body with chunk_seq in the query or X-Chunk-Seq, multipart, and a same-bytes retry: 200."""
    session = _pcm_session(transport_server)
    url = transport_server.url + session["chunk_endpoint"]
    first = check(upload(transport_server.url, session, 0, PCM_CHUNK), 200).json()
    assert first["next_chunk_seq"] == 1 and "duplicate" not in first
    check(requests.post(url, data=PCM_CHUNK, timeout=TIMEOUT,
                        headers={"Content-Type": "application/octet-stream", "X-Chunk-Seq": "1"}),
          200)
    check(requests.post(url, data={"chunk_seq": "2"}, files={"chunk": ("c.pcm", PCM_CHUNK)},
                        timeout=TIMEOUT), 200)
    check(requests.post(url, params={"chunk_seq": 3}, data=PCM_CHUNK, timeout=TIMEOUT,
                        headers={"Content-Type": "audio/l16"}), 200)
    again = check(upload(transport_server.url, session, 1, PCM_CHUNK), 200).json()
    assert again["duplicate"] is True and again["next_chunk_seq"] == 4


def test_chunk_conflicts(transport_server, check):
    """409: chunk_out_of_order (with expected_chunk_seq), chunk_conflict, session_closed."""
    session = _pcm_session(transport_server)
    check(upload(transport_server.url, session, 0, PCM_CHUNK), 200)
    ahead = check(upload(transport_server.url, session, 5, PCM_CHUNK), 409, "chunk_out_of_order")
    assert ahead.json()["error"]["expected_chunk_seq"] == 1
    check(upload(transport_server.url, session, 0, bytes([1]) * 3200), 409, "chunk_conflict")
    check(control(transport_server.url, session, "finalize"), 200)
    closed = check(upload(transport_server.url, session, 1, PCM_CHUNK), 409, "session_closed")
    # Finalize moves the session to processing, then completed once analysis drains: at once in
    # one process without models, a moment later where the lease holder is another worker.
    assert closed.json()["error"]["status"] in ("processing", "completed")


def test_chunk_not_found(transport_server, check):
    """An unknown session id: 404 session_not_found."""
    check(upload(transport_server.url, UNKNOWN, 0, PCM_CHUNK), 404, "session_not_found")


def test_chunk_too_large(transport_server, check):
    """A chunk over HARKEN_MAX_CHUNK_BYTES: 413 with max_bytes."""
    session = _pcm_session(transport_server)
    for size in (1024 * 1024 + 2, 1024 * 1024 + 100 * 1024):
        big = check(upload(transport_server.url, session, 0, bytes(size)), 413,
                    "payload_too_large", request_ok=False)
        assert big.json()["error"]["max_bytes"] == 1024 * 1024


def test_chunk_session_audio_limit(limits_server, check):
    """A session past HARKEN_MAX_SESSION_AUDIO_S: 413 with limit_seconds."""
    session = _pcm_session(limits_server)
    try:
        full = check(upload(limits_server.url, session, 0, PCM_CHUNK), 413, "payload_too_large")
        assert "limit_seconds" in full.json()["error"]
    finally:
        control(limits_server.url, session, "cancel")


def test_chunk_unprocessable(transport_server, check):
    """422: empty_chunk, invalid_chunk (session still usable), validation_failed for chunk_seq/part."""
    session = _pcm_session(transport_server)
    url = transport_server.url + session["chunk_endpoint"]
    check(upload(transport_server.url, session, 0, b""), 422, "empty_chunk", request_ok=False)
    check(requests.post(url, data={"chunk_seq": "0"}, files={"chunk": ("c.pcm", b"")},
                        timeout=TIMEOUT), 422, "empty_chunk", request_ok=False)
    for bad in ("x", "-1"):
        error = check(upload(transport_server.url, session, bad, PCM_CHUNK), 422, "validation_failed",
                      request_ok=False).json()["error"]
        assert error["field"] == "chunk_seq"
    missing = check(requests.post(url, data=PCM_CHUNK, timeout=TIMEOUT), 422, "validation_failed",
                    request_ok=False)
    assert missing.json()["error"]["field"] == "chunk_seq"
    no_part = check(requests.post(url, files={"chunk_seq": (None, "0")}, timeout=TIMEOUT), 422,
                    "validation_failed", request_ok=False)
    assert no_part.json()["error"]["field"] == "chunk"

    wav_session = _start(transport_server, suffix=".wav")
    junk = bytes(range(256)) * 8
    invalid = check(upload(transport_server.url, wav_session, 0, junk), 422, "invalid_chunk")
    assert invalid.json()["error"]["expected_chunk_seq"] == 0
    check(upload(transport_server.url, session, 0, PCM_CHUNK), 200)


def test_chunk_backpressure(backpressure_server, check):
    """Analysis too far behind: 429 backpressure with Retry-After and expected_chunk_seq."""
    session = _pcm_session(backpressure_server)
    busy = check(upload(backpressure_server.url, session, 0, PCM_CHUNK), 429, "backpressure")
    assert int(busy.headers["Retry-After"]) > 0
    assert busy.json()["error"]["expected_chunk_seq"] == 0


# -- events ---------------------------------------------------------------------------------

def test_events_stream_of_a_finished_session(transport_server, check, event_schemas):
    """A finalized session's stream: retry, then status … done with ids from 1, all in the catalog."""
    session = _pcm_session(transport_server)
    check(upload(transport_server.url, session, 0, PCM_CHUNK), 200)
    check(control(transport_server.url, session, "finalize"), 200)
    response, frames = _read_stream(transport_server, session)
    check(response, 200)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert frames[0] == {"retry": "2000"}
    events = _events(frames)
    assert [int(f["id"]) for f in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "status" and events[-1]["event"] == "done"
    _assert_catalog(frames, event_schemas)


def test_events_resume_with_header_and_query(transport_server, check, event_schemas):
    """Last-Event-ID (header) and last_event_id (query) resume after that id."""
    for how in ("header", "query"):
        session = _pcm_session(transport_server)
        check(control(transport_server.url, session, "finalize"), 200)
        options = {"headers": {"Last-Event-ID": "2"}} if how == "header" \
            else {"params": {"last_event_id": 2}}
        response, frames = _read_stream(transport_server, session, **options)
        check(response, 200)
        assert [int(f["id"]) for f in _events(frames)][0] == 3
        _assert_catalog(frames, event_schemas)


def test_events_live_cancel_and_second_consumer(transport_server, check, event_schemas):
    """While a consumer reads, a second GET is 409 consumer_attached; cancel ends the stream with error."""
    session = _pcm_session(transport_server)
    url = transport_server.url + session["events_endpoint"]
    first = requests.get(url, stream=True, timeout=TIMEOUT)
    try:
        lines = first.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 2000"  # the first consumer is attached now
        check(requests.get(url, timeout=TIMEOUT), 409, "consumer_attached")
        check(control(transport_server.url, session, "cancel", reason="user left"), 200)
        body = "retry: 2000\n" + "\n".join(lines) + "\n"
    finally:
        first.close()
    first.captured_body = body.encode()
    check(first, 200)
    frames = _parse_frames(first.captured_body)
    _assert_catalog(frames, event_schemas)
    last = json.loads(_events(frames)[-1]["data"])
    assert _events(frames)[-1]["event"] == "error"
    assert last == {"code": "cancelled", "message": "user left", "fatal": True}


def test_events_errors(transport_server, check):
    """events: 404 for an unknown id, 422 for a bad resume point."""
    check(requests.get(transport_server.url + UNKNOWN["events_endpoint"],
                       timeout=TIMEOUT), 404, "session_not_found")
    session = _pcm_session(transport_server)
    url = transport_server.url + session["events_endpoint"]
    error = check(requests.get(url, headers={"Last-Event-ID": "x"}, timeout=TIMEOUT), 422,
                  "validation_failed", request_ok=False).json()["error"]
    assert error["field"] == "last_event_id"
    check(requests.get(url, params={"last_event_id": "-4"}, timeout=TIMEOUT), 422,
          "validation_failed", request_ok=False)


# -- control --------------------------------------------------------------------------------

def test_control_actions(transport_server, check):
    """keepalive, finalize (twice: idempotent) and cancel answer 200 with the documented body."""
    session = _pcm_session(transport_server)
    check(control(transport_server.url, session, "keepalive"), 200)
    url = transport_server.url + session["control_endpoint"]
    check(requests.post(url, data={"action": "keepalive"}, timeout=TIMEOUT), 200)
    check(control(transport_server.url, session, "finalize", reason="done talking"), 200)
    again = check(control(transport_server.url, session, "finalize"), 200).json()
    assert again["detail"] == "finalize already requested"
    other = _pcm_session(transport_server)
    assert check(control(transport_server.url, other, "cancel"), 200).json()["status"] == "cancelled"


def test_control_errors(transport_server, check):
    """control: 400 bad JSON, 404, 409 session_closed, 413 huge body, 422 unknown or missing action."""
    session = _pcm_session(transport_server)
    url = transport_server.url + session["control_endpoint"]
    check(requests.post(url, data="{", headers={"Content-Type": "application/json"},
                        timeout=TIMEOUT), 400, "invalid_json", request_ok=False)
    check(requests.post(url, json={"action": "keepalive", "reason": "r" * 70000}, timeout=TIMEOUT),
          413, "payload_too_large", request_ok=False)
    for body in ({"action": "pause"}, {}, {"action": "cancel", "reason": 5}):
        check(requests.post(url, json=body, timeout=TIMEOUT), 422, "validation_failed",
              request_ok=False)
    check(control(transport_server.url, UNKNOWN, "keepalive"), 404,
          "session_not_found")
    check(control(transport_server.url, session, "cancel"), 200)
    for action in ("cancel", "keepalive", "finalize"):
        check(control(transport_server.url, session, action), 409, "session_closed")


# -- state, gone sessions, ops, routing -----------------------------------------------------

def test_state(transport_server, check):
    """GET /analyze/live/{id}: 200 with the state document; 404 for an unknown id."""
    session = _pcm_session(transport_server)
    check(upload(transport_server.url, session, 0, PCM_CHUNK), 200)
    state = check(requests.get(f"{transport_server.url}{LIVE}/{session['session_id']}", timeout=TIMEOUT),
                  200).json()
    assert state["next_chunk_seq"] == 1 and state["audio_seconds"] == 0.1
    check(requests.get(f"{transport_server.url}{LIVE}/{UNKNOWN['session_id']}",
                       timeout=TIMEOUT), 404, "session_not_found")


def test_removed_session_answers_410_everywhere(limits_server, check):
    """Once a finished session is removed, state, chunk, events and control all answer 410."""
    session = _pcm_session(limits_server)
    check(control(limits_server.url, session, "cancel"), 200)
    url = f"{limits_server.url}{LIVE}/{session['session_id']}"
    # The reaper runs every 0.1 s.
    assert wait_for(lambda: requests.get(url, timeout=TIMEOUT).status_code == 410, 10), \
        "the cancelled session was never removed"
    gone = check(requests.get(url, timeout=TIMEOUT), 410, "session_expired")
    assert gone.json()["error"]["status"] == "cancelled"
    check(upload(limits_server.url, session, 0, PCM_CHUNK), 410, "session_expired")
    check(requests.get(url + "/events", timeout=TIMEOUT), 410, "session_expired")
    check(control(limits_server.url, session, "keepalive"), 410, "session_expired")


def test_healthz_metrics_page_and_static(transport_server, check):
    """/healthz, /metrics, the page and its files answer 200 as documented; missing files a JSON 404."""
    health = check(requests.get(transport_server.url + "/healthz", timeout=TIMEOUT), 200).json()
    assert health["ready"] is True and health["auth"] is False
    metrics = check(requests.get(transport_server.url + "/metrics", timeout=TIMEOUT), 200)
    assert "harken_http_request_duration_seconds" in metrics.text
    check(requests.get(transport_server.url + "/", timeout=TIMEOUT), 200)
    check(requests.get(transport_server.url + "/ui/harken.js", timeout=TIMEOUT), 200)
    check(requests.get(transport_server.url + "/ui/no-such-file.js", timeout=TIMEOUT), 404, "not_found")


def test_whole_file_errors_are_documented(transport_server, check):
    """POST /analyze and /analyze/stream refuse as documented: 415, 422, and 503 without models."""
    url = transport_server.url
    for path in ("/analyze", "/analyze/stream"):
        check(requests.post(url + path, data=PCM_CHUNK, timeout=TIMEOUT), 415,
              "unsupported_media_type", request_ok=False)
        check(requests.post(url + path, files={"file": ("a.wav", b"")}, timeout=TIMEOUT), 422,
              "empty_file", request_ok=False)
        check(requests.post(url + path, files={"file": ("a.ogg", b"junk" * 100)}, timeout=TIMEOUT), 415,
              "unreadable_recording", request_ok=False)
        check(requests.post(url + path, files={"file": ("a.raw", PCM_CHUNK)}, timeout=TIMEOUT), 415,
              "unreadable_recording", request_ok=False)


def test_routing_errors_use_the_error_schema(transport_server, spec_doc):
    """404 for an unknown path and 405 (with Allow) for a wrong method match the spec's responses."""
    components = spec_doc["components"]

    def validator(name):
        ref = components["responses"][name]["content"]["application/json"]["schema"]
        return OAS30Validator({**ref, "components": components})

    for path in ("/nope", "/analyze/", "/analyze/live", "/analyze/live/x/y/z"):
        response = requests.get(transport_server.url + path, timeout=TIMEOUT)
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
        validator("RouteNotFound").validate(response.json())
    for method, path in (("delete", "/healthz"), ("post", "/metrics"), ("put", LIVE + "/start"),
                         ("get", "/analyze"),
                         ("get", LIVE + "/x/chunk"), ("post", LIVE + "/x/events")):
        response = requests.request(method, transport_server.url + path, timeout=TIMEOUT)
        assert response.status_code == 405 and response.headers["Content-Type"] == "application/json"
        assert response.headers["Allow"]
        validator("MethodNotAllowed").validate(response.json())


# -- auth and the kill switch ---------------------------------------------------------------

def _every_live_request(server, session):
    return [
        ("post", f"{server.url}{LIVE}/start", {"json": {}}),
        ("post", server.url + session["chunk_endpoint"],
         {"params": {"chunk_seq": 0}, "data": PCM_CHUNK,
          "headers": {"Content-Type": "application/octet-stream"}}),
        ("get", server.url + session["events_endpoint"], {}),
        ("post", server.url + session["control_endpoint"], {"json": {"action": "keepalive"}}),
        ("get", f"{server.url}{LIVE}/{session['session_id']}", {}),
    ]


def test_auth(auth_server, check):
    """With keys on: 401 without a valid key on every live endpoint, 404 for another key's session."""
    mine = {"X-API-Key": KEYS[0]}
    session = _pcm_session(auth_server, headers=mine)
    for method, url, kwargs in _every_live_request(auth_server, session):
        check(requests.request(method, url, timeout=TIMEOUT, **kwargs), 401, "unauthorized")
        wrong = {**kwargs, "headers": {**kwargs.get("headers", {}), "X-API-Key": "nope"}}
        check(requests.request(method, url, timeout=TIMEOUT, **wrong), 401, "unauthorized")
    theirs = {"X-API-Key": KEYS[1]}
    check(requests.get(f"{auth_server.url}{LIVE}/{session['session_id']}", headers=theirs, timeout=TIMEOUT),
          404, "session_not_found")
    check(upload(auth_server.url, session, 0, PCM_CHUNK, headers=theirs), 404, "session_not_found")
    check(upload(auth_server.url, session, 0, PCM_CHUNK, headers=mine), 200)
    check(requests.get(f"{auth_server.url}{LIVE}/{session['session_id']}", params={"api_key": KEYS[0]},
                       timeout=TIMEOUT), 200)
    health = check(requests.get(auth_server.url + "/healthz", timeout=TIMEOUT), 200).json()
    assert health["auth"] is True


def test_live_streaming_disabled(disabled_server, check):
    """ENABLE_LIVE_STREAMING=false: every live endpoint is 503 live_streaming_disabled; ops still work."""
    for method, url, kwargs in _every_live_request(disabled_server, UNKNOWN):
        check(requests.request(method, url, timeout=TIMEOUT, **kwargs), 503,
              "live_streaming_disabled")
    check(requests.get(disabled_server.url + "/healthz", timeout=TIMEOUT), 200)

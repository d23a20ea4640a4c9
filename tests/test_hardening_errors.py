"""Every HTTP error, from Werkzeug or gunicorn, is Harken's JSON error body with Harken's code."""
import pytest
import requests
from werkzeug.exceptions import default_exceptions

from app import create_app
from app.config import Settings
from live import TIMEOUT, start
from rawhttp import exchange, split_response

OURS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
        415: "unsupported_media_type"}


def _chunked(data, piece=64 * 1024):
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


@pytest.mark.parametrize("status", sorted(default_exceptions))
def test_every_werkzeug_error_is_our_json(status):
    """Each Werkzeug HTTPException becomes the JSON body; those Harken names get Harken's code."""
    app = create_app(Settings(pipeline="none"))

    @app.get("/raise")
    def _raise():
        raise default_exceptions[status]()

    response = app.test_client().get("/raise")
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == OURS.get(status, error["code"])
    assert error["code"].isidentifier() and error["code"].islower()
    assert "<" not in error["message"]


def test_chunked_multipart_over_the_limit_is_payload_too_large(transport_server):
    """A 3 MiB multipart chunk sent with Transfer-Encoding: chunked is 413 payload_too_large."""
    session = start(transport_server.url, suffix=".pcm")
    boundary = "b0und4ry"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"chunk_seq\"\r\n\r\n0\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"chunk\"; filename=\"c.pcm\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + bytes(3 * 1024 * 1024) \
        + f"\r\n--{boundary}--\r\n".encode()
    response = requests.post(transport_server.url + session["chunk_endpoint"], data=_chunked(body),
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                             timeout=TIMEOUT)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_routing_errors_carry_our_messages(transport_server):
    """404 and 405 from routing say it in Harken's words, not Werkzeug's prose."""
    missing = requests.get(transport_server.url + "/nowhere", timeout=TIMEOUT).json()["error"]
    assert missing == {"code": "not_found", "message": "No such resource."}
    wrong = requests.put(transport_server.url + "/healthz", timeout=TIMEOUT)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["Allow"]


@pytest.mark.parametrize("size", [200 * 1024, 1200 * 1024])
def test_chunked_start_body_over_the_json_limit_is_413(transport_server, size):
    """HARKEN_MAX_JSON_BYTES holds for a chunked body too (it was read whole, unbounded)."""
    body = ('{"goal": "' + "x" * size + '"}').encode()
    response = requests.post(transport_server.url + "/analyze/live/start", data=_chunked(body, 4096),
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 413
    assert response.json()["error"] == {**response.json()["error"], "code": "payload_too_large",
                                        "max_bytes": 65536}


def test_chunked_control_body_over_the_json_limit_is_413(transport_server):
    """…and for control bodies."""
    session = start(transport_server.url, suffix=".pcm")
    body = ('{"action": "keepalive", "reason": "' + "x" * 100_000 + '"}').encode()
    response = requests.post(transport_server.url + session["control_endpoint"], data=_chunked(body),
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 413


def test_double_slash_redirect_is_json(transport_server):
    """Werkzeug's merge-slashes redirect (308) carries a JSON body and the Location."""
    raw = exchange(transport_server.port,
                   b"GET /analyze//live/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = split_response(raw)
    assert status == 308 and headers["location"].endswith("/analyze/live/x")
    assert headers["content-type"] == "application/json"
    assert b'"code":"redirect"' in body.replace(b" ", b"")


@pytest.mark.parametrize("request_line, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1", 414),
    (b"GET /healthz HTTP/1.1 extra", 400),
    (b"GET /he\x01lthz HTTP/1.1", 400),
    (b"GET /healthz HTTP/9.9", 400),
])
def test_gunicorn_errors_are_json(transport_server, request_line, status):
    """Request lines gunicorn refuses answer the JSON error body, not an HTML page."""
    raw = exchange(transport_server.port, request_line + b"\r\nHost: x\r\n\r\n")
    code, headers, body = split_response(raw)
    assert code == status
    assert headers["content-type"] == "application/json"
    assert b'"error"' in body and b"<html" not in body

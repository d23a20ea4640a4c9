"""API keys, per-key isolation, CORS, health, metrics and what the logs may contain."""
import pytest
import requests

from live import TIMEOUT, collect, control, start, tone_pcm, upload

KEY_A, KEY_B = "key-alpha-5f1c9e", "key-beta-77d2a0"


@pytest.fixture(scope="module")
def keyed_server(start_server):
    """Auth on with two keys, CORS for one other origin."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS=f"{KEY_A},{KEY_B}",
                        HARKEN_CORS_ORIGINS="http://studio.example")


def _routes(session_id):
    base = f"/analyze/live/{session_id}"
    return [("post", "/analyze/live/start", {"json": {}}),
            ("post", base + "/chunk", {"params": {"chunk_seq": 0}, "data": b"\0\0"}),
            ("get", base + "/events", {}),
            ("post", base + "/control", {"json": {"action": "keepalive"}}),
            ("get", base, {}),
            ("post", "/analyze", {"data": b"audio"}),
            ("post", "/analyze/stream", {"data": b"audio"})]


@pytest.mark.parametrize("index", range(7))
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_every_live_route_needs_a_valid_key(keyed_server, index, key):
    """Each /analyze route answers 401 unauthorized without a key or with a wrong one."""
    method, path, kwargs = _routes("live_x")[index]
    headers = {"X-API-Key": key} if key else {}
    response = getattr(requests, method)(keyed_server.url + path, headers=headers, timeout=TIMEOUT, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_key_in_header_or_query_and_sessions_isolated_per_key(keyed_server):
    """A session belongs to its key: the other key gets 404 on every route; the query form works too."""
    mine = {"X-API-Key": KEY_A}
    session = start(keyed_server.url, headers=mine, suffix=".pcm")
    assert upload(keyed_server.url, session, 0, tone_pcm(0.2), headers=mine).status_code == 200
    for method, path, kwargs in _routes(session["session_id"])[1:5]:
        response = getattr(requests, method)(keyed_server.url + path, headers={"X-API-Key": KEY_B},
                                             timeout=TIMEOUT, **kwargs)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "session_not_found"
    state = requests.get(keyed_server.url + "/analyze/live/" + session["session_id"],
                         params={"api_key": KEY_A}, timeout=TIMEOUT)
    assert state.status_code == 200 and state.json()["next_chunk_seq"] == 1
    control(keyed_server.url, session, "finalize", headers=mine)
    events = requests.get(keyed_server.url + session["events_endpoint"], params={"api_key": KEY_A},
                          stream=True, timeout=TIMEOUT)
    assert events.status_code == 200
    events.close()


def test_health_and_metrics_need_no_key(keyed_server):
    """/healthz and /metrics stay open for probes and scrapers."""
    health = requests.get(keyed_server.url + "/healthz", timeout=TIMEOUT)
    assert health.status_code == 200
    assert health.json()["ready"] is True and health.json()["auth"] is True
    assert requests.get(keyed_server.url + "/metrics", timeout=TIMEOUT).status_code == 200


def test_keys_never_reach_the_log(keyed_server):
    """Neither a valid nor a wrong key appears in the server log, query-string keys included."""
    requests.get(keyed_server.url + "/analyze/live/live_x", params={"api_key": KEY_B}, timeout=TIMEOUT)
    requests.get(keyed_server.url + "/analyze/live/live_x", params={"api_key": "leaked-guess"},
                 timeout=TIMEOUT)
    log = keyed_server.log()
    assert "/analyze/live/live_x" in log
    for secret in (KEY_A, KEY_B, "leaked-guess"):
        assert secret not in log


def test_cors_preflight_and_headers_for_allowed_origins_only(keyed_server):
    """The listed origin gets CORS headers on preflight and responses; others get none."""
    preflight = requests.options(keyed_server.url + "/analyze/live/start", timeout=TIMEOUT, headers={
        "Origin": "http://studio.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Content-Type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://studio.example"
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    other = requests.options(keyed_server.url + "/analyze/live/start", timeout=TIMEOUT,
                             headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_session_id_is_on_the_session_log_lines(transport_server):
    """The server log names the session on the lines a session writes."""
    session = start(transport_server.url, suffix=".pcm")
    control(transport_server.url, session, "cancel")
    lines = [l for l in transport_server.log().splitlines() if "session started" in l or "session cancelled" in l]
    assert any(session["session_id"] in l and "session started" in l for l in lines)
    assert any(session["session_id"] in l and "session cancelled" in l for l in lines)


def test_metrics_count_sessions_chunks_bytes_and_events(start_server):
    """/metrics reports sessions by state, chunks, bytes, events, consumers and request latency."""
    server = start_server(HARKEN_PIPELINE="none")
    session = start(server.url, suffix=".pcm")
    upload(server.url, session, 0, tone_pcm(0.5))
    upload(server.url, session, 0, tone_pcm(0.5))
    control(server.url, session, "finalize")
    collect(server.url, session)
    text = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(samples['harken_sessions{state="completed"}']) == 1.0
    assert float(samples['harken_chunks_total{outcome="accepted"}']) == 1.0
    assert float(samples['harken_chunks_total{outcome="duplicate"}']) == 1.0
    assert float(samples["harken_chunk_bytes_total"]) == 16000.0
    assert float(samples['harken_events_total{event="done"}']) == 1.0
    assert float(samples["harken_consumers"]) == 0.0
    assert any(k.startswith("harken_http_request_duration_seconds_bucket{endpoint=\"/analyze/live/<session_id>/chunk\"")
               for k in samples)

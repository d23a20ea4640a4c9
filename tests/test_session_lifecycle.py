"""Session lifetimes: TTL expiry by the reaper, keepalive, tombstones (410), the session limit."""
import time

import pytest
import requests

from live import TIMEOUT, collect, control, open_events, start, tone_pcm, upload, wait_for


@pytest.fixture(scope="module")
def short_ttl_server(start_server):
    """TTLs down to 1 s, a fast reaper, results kept 1 s, and room for only 4 sessions."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MIN_TTL_S="1", HARKEN_REAPER_INTERVAL_S="0.1",
                        HARKEN_RESULT_TTL_S="1", HARKEN_MAX_SESSIONS="4", HARKEN_RETRY_AFTER_S="7")


def _status(server, session):
    response = requests.get(server.url + "/analyze/live/" + session["session_id"], timeout=TIMEOUT)
    return response.status_code, response.json()

def test_idle_session_expires_then_answers_410(short_ttl_server):
    """With no chunk, keepalive or consumer the session expires at its TTL; later it is 410, not 404."""
    session = start(short_ttl_server.url, ttl_seconds=1)
    assert wait_for(lambda: _status(short_ttl_server, session)[1].get("status") == "expired", 10)
    seen = collect(short_ttl_server.url, session)
    assert seen[-1].name == "error" and seen[-1].data["code"] == "session_expired"
    assert wait_for(lambda: _status(short_ttl_server, session)[0] == 410, 10)
    gone = upload(short_ttl_server.url, session, 0, tone_pcm(0.1))
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "session_expired"


def test_keepalive_holds_a_session_past_its_ttl(short_ttl_server):
    """Keepalives every half TTL keep an idle session alive well past one TTL."""
    session = start(short_ttl_server.url, ttl_seconds=1)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        assert control(short_ttl_server.url, session, "keepalive").status_code == 200
        time.sleep(0.3)
    assert _status(short_ttl_server, session)[1]["status"] == "waiting_media"
    control(short_ttl_server.url, session, "cancel")


def test_attached_consumer_holds_a_session(short_ttl_server):
    """A session with a consumer attached does not expire."""
    session = start(short_ttl_server.url, ttl_seconds=1)
    stream = open_events(short_ttl_server.url, session)
    time.sleep(2.0)  # two TTLs: the reaper has had twenty passes to expire it
    assert _status(short_ttl_server, session)[1]["status"] == "waiting_media"
    stream.close()
    control(short_ttl_server.url, session, "cancel")


def test_finished_session_results_go_after_the_result_ttl(short_ttl_server):
    """A completed session stays readable for HARKEN_RESULT_TTL_S, then answers 410."""
    session = start(short_ttl_server.url, suffix=".pcm", ttl_seconds=60)
    upload(short_ttl_server.url, session, 0, tone_pcm(0.2))
    control(short_ttl_server.url, session, "finalize")
    assert collect(short_ttl_server.url, session)[-1].name == "done"
    assert wait_for(lambda: _status(short_ttl_server, session)[0] == 410, 10)
    body = _status(short_ttl_server, session)[1]
    assert body["error"]["status"] == "completed"


def test_server_full_is_503_with_retry_after(short_ttl_server):
    """Past HARKEN_MAX_SESSIONS open sessions, start answers 503 server_full with Retry-After."""
    opened = []
    while True:
        response = requests.post(short_ttl_server.url + "/analyze/live/start", json={"ttl_seconds": 60},
                                 timeout=TIMEOUT)
        if response.status_code != 200:
            break
        opened.append(response.json())
        assert len(opened) <= 4
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "server_full"
    assert response.headers["Retry-After"] == "7"
    for session in opened:
        control(short_ttl_server.url, session, "cancel")
    assert requests.post(short_ttl_server.url + "/analyze/live/start", json={},
                         timeout=TIMEOUT).status_code == 200


def test_live_streaming_can_be_turned_off(disabled_server):
    """ENABLE_LIVE_STREAMING=false makes the live endpoints answer 503 live_streaming_disabled."""
    server = disabled_server
    response = requests.post(server.url + "/analyze/live/start", json={}, timeout=TIMEOUT)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "live_streaming_disabled"
    assert requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200

"""Small API-contract defects: expiry codes, 405 on start, strict integers, chunk_seq sources,
Last-Event-ID beyond the log, hang-up after bytes, reconnect right after a close."""
import socket
import time

import pytest
import requests

from live import TIMEOUT, attach_within, collect, control, open_events, start, tone_pcm, upload, wait_for


@pytest.fixture(scope="module")
def short_ttl_server(start_server):
    """TTLs down to 1 s, a fast reaper, results kept 30 s; heartbeat 60 s."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MIN_TTL_S="1", HARKEN_REAPER_INTERVAL_S="0.1",
                        HARKEN_RESULT_TTL_S="30", HARKEN_HEARTBEAT_S="60")

def test_expired_session_answers_410_to_chunk_and_keepalive(short_ttl_server):
    """Once expired (and before it is removed) chunk and keepalive are 410 session_expired."""
    url = short_ttl_server.url
    session = start(url, ttl_seconds=1, suffix=".pcm")
    assert wait_for(lambda: requests.get(url + "/analyze/live/" + session["session_id"],
                                          timeout=TIMEOUT).json()["status"] == "expired", 10)
    for response in (upload(url, session, 0, tone_pcm(0.1)), control(url, session, "keepalive")):
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "session_expired"


def test_get_on_start_is_405(transport_server):
    """GET /analyze/live/start is the wrong method on a known path, not an unknown session."""
    response = requests.get(transport_server.url + "/analyze/live/start", timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("text", [" 0", "0 ", "+0", "0_0", "٠", "00", "01", "0x0", "1e3", "9" * 40])
def test_chunk_seq_is_plain_ascii_digits(transport_server, text):
    """Only `0` or `[1-9][0-9]*` (ASCII, bounded length) is an integer on the wire."""
    session = start(transport_server.url, suffix=".pcm")
    response = requests.post(transport_server.url + session["chunk_endpoint"],
                             params={"chunk_seq": text}, data=tone_pcm(0.1), timeout=TIMEOUT)
    assert response.status_code == 422, text
    assert response.json()["error"]["field"] == "chunk_seq"


@pytest.mark.parametrize("text", [" 60", "+60", "6_0", "٦٠"])
def test_form_integers_are_plain_ascii_digits(transport_server, text):
    """The same rule for form fields of start."""
    response = requests.post(transport_server.url + "/analyze/live/start",
                             data={"ttl_seconds": text}, timeout=TIMEOUT)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "ttl_seconds"


@pytest.mark.parametrize("text", [" 1", "+1", "1_0", "١"])
def test_last_event_id_is_plain_ascii_digits(transport_server, text):
    """The same rule for the resume point."""
    session = start(transport_server.url, suffix=".pcm")
    response = requests.get(transport_server.url + session["events_endpoint"],
                            params={"last_event_id": text}, timeout=TIMEOUT)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "last_event_id"


@pytest.mark.parametrize("where", [{"params": {"chunk_seq": "1"}}, {"headers": {"X-Chunk-Seq": "1"}}])
def test_disagreeing_chunk_seq_is_422(transport_server, where):
    """A multipart chunk_seq that disagrees with the query or header is refused, naming the field."""
    session = start(transport_server.url, suffix=".pcm")
    response = requests.post(transport_server.url + session["chunk_endpoint"], data={"chunk_seq": "0"},
                             files={"chunk": ("c.pcm", tone_pcm(0.1))}, timeout=TIMEOUT, **where)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "chunk_seq"
    agreeing = requests.post(transport_server.url + session["chunk_endpoint"], data={"chunk_seq": "0"},
                             params={"chunk_seq": "0"}, headers={"X-Chunk-Seq": "0"},
                             files={"chunk": ("c.pcm", tone_pcm(0.1))}, timeout=TIMEOUT)
    assert agreeing.status_code == 200


def test_query_and_header_chunk_seq_must_agree(transport_server):
    session = start(transport_server.url, suffix=".pcm")
    response = requests.post(transport_server.url + session["chunk_endpoint"], params={"chunk_seq": "0"},
                             headers={"X-Chunk-Seq": "3"}, data=tone_pcm(0.1), timeout=TIMEOUT)
    assert response.status_code == 422 and response.json()["error"]["field"] == "chunk_seq"


@pytest.mark.parametrize("ahead", [1, 2 ** 70])
def test_last_event_id_beyond_the_log_is_422(transport_server, ahead):
    """Resuming after an id the session never sent is refused, with the session's last id."""
    session = start(transport_server.url, suffix=".pcm")
    last = requests.get(transport_server.url + "/analyze/live/" + session["session_id"],
                        timeout=TIMEOUT).json()["last_event_id"]
    response = open_events(transport_server.url, session, last_event_id=last + ahead)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "last_event_id"
    assert error.get("last_event_id", last) == last  # 2**70 is already refused as too long
    assert open_events(transport_server.url, session, last_event_id=last).status_code == 200

def test_hangup_after_sending_bytes_frees_the_slot(short_ttl_server):
    """A consumer that writes bytes on the stream and then closes frees the slot at once."""
    session = start(short_ttl_server.url, suffix=".pcm")
    sock = socket.create_connection(("127.0.0.1", short_ttl_server.port), timeout=10)
    sock.sendall(f"GET {session['events_endpoint']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while b"retry:" not in received:
        received += sock.recv(4096)
    sock.sendall(b"hello, still here\r\n")
    time.sleep(0.2)
    sock.close()
    # The heartbeat is 60 s: attaching within 3 s proves the close was seen despite the bytes.
    assert attach_within(short_ttl_server.url, session, seconds=3)


def test_reconnect_right_after_done_never_meets_409(transport_server):
    """The slot is free by the time the client has read the last frame of a finished stream."""
    for _ in range(20):
        session = start(transport_server.url, suffix=".pcm")
        upload(transport_server.url, session, 0, tone_pcm(0.1))
        control(transport_server.url, session, "finalize")
        assert collect(transport_server.url, session)[-1].name == "done"
        again = open_events(transport_server.url, session)
        assert again.status_code == 200, again.text
        again.close()

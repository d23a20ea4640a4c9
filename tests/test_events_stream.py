"""The SSE stream: framing, resume by id, one consumer at a time, hang-up detection, shutdown."""
import signal
import socket

import pytest
import requests

from live import (TIMEOUT, attach_within, collect, control, iter_events, open_events, start, tone_pcm,
                  upload)


def _finished_session(server, chunks=3):
    session = start(server.url, suffix=".pcm")
    for seq in range(chunks):
        assert upload(server.url, session, seq, tone_pcm(1.0)).status_code == 200
    assert control(server.url, session, "finalize").status_code == 200
    return session


def _raw_get(server, path, extra_headers=""):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n{extra_headers}\r\n".encode())
    return sock


def _read_until(sock, marker, limit=65536):
    data = b""
    while marker not in data and len(data) < limit:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    return data


def test_stream_frames_retry_ids_names_and_one_line_json(transport_server):
    """The stream opens with `retry: 2000`; every event has id, event and one-line JSON data."""
    session = _finished_session(transport_server, chunks=1)
    sock = _raw_get(transport_server, session["events_endpoint"])
    raw = _read_until(sock, b"event: done").decode()
    sock.close()
    body = raw.split("\r\n\r\n", 1)[1]
    assert "text/event-stream" in raw.split("\r\n\r\n", 1)[0]
    assert "retry: 2000\n\n" in body
    frames = [f for f in body.split("\n\n") if "event:" in f]
    for number, frame in enumerate(frames, start=1):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        assert set(fields) == {"id", "event", "data"}
        assert fields["id"] == str(number)
        assert fields["data"].startswith("{") and fields["data"].endswith("}")


def test_resume_with_last_event_id_loses_and_repeats_nothing(transport_server):
    """Reading two events, dropping, then resuming by header or query gives the rest exactly once."""
    session = _finished_session(transport_server)
    everything = collect(transport_server.url, session)
    ids = [e.id for e in everything]
    response = open_events(transport_server.url, session)
    stream = iter_events(response)
    head = [next(stream), next(stream)]
    response.close()
    rest = collect(transport_server.url, session, last_event_id=head[-1].id)
    assert [e.id for e in head + rest] == ids
    by_query = requests.get(transport_server.url + session["events_endpoint"],
                            params={"last_event_id": 3}, stream=True, timeout=TIMEOUT)
    tail = list(iter_events(by_query))
    assert [e.id for e in tail] == ids[3:]


def test_bad_last_event_id_is_422(transport_server):
    """A non-numeric resume point is a 422 naming last_event_id."""
    session = start(transport_server.url)
    response = open_events(transport_server.url, session, last_event_id="abc")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "last_event_id"


def test_second_consumer_gets_409_until_the_first_leaves(transport_server):
    """Only one consumer at a time: a second GET is 409 consumer_attached, and works once the first closes."""
    session = start(transport_server.url, suffix=".pcm")
    first = open_events(transport_server.url, session)
    first_events = iter_events(first)  # keep a reference: a collected iterator closes the socket
    next(first_events)
    second = open_events(transport_server.url, session)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "consumer_attached"
    state = requests.get(transport_server.url + "/analyze/live/" + session["session_id"], timeout=TIMEOUT)
    assert state.json()["consumer_attached"] is True
    first.close()
    assert attach_within(transport_server.url, session, seconds=5)

def test_dropped_socket_frees_the_slot_before_any_keepalive(start_server):
    """A consumer whose TCP connection vanishes frees the slot at once, not at the next heartbeat write."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_HEARTBEAT_S="60")
    session = start(server.url, suffix=".pcm")
    sock = _raw_get(server, session["events_endpoint"])
    assert b"retry: 2000" in _read_until(sock, b"retry: 2000")
    sock.close()
    # The heartbeat is 60 s: getting in within 5 s proves the hang-up itself was noticed.
    assert attach_within(server.url, session, seconds=5)


def test_keepalive_comments_arrive_on_an_idle_stream(transport_server):
    """An idle stream carries `: keepalive` comments (heartbeat is 1 s on this server)."""
    session = start(transport_server.url)
    sock = _raw_get(transport_server, session["events_endpoint"])
    assert b": keepalive" in _read_until(sock, b": keepalive")
    sock.close()


def test_late_reconnect_after_done_replays_the_log(transport_server):
    """Within HARKEN_RESULT_TTL_S a finished session's whole stream can be read again."""
    session = _finished_session(transport_server, chunks=1)
    first = collect(transport_server.url, session)
    again = collect(transport_server.url, session)
    assert [(e.id, e.name, e.data) for e in again] == [(e.id, e.name, e.data) for e in first]


def test_live_events_arrive_while_chunks_flow(transport_server):
    """A consumer attached before the audio sees ingesting status updates as chunks land."""
    session = start(transport_server.url, suffix=".pcm")
    response = open_events(transport_server.url, session)
    stream = iter_events(response)
    assert next(stream).data["phase"] == "waiting_media"
    upload(transport_server.url, session, 0, tone_pcm(1.0))
    update = next(stream)
    assert update.name == "status" and update.data["phase"] == "ingesting"
    assert update.data["audio_seconds"] == pytest.approx(1.0)
    response.close()


def test_sigterm_tells_consumers_to_reconnect(start_server):
    """On SIGTERM an open stream gets a non-fatal server_shutdown error and ends; the server exits."""
    server = start_server(HARKEN_PIPELINE="none")
    session = start(server.url, suffix=".pcm")
    response = open_events(server.url, session)
    stream = iter_events(response)
    next(stream)
    server.proc.send_signal(signal.SIGTERM)
    rest = list(stream)
    assert rest[-1].name == "error"
    assert rest[-1].data["code"] == "server_shutdown" and rest[-1].data["fatal"] is False
    assert server.proc.wait(30) == 0

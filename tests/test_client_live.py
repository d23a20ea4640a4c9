"""LiveClient against the real gunicorn/gevent server (transport pipeline): the API, stream_file, reconnects and retries through a faulty proxy."""
import time
import wave

import pytest

from client import (ChunkConflict, ChunkOutOfOrder, Done, Error, LiveClient, LiveSession,
                    ReconnectFailed, RetryPolicy, SessionClosed, SessionNotFound, Status,
                    Unauthorized, UploadFailed, ValidationFailed, InvalidChunk, is_terminal)
from proxy import Fault, FaultyProxy
from speechgen import RATE_HZ

BYTES_PER_S = RATE_HZ * 2  # 16-bit mono
RETRY_MS = 200


@pytest.fixture(scope="module")
def server(start_server):
    """The transport pipeline with a status event per chunk and a short `retry:`, so streams are busy and reconnects quick."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_HEARTBEAT_S="1", HARKEN_STATUS_EVERY_S="0",
                        HARKEN_SSE_RETRY_MS=str(RETRY_MS))


def silence_pcm(tmp_path, seconds, name="silence.pcm"):
    """Headerless s16le mono silence of an exact duration."""
    path = tmp_path / name
    path.write_bytes(bytes(int(BYTES_PER_S * seconds)))
    return path


def silence_wav(tmp_path, seconds, name="silence.wav"):
    path = tmp_path / name
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        out.writeframes(bytes(int(BYTES_PER_S * seconds)))
    return path


def assert_complete_stream(events):
    """Ids run 1, 2, 3, … with none missing or repeated, and the stream ends with `done`."""
    ids = [e.id for e in events]
    assert ids == list(range(1, len(events) + 1)), ids
    assert isinstance(events[-1], Done)


def test_api_round_trip(server):
    """start, upload (with a duplicate), state, finalize, events: each answer typed and exact."""
    with LiveClient(server.url) as client:
        session = client.start(suffix=".pcm", goal="check the client", metadata={"call": 7})
        assert isinstance(session, LiveSession)
        assert session.session_id.startswith("live_") and session.next_chunk_seq == 0
        assert session.status == "waiting_media"
        first = client.upload(session, 0, bytes(3200))
        assert (first.chunk_seq, first.next_chunk_seq, first.total_bytes) == (0, 1, 3200)
        assert not first.duplicate
        again = client.upload(session, 0, bytes(3200))
        assert again.duplicate and again.next_chunk_seq == 1
        client.upload(session.session_id, 1, bytes(6400))
        state = client.state(session)
        assert (state["next_chunk_seq"], state["total_bytes"]) == (2, 9600)
        assert state["audio_seconds"] == pytest.approx(0.3)
        answer = client.control(session, "finalize")
        assert answer["action"] == "finalize" and answer["session_id"] == session.session_id
        events = list(client.events(session))
        replay = list(client.events(session, last_event_id=events[1].id))
    assert_complete_stream(events)
    assert replay == events[2:] and [e.id for e in replay] == [e.id for e in events[2:]]
    assert all(isinstance(e, Status) for e in events[:-1])
    assert events[-1].metadata == {"call": 7}
    assert events[-2].phase == "completed"


def test_api_errors_are_typed(server):
    """Each refusal raises its own class, carrying the server's code and extra fields."""
    with LiveClient(server.url) as client:
        with pytest.raises(ValidationFailed) as bad_ttl:
            client.start(ttl_seconds=5)
        assert bad_ttl.value.details.get("field") == "ttl_seconds"
        session = client.start(suffix=".pcm")
        client.upload(session, 0, bytes(3200))
        with pytest.raises(ChunkOutOfOrder) as gap:
            client.upload(session, 3, bytes(3200))
        assert gap.value.expected_chunk_seq == 1 and gap.value.status == 409
        with pytest.raises(ChunkConflict):
            client.upload(session, 0, bytes(3199) + b"\x01")
        client.control(session, "cancel", reason="test over")
        with pytest.raises(SessionClosed):
            client.upload(session, 1, bytes(3200))
        with pytest.raises(SessionNotFound):
            client.state("live_doesnotexist")
        events = list(client.events(session))
    assert isinstance(events[-1], Error) and events[-1].code == "cancelled"
    assert events[-1].message == "test over"


def test_api_key_is_sent(start_server):
    """Without the key every call is refused as `Unauthorized`; with it the session works."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS="k-one,k-two")
    with LiveClient(server.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.start()
    with LiveClient(server.url, api_key="k-two") as client:
        session = client.start(suffix=".pcm")
        client.upload(session, 0, bytes(3200))
        client.control(session, "finalize")
        assert isinstance(list(client.events(session))[-1], Done)


def test_stream_file_uploads_finalizes_and_yields(server, tmp_path):
    """stream_file sends every byte in order from its thread and ends with `done`."""
    path = silence_pcm(tmp_path, 2.0)
    receipts = []
    with LiveClient(server.url) as client:
        stream = client.stream_file(path, chunk_bytes=6400,
                                    on_chunk=lambda receipt, sent, total: receipts.append(receipt))
        events = list(stream)
        state = client.state(stream.session)
    assert_complete_stream(events)
    assert [r.chunk_seq for r in receipts] == list(range(10))
    assert stream.bytes_sent == stream.total_bytes == state["total_bytes"] == 64000
    assert state["status"] == "completed" and state["audio_seconds"] == pytest.approx(2.0)
    assert events[-2].audio_seconds == pytest.approx(2.0)


def test_stream_file_realtime_paces_wav_like_a_microphone(server, tmp_path):
    """With realtime=True each chunk leaves when its audio would have been recorded (WAV byte rate)."""
    path = silence_wav(tmp_path, 1.5)
    sent_at = []
    with LiveClient(server.url) as client:
        began = time.monotonic()
        stream = client.stream_file(path, chunk_bytes=BYTES_PER_S // 4, realtime=True,
                                    on_chunk=lambda *_: sent_at.append(time.monotonic() - began))
        events = list(stream)
    assert isinstance(events[-1], Done)
    # chunk k (of 0.25 s) holds audio up to (k + 1) * 0.25 s; the header plays in no time
    assert len(sent_at) == 7
    for k, at in enumerate(sent_at[:6]):
        assert at >= (k + 1) * 0.25 - 0.02, sent_at
    assert sent_at[-1] < 20 * 1.5, sent_at  # a hang, not a slow machine


def test_upload_failure_surfaces_in_the_caller(server, tmp_path):
    """Audio the server cannot decode stops the upload thread; the caller gets UploadFailed, the session is cancelled."""
    path = tmp_path / "broken.wav"
    path.write_bytes(b"this is not audio " * 1000)
    with LiveClient(server.url) as client:
        stream = client.stream_file(path, chunk_bytes=4096)
        with pytest.raises(UploadFailed) as failed:
            list(stream)
        assert isinstance(failed.value.__cause__, InvalidChunk)
        assert client.state(stream.session)["status"] == "cancelled"


def test_leaving_the_loop_cancels_the_session(server, tmp_path):
    """A caller that stops iterating early leaves no session running."""
    path = silence_pcm(tmp_path, 30.0)
    with LiveClient(server.url) as client:
        stream = client.stream_file(path, chunk_bytes=3200, realtime=True)
        for event in stream:
            if isinstance(event, Status) and event.phase == "ingesting":
                break
        stream_iter_closed_state = client.state(stream.session)["status"]
    assert stream_iter_closed_state == "cancelled"


def test_events_survive_cut_connections(server, tmp_path):
    """The SSE connection is cut mid-event four times while audio streams in: every event arrives once, in order."""
    cuts, per_connection = 4, 5

    def cut_early_streams(seen):
        if seen.path.endswith("/events") and len(proxy.requests_to("/events")) <= cuts:
            return Fault(cut_after_events=per_connection)
        return None

    path = silence_pcm(tmp_path, 3.0)
    with FaultyProxy(server.url, cut_early_streams) as proxy, LiveClient(proxy.url) as client:
        stream = client.stream_file(path, chunk_bytes=BYTES_PER_S // 10, realtime=True)
        events = list(stream)
        streams = proxy.requests_to("/events")
        uploads_after_last_cut = [s for s in proxy.requests_to("/chunk")
                                  if s.at > streams[cuts - 1].cut_at]
    assert_complete_stream(events)
    assert len(events) > cuts * per_connection
    assert len(streams) == cuts + 1 and all(s.cut_at for s in streams[:cuts])
    assert uploads_after_last_cut, "the cuts should fall while audio is still uploading"
    for n, (dropped, resumed) in enumerate(zip(streams, streams[1:]), start=1):
        assert resumed.headers.get("last-event-id") == str(n * per_connection)
        assert resumed.at - dropped.cut_at >= RETRY_MS / 1000 * 0.95, "retry: was not honoured"
    assert "last-event-id" not in streams[0].headers


def test_reconnects_are_bounded(server):
    """A stream cut before its first event every time ends in ReconnectFailed after `reconnect_tries`, backing off."""
    def always_cut(seen):
        return Fault(cut_after_events=0) if seen.path.endswith("/events") else None

    with FaultyProxy(server.url, always_cut) as proxy, \
            LiveClient(proxy.url, reconnect_tries=3) as client:
        session = client.start(suffix=".pcm")
        client.upload(session, 0, bytes(3200))
        client.control(session, "finalize")
        with pytest.raises(ReconnectFailed) as gave_up:
            list(client.events(session))
        streams = proxy.requests_to("/events")
    assert len(streams) == 4
    assert "3 reconnects" in str(gave_up.value)
    waits = [later.at - earlier.cut_at for earlier, later in zip(streams, streams[1:])]
    for wait, expected in zip(waits, (0.2, 0.4, 0.8)):
        assert wait >= expected * 0.95, waits
    assert all("last-event-id" not in s.headers for s in streams)


def test_reconnect_refused_for_good_raises_at_once(server):
    """A reconnect to a session the server does not know is not retried."""
    with FaultyProxy(server.url) as proxy, LiveClient(proxy.url) as client:
        with pytest.raises(SessionNotFound):
            next(client.events("live_" + "0" * 24))
        assert len(proxy.requests_to("/events")) == 1


def test_chunks_land_once_through_drops_and_delays(server, tmp_path):
    """Chunk POSTs dropped, answered into the void and held past the timeout: every chunk lands exactly once."""
    plan = {2: Fault(drop=True), 4: Fault(lose_response=True), 6: Fault(delay_s=1.2),
            9: Fault(drop=True)}
    faulted = set()

    def chunk_faults(seen):
        if seen.chunk_seq in plan and seen.chunk_seq not in faulted:
            faulted.add(seen.chunk_seq)
            return plan[seen.chunk_seq]
        return None

    path = silence_pcm(tmp_path, 1.2)
    receipts = []
    retry = RetryPolicy(tries=4, base_delay_s=0.05, max_delay_s=0.2)
    with FaultyProxy(server.url, chunk_faults) as proxy, \
            LiveClient(proxy.url, timeout=(2.0, 0.5), retry=retry) as client:
        stream = client.stream_file(path, chunk_bytes=3200,
                                    on_chunk=lambda receipt, *_: receipts.append(receipt))
        events = list(stream)
        state = client.state(stream.session)
        posts = proxy.requests_to("/chunk", "POST")
    assert_complete_stream(events)
    assert faulted == set(plan)
    assert [r.chunk_seq for r in receipts] == list(range(12))
    assert receipts[4].duplicate and not receipts[3].duplicate
    assert state["next_chunk_seq"] == 12 and state["total_bytes"] == 12 * 3200
    sent = [p.chunk_seq for p in posts]
    for seq in plan:
        assert sent.count(seq) == 2, sent


def test_fatal_error_ends_iteration_cleanly(server):
    """A cancel's fatal `error` is the last event: iteration stops without raising."""
    with LiveClient(server.url) as client:
        session = client.start(suffix=".pcm")
        client.upload(session, 0, bytes(3200))
        events = client.events(session)
        first = next(events)
        client.control(session, "cancel")
        rest = list(events)
    assert first.id == 1
    assert is_terminal(rest[-1]) and rest[-1].code == "cancelled"

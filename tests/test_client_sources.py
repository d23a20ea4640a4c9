"""`LiveClient.stream` from live sources against the real server: a generator, a pipe, a socket, bytes in memory; events read while the source is still live."""
import io
import os
import socket
import threading
import wave

import pytest
import requests

from client import Done, LiveClient, Status, UploadFailed
from client.sources import audio_source
from speechgen import RATE_HZ

BYTES_PER_S = RATE_HZ * 2
WAIT_S = 30.0


@pytest.fixture(scope="module")
def server(start_server):
    """The transport pipeline with a status event per chunk, so each chunk is answered on the stream."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_STATUS_EVERY_S="0")


def ids_run_to_done(events):
    return [e.id for e in events] == list(range(1, len(events) + 1)) and isinstance(events[-1], Done)


def test_a_generator_is_streamed_while_its_events_are_read(server):
    """Each chunk of a live generator is only produced after the caller's loop saw the previous one's status."""
    chunks, chunk_s = 5, 0.1
    heard = [threading.Event() for _ in range(chunks)]

    def microphone():
        for k in range(chunks):
            yield bytes(int(BYTES_PER_S * chunk_s))
            if not heard[k].wait(WAIT_S):
                raise RuntimeError(f"the caller never saw chunk {k}'s status while the source was live")

    with LiveClient(server.url) as client:
        stream = client.stream(microphone(), suffix=".pcm")
        events = []
        for event in stream:
            events.append(event)
            if isinstance(event, Status) and event.phase == "ingesting":
                heard[round(event.audio_seconds / chunk_s) - 1].set()
    assert ids_run_to_done(events)
    assert stream.chunks_sent == chunks and stream.total_bytes is None
    assert events[-2].audio_seconds == pytest.approx(chunks * chunk_s)


def test_a_pipe_is_read_in_full_chunks_until_it_closes(server):
    """A pipe written piecemeal by another thread is uploaded in chunk_bytes chunks, the short tail last."""
    read_end, write_end = os.pipe()
    payload = bytes(range(256)) * 250  # 64000 bytes: two seconds

    def writer():
        with os.fdopen(write_end, "wb") as pipe:
            for start in range(0, len(payload), 1000):
                pipe.write(payload[start:start + 1000])
                pipe.flush()

    threading.Thread(target=writer, daemon=True).start()
    sizes = []
    with LiveClient(server.url) as client, os.fdopen(read_end, "rb") as pipe:
        stream = client.stream(pipe, chunk_bytes=6000, suffix=".pcm",
                               on_chunk=lambda receipt, sent, total: sizes.append((sent, total)))
        events = list(stream)
        state = client.state(stream.session)
    assert ids_run_to_done(events)
    assert [sent for sent, _ in sizes] == [6000 * k for k in range(1, 11)] + [64000]
    assert all(total is None for _, total in sizes)
    assert state["total_bytes"] == 64000 and state["audio_seconds"] == pytest.approx(2.0)


def test_a_socket_and_bytes_in_memory(server):
    """A connected socket is read until its peer shuts down; a WAV in a BytesIO needs no suffix (the server sniffs it)."""
    ours, theirs = socket.socketpair()

    def peer():
        theirs.sendall(bytes(BYTES_PER_S))
        theirs.shutdown(socket.SHUT_WR)

    threading.Thread(target=peer, daemon=True).start()
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        out.writeframes(bytes(BYTES_PER_S // 2))
    wav.seek(0)
    with LiveClient(server.url) as client:
        from_socket = list(client.stream(ours, suffix=".pcm"))
        in_memory = client.stream(wav, chunk_bytes=4096)
        from_memory = list(in_memory)
    ours.close()
    theirs.close()
    assert ids_run_to_done(from_socket) and from_socket[-2].audio_seconds == pytest.approx(1.0)
    assert ids_run_to_done(from_memory) and from_memory[-2].audio_seconds == pytest.approx(0.5)
    assert in_memory.total_bytes == in_memory.bytes_sent == 44 + BYTES_PER_S // 2


def test_stream_file_takes_what_stream_takes(server, tmp_path):
    """stream_file is stream: bytes and a path work the same way."""
    path = tmp_path / "a.pcm"
    path.write_bytes(bytes(BYTES_PER_S))
    with LiveClient(server.url) as client:
        by_path = list(client.stream_file(path))
        by_bytes = list(client.stream_file(bytes(BYTES_PER_S), suffix=".pcm"))
    assert [type(e) for e in by_path] == [type(e) for e in by_bytes]
    assert by_path[-2].audio_seconds == by_bytes[-2].audio_seconds == pytest.approx(1.0)


def test_a_failing_source_fails_the_stream(server):
    """A source that raises mid-stream stops the upload: UploadFailed with its error, the session cancelled."""
    def broken():
        yield bytes(3200)
        raise OSError("microphone unplugged")

    with LiveClient(server.url) as client:
        stream = client.stream(broken(), suffix=".pcm")
        with pytest.raises(UploadFailed, match="microphone unplugged"):
            list(stream)
        assert client.state(stream.session)["status"] == "cancelled"


def test_each_thread_uses_its_own_requests_session(server, monkeypatch):
    """The upload thread never shares a requests.Session with the caller's thread; the API key goes on both."""
    used = {}
    real_request = requests.Session.request

    def recording(self, method, url, *args, **kwargs):
        used.setdefault(id(self), set()).add(threading.get_ident())
        assert self.headers.get("X-API-Key") == "k", url
        return real_request(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    with LiveClient(server.url, api_key="k") as client:
        events = list(client.stream(bytes(BYTES_PER_S), chunk_bytes=3200, suffix=".pcm"))
    assert isinstance(events[-1], Done)
    assert len(used) == 2 and all(len(threads) == 1 for threads in used.values())


@pytest.mark.parametrize("source, options, error, complaint", [
    (io.StringIO("text"), {}, TypeError, "binary mode"),
    (42, {}, TypeError, "cannot stream audio from int"),
    (b"abc", {"chunk_bytes": 0}, ValueError, "chunk_bytes"),
    (iter([b"abc"]), {"realtime": True, "suffix": ".ogg"}, ValueError, "live source"),
    (b"abc", {"colour": "red"}, TypeError, "unknown start option"),
])
def test_unusable_sources_are_refused_before_any_request(source, options, error, complaint):
    """A source or option the stream cannot use raises at once, naming the problem (no server needed)."""
    with LiveClient("http://127.0.0.1:9") as client, pytest.raises(error, match=complaint):
        client.stream(source, **options)


def test_iterable_items_are_split_and_empty_ones_skipped():
    """An iterable's items larger than chunk_bytes are cut; empty ones are never sent."""
    source = audio_source([b"", b"abcdefg", bytearray(b"hi"), memoryview(b"")], chunk_bytes=3)
    assert list(source.chunks) == [b"abc", b"def", b"g", b"hi"]

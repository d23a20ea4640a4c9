"""AsyncLiveClient under a real event loop against the real server (transport pipeline): the API, streams from live sources, and the fault proxy's cuts and drops."""
import asyncio
import time

import pytest

from client import (AsyncLiveClient, ChunkConflict, ChunkOutOfOrder, Done, Error, InvalidChunk,
                    LiveSession, ReconnectFailed, RetryPolicy, SessionNotFound, Status,
                    UploadFailed, ValidationFailed)
from proxy import Fault, FaultyProxy

BYTES_PER_S = 16000 * 2
RETRY_MS = 200


@pytest.fixture(scope="module")
def server(start_server):
    """The transport pipeline with a status event per chunk and a short `retry:`."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_HEARTBEAT_S="1", HARKEN_STATUS_EVERY_S="0",
                        HARKEN_SSE_RETRY_MS=str(RETRY_MS))


def run(coroutine):
    """Run one test's coroutine on a fresh event loop, bounded so a hang fails instead of blocking."""
    return asyncio.run(asyncio.wait_for(coroutine, 120))


async def collect(stream):
    async with stream:
        return [event async for event in stream]


def assert_complete_stream(events):
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert isinstance(events[-1], Done)


def test_api_round_trip_and_typed_errors(server):
    """start, upload (a duplicate too), state, finalize, events and replay; refusals raise the sync client's classes."""
    async def scenario():
        async with AsyncLiveClient(server.url) as client:
            with pytest.raises(ValidationFailed) as bad:
                await client.start(ttl_seconds=5)
            session = await client.start(suffix=".pcm", metadata={"call": 8})
            first = await client.upload(session, 0, bytes(3200))
            again = await client.upload(session, 0, bytes(3200))
            with pytest.raises(ChunkOutOfOrder) as gap:
                await client.upload(session, 3, bytes(3200))
            with pytest.raises(ChunkConflict):
                await client.upload(session, 0, bytes(3199) + b"\x01")
            state = await client.state(session)
            await client.control(session, "finalize")
            events = [e async for e in client.events(session)]
            replay = [e async for e in client.events(session, last_event_id=events[0].id)]
            with pytest.raises(SessionNotFound):
                await client.state("live_doesnotexist")
        return bad.value, session, first, again, gap.value, state, events, replay

    bad, session, first, again, gap, state, events, replay = run(scenario())
    assert bad.details.get("field") == "ttl_seconds"
    assert isinstance(session, LiveSession) and session.status == "waiting_media"
    assert (first.next_chunk_seq, first.duplicate, again.duplicate) == (1, False, True)
    assert gap.expected_chunk_seq == 1 and state["total_bytes"] == 3200
    assert_complete_stream(events)
    assert replay == events[1:] and events[-1].metadata == {"call": 8}


def test_stream_from_an_async_generator_while_reading_events(server):
    """Each chunk of an async source is produced only after the loop saw the previous one's status."""
    chunks, chunk_s = 5, 0.1

    async def scenario():
        heard = [asyncio.Event() for _ in range(chunks)]

        async def microphone():
            for k in range(chunks):
                yield bytes(int(BYTES_PER_S * chunk_s))
                await asyncio.wait_for(heard[k].wait(), 30)

        events = []
        async with AsyncLiveClient(server.url) as client:
            async with client.stream(microphone(), suffix=".pcm") as stream:
                async for event in stream:
                    events.append(event)
                    if isinstance(event, Status) and event.phase == "ingesting":
                        heard[round(event.audio_seconds / chunk_s) - 1].set()
        return stream, events

    stream, events = run(scenario())
    assert_complete_stream(events)
    assert stream.chunks_sent == chunks and events[-2].audio_seconds == pytest.approx(0.5)


def test_stream_a_file_and_a_sync_source(server, tmp_path):
    """A path (read off the loop) and bytes in memory stream to `done` with every byte counted."""
    path = tmp_path / "a.pcm"
    path.write_bytes(bytes(2 * BYTES_PER_S))

    async def scenario():
        receipts = []
        async with AsyncLiveClient(server.url) as client:
            by_path = client.stream(path, chunk_bytes=6400,
                                    on_chunk=lambda receipt, sent, total: receipts.append(receipt))
            from_path = await collect(by_path)
            from_bytes = await collect(client.stream_file(bytes(BYTES_PER_S), suffix=".pcm"))
            state = await client.state(by_path.session)
        return by_path, receipts, from_path, from_bytes, state

    by_path, receipts, from_path, from_bytes, state = run(scenario())
    assert_complete_stream(from_path) and assert_complete_stream(from_bytes)
    assert [r.chunk_seq for r in receipts] == list(range(10))
    assert by_path.bytes_sent == by_path.total_bytes == state["total_bytes"] == 2 * BYTES_PER_S
    assert from_bytes[-2].audio_seconds == pytest.approx(1.0)


def test_upload_failure_and_leaving_early_cancel_the_session(server, tmp_path):
    """Undecodable audio raises UploadFailed; leaving the `async with` early cancels a running session."""
    async def scenario():
        async with AsyncLiveClient(server.url) as client:
            broken = client.stream(b"this is not audio " * 1000, suffix=".wav", chunk_bytes=4096)
            with pytest.raises(UploadFailed) as failed:
                await collect(broken)
            failed_state = await client.state(broken.session)
            long = client.stream(bytes(30 * BYTES_PER_S), suffix=".pcm", chunk_bytes=3200,
                                 realtime=True)
            async with long:
                async for event in long:
                    if isinstance(event, Status) and event.phase == "ingesting":
                        break
            left_state = await client.state(long.session)
        return failed.value, failed_state, left_state

    failed, failed_state, left_state = run(scenario())
    assert isinstance(failed.__cause__, InvalidChunk) and failed_state["status"] == "cancelled"
    assert left_state["status"] == "cancelled"


def test_events_survive_cut_connections(server):
    """The proxy cuts the SSE connection mid-event three times while audio streams: every event once, in order, after `retry:`."""
    cuts, per_connection = 3, 4

    def cut_early_streams(seen):
        if seen.path.endswith("/events") and len(proxy.requests_to("/events")) <= cuts:
            return Fault(cut_after_events=per_connection)
        return None

    async def scenario():
        async with AsyncLiveClient(proxy.url) as client:
            return await collect(client.stream(bytes(2 * BYTES_PER_S), suffix=".pcm",
                                               chunk_bytes=BYTES_PER_S // 10, realtime=True))

    with FaultyProxy(server.url, cut_early_streams) as proxy:
        events = run(scenario())
        streams = proxy.requests_to("/events")
    assert_complete_stream(events)
    assert len(streams) == cuts + 1 and all(s.cut_at for s in streams[:cuts])
    for n, (dropped, resumed) in enumerate(zip(streams, streams[1:]), start=1):
        assert resumed.headers.get("last-event-id") == str(n * per_connection)
        assert resumed.at - dropped.cut_at >= RETRY_MS / 1000 * 0.95, "retry: was not honoured"


def test_chunks_land_once_through_drops_and_delays(server):
    """Chunk POSTs dropped, answered into the void and held past the timeout: every chunk lands exactly once."""
    plan = {1: Fault(drop=True), 3: Fault(lose_response=True), 5: Fault(delay_s=1.2)}
    faulted = set()

    def chunk_faults(seen):
        if seen.chunk_seq in plan and seen.chunk_seq not in faulted:
            faulted.add(seen.chunk_seq)
            return plan[seen.chunk_seq]
        return None

    async def scenario():
        receipts = []
        retry = RetryPolicy(tries=4, base_delay_s=0.05, max_delay_s=0.2)
        async with AsyncLiveClient(proxy.url, timeout=(2.0, 0.5), retry=retry) as client:
            stream = client.stream(bytes(8 * 3200), suffix=".pcm", chunk_bytes=3200,
                                   on_chunk=lambda receipt, *_: receipts.append(receipt))
            events = await collect(stream)
            return receipts, events, await client.state(stream.session)

    with FaultyProxy(server.url, chunk_faults) as proxy:
        receipts, events, state = run(scenario())
        sent = [p.chunk_seq for p in proxy.requests_to("/chunk", "POST")]
    assert_complete_stream(events)
    assert faulted == set(plan) and [r.chunk_seq for r in receipts] == list(range(8))
    assert receipts[3].duplicate and state["next_chunk_seq"] == 8
    assert all(sent.count(seq) == 2 for seq in plan), sent


def test_reconnects_are_bounded(server):
    """A stream cut before its first event every time ends in ReconnectFailed, backing off from `retry:`."""
    def always_cut(seen):
        return Fault(cut_after_events=0) if seen.path.endswith("/events") else None

    async def scenario():
        async with AsyncLiveClient(proxy.url, reconnect_tries=2) as client:
            session = await client.start(suffix=".pcm")
            await client.upload(session, 0, bytes(3200))
            await client.control(session, "finalize")
            with pytest.raises(ReconnectFailed) as gave_up:
                async for _ in client.events(session):
                    pass
            return gave_up.value

    with FaultyProxy(server.url, always_cut) as proxy:
        began = time.monotonic()
        gave_up = run(scenario())
        streams = proxy.requests_to("/events")
    assert len(streams) == 3 and "2 reconnects" in str(gave_up)
    assert time.monotonic() - began >= (0.2 + 0.4) * 0.95


def test_a_cancel_ends_the_events_with_its_error(server):
    """A cancel's fatal `error` is the last event: iteration stops without raising."""
    async def scenario():
        async with AsyncLiveClient(server.url) as client:
            session = await client.start(suffix=".pcm")
            await client.upload(session, 0, bytes(3200))
            await client.control(session, "cancel", reason="enough")
            return [e async for e in client.events(session)]

    events = run(scenario())
    assert isinstance(events[-1], Error) and events[-1].code == "cancelled"
    assert events[-1].message == "enough"

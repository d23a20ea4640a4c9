"""Thirty sessions uploading at once while their consumers read: every chunk accounted for."""
from concurrent.futures import ThreadPoolExecutor

import requests

from live import TIMEOUT, collect, control, start, tone_pcm, upload

SESSIONS = 30
CHUNKS = 12
CHUNK = tone_pcm(0.25)


def _run_session(server):
    session = start(server.url, suffix=".pcm")
    with ThreadPoolExecutor(1) as reader:
        events = reader.submit(collect, server.url, session)
        receipts = [upload(server.url, session, seq, CHUNK) for seq in range(CHUNKS)]
        retry = upload(server.url, session, CHUNKS // 2, CHUNK)  # a retry in the middle of the flow
        finalized = control(server.url, session, "finalize")
        seen = events.result(timeout=60)
    state = requests.get(server.url + "/analyze/live/" + session["session_id"], timeout=TIMEOUT).json()
    return receipts, retry, finalized, seen, state


def test_thirty_concurrent_sessions_lose_and_duplicate_nothing(transport_server):
    """Each session ends with exactly its chunks counted, its events in id order, and `done`."""
    with ThreadPoolExecutor(SESSIONS) as pool:
        results = list(pool.map(lambda _: _run_session(transport_server), range(SESSIONS)))
    for receipts, retry, finalized, seen, state in results:
        assert [r.status_code for r in receipts] == [200] * CHUNKS
        assert [r.json()["next_chunk_seq"] for r in receipts] == list(range(1, CHUNKS + 1))
        assert retry.json()["duplicate"] is True
        assert finalized.status_code == 200
        assert state["total_bytes"] == CHUNKS * len(CHUNK)
        assert state["next_chunk_seq"] == CHUNKS
        assert state["audio_seconds"] == CHUNKS * 0.25
        assert [e.id for e in seen] == list(range(1, len(seen) + 1))
        assert seen[-1].name == "done"

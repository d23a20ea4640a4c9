"""The live suite against a scale-out deployment: two hosts × two workers on one Redis, events from a third port.

The tests are the live suite's own functions (and openapi.yaml's checks), imported
unchanged; only their fixtures change: `transport_server` and `keyed_server` are here a `Deployment` whose balancer sends
every request to a random host and every event stream to the events host.
"""
import inspect
from pathlib import Path

import pytest
import requests

import test_auth_and_ops
import test_events_stream
import test_live_api
import test_openapi
from deployment import Deployment
from live import TIMEOUT, collect, control, start, tone_pcm, tone_wav, upload

globals().update({name: test for name, test in vars(test_live_api).items() if name.startswith("test_")})
for _module, _names in ((test_events_stream, (
        "test_stream_frames_retry_ids_names_and_one_line_json",
        "test_resume_with_last_event_id_loses_and_repeats_nothing", "test_bad_last_event_id_is_422",
        "test_second_consumer_gets_409_until_the_first_leaves", "test_keepalive_comments_arrive_on_an_idle_stream",
        "test_late_reconnect_after_done_replays_the_log", "test_live_events_arrive_while_chunks_flow")),
                        (test_auth_and_ops, ("test_every_live_route_needs_a_valid_key",
                                             "test_key_in_header_or_query_and_sessions_isolated_per_key"))):
    globals().update({name: getattr(_module, name) for name in _names})
# openapi.yaml against the deployment: every test of that module that needs only the transport server.
_SPEC_FIXTURES = {"transport_server", "check", "event_schemas", "spec_doc", "openapi"}
globals().update({name: test for name, test in vars(test_openapi).items() if name.startswith("test_")
                  and set(inspect.signature(test).parameters) <= _SPEC_FIXTURES
                  and set(inspect.signature(test).parameters) & {"transport_server"}})
check, spec_doc, openapi, event_schemas = (test_openapi.check, test_openapi.spec_doc, test_openapi.openapi,
                                           test_openapi.event_schemas)
KEY_A, KEY_B = test_auth_and_ops.KEY_A, test_auth_and_ops.KEY_B


@pytest.fixture(scope="module")
def transport_server(redis_server, tmp_path_factory):
    """Two hosts × two workers and an events host on Redis db 1, no speech models."""
    deployment = Deployment(redis_server.db_url(1), tmp_path_factory.mktemp("scaleout"), HARKEN_HEARTBEAT_S="1")
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def keyed_server(redis_server, tmp_path_factory):
    """The same shape with two API keys (Redis db 2), for per-key isolation across hosts."""
    deployment = Deployment(redis_server.db_url(2), tmp_path_factory.mktemp("scaleout-keyed"), workers=1,
                            HARKEN_API_KEYS=f"{KEY_A},{KEY_B}")
    yield deployment
    deployment.stop()


def test_requests_of_one_session_reach_every_worker(transport_server):
    """The balancer spread one session's chunks over both hosts and more than two worker processes."""
    session = start(transport_server.url, suffix=".pcm")
    workers = set()
    for seq in range(24):
        response = upload(transport_server.url, session, seq, tone_pcm(0.1))
        assert response.status_code == 200, response.text
        workers.add(requests.get(transport_server.url + "/healthz", timeout=TIMEOUT).json()["store"]["worker"])
    assert len({port for _, port in transport_server.proxy.routed}) == 3
    assert len(workers) >= 3
    control(transport_server.url, session, "finalize")
    seen = collect(transport_server.url, session)
    assert seen[-1].name == "done" and [e.id for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-2].data["audio_seconds"] == pytest.approx(2.4)


def test_concurrent_uploads_of_one_chunk_ingest_it_once(transport_server):
    """The same chunk posted to many workers at once: one acceptance, the rest duplicates, audio counted once."""
    from concurrent.futures import ThreadPoolExecutor

    session = start(transport_server.url, suffix=".pcm")
    data = tone_pcm(0.5)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: upload(transport_server.url, session, 0, data), range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(1 for a in answers if not a.json().get("duplicate")) == 1
    state = requests.get(transport_server.url + "/analyze/live/" + session["session_id"], timeout=TIMEOUT).json()
    assert state["next_chunk_seq"] == 1 and state["audio_seconds"] == pytest.approx(0.5)
    control(transport_server.url, session, "cancel")


def test_new_sessions_spread_over_the_workers(transport_server, redis_server):
    """Sessions started through one host are analysed on several workers (the least loaded takes each)."""
    sessions = [start(transport_server.hosts[0].url, suffix=".pcm") for _ in range(8)]
    store = redis_server.client(db=1)
    holders = {store.get(f"harken:{{{s['session_id']}}}:lease") for s in sessions}
    store.close()
    pids = {holder.decode().split(":")[1] for holder in holders if holder}
    assert len(pids) >= 3, holders
    for session in sessions:
        control(transport_server.url, session, "cancel")


def test_every_key_in_the_store_has_a_ttl(transport_server, redis_server):
    """After this module's sessions (fed, finished, cancelled, left open), no key lacks a TTL: nothing leaks."""
    store = redis_server.client(db=1)
    keys = list(store.scan_iter(count=1000))
    lacking = [key for key in keys if store.pttl(key) == -1]  # -2: it expired meanwhile
    store.close()
    assert keys and lacking == []


def _worker_pids(server):
    pid = server.proc.pid
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_a_bad_chunk_forwarded_to_the_holder_is_refused_at_once_with_nothing_stored(transport_server, redis_server):
    """Posted to a host that does not hold the session: 422 invalid_chunk from the holder's decoder, nothing kept."""
    session = start(transport_server.url, suffix=".wav")
    store = redis_server.client(db=1)
    tag = f"harken:{{{session['session_id']}}}"
    holder_pid = int(store.get(tag + ":lease").decode().split(":")[1])
    elsewhere = next(s for s in transport_server.servers() if holder_pid not in _worker_pids(s))
    bad = upload(elsewhere.url, session, 0, b"RIFF\x00\x00\x00\x00JUNKJUNKJUNK" * 4)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_chunk"
    assert bad.json()["error"]["expected_chunk_seq"] == 0
    assert store.hget(tag + ":meta", "next") == b"0" and not store.exists(tag + ":ledger", tag + ":audio")
    good = upload(elsewhere.url, session, 0, tone_wav(0.5))
    assert good.status_code == 200 and good.json()["next_chunk_seq"] == 1
    assert store.llen(tag + ":audio") == 1
    store.close()
    control(transport_server.url, session, "cancel")

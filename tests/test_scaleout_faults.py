"""Faults of a scale-out deployment: Redis stopped and restarted mid-session, a lease holder killed with -9."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from conftest import free_port
from deployment import Deployment
from live import TIMEOUT, collect, control, iter_events, open_events, start, tone_pcm, upload, wait_for
from redisserver import RedisServer


def _upload_retrying(url, session, seq, data, seconds=20):
    """Upload as a client would: retry 503s after their Retry-After (bounded); the final response."""
    deadline = time.monotonic() + seconds
    while True:
        response = upload(url, session, seq, data)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(min(1.0, float(response.headers.get("Retry-After", "1"))))


@pytest.fixture()
def own_redis(tmp_path):
    """A redis-server of this test's own, which the test stops and restarts."""
    server = RedisServer(tmp_path, free_port()).start()
    yield server
    server.stop()


def test_redis_restart_mid_session_gives_503_then_the_session_goes_on(own_redis, tmp_path):
    """Redis down: 503 store_unavailable with Retry-After, fast, on every host; back up: the session continues."""
    deployment = Deployment(own_redis.url, tmp_path, HARKEN_HEARTBEAT_S="1", HARKEN_REDIS_TIMEOUT_S="1")
    try:
        session = start(deployment.url, suffix=".pcm")
        for seq in range(2):
            assert upload(deployment.url, session, seq, tone_pcm(0.5)).status_code == 200
        before = collect(deployment.url, session, until=("status",))
        state_url = deployment.url + "/analyze/live/" + session["session_id"]
        assert wait_for(lambda: not requests.get(state_url, timeout=TIMEOUT).json()["consumer_attached"], 10)
        own_redis.stop(save=True)
        for _ in range(6):
            began = time.monotonic()
            down = upload(deployment.url, session, 2, tone_pcm(0.5))
            assert time.monotonic() - began < 8
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "store_unavailable"
            assert int(down.headers["Retry-After"]) > 0
        for server in deployment.servers():
            assert requests.get(server.url + "/readyz", timeout=TIMEOUT).status_code == 503
            health = requests.get(server.url + "/healthz", timeout=TIMEOUT)
            assert health.status_code == 200 and health.json()["store"]["reachable"] is False
            assert health.json()["store"]["error"] == "no connection"
        own_redis.start()
        assert wait_for(lambda: all(requests.get(s.url + "/readyz", timeout=TIMEOUT).status_code == 200
                                    for s in deployment.servers()), 20)
        back = _upload_retrying(deployment.url, session, 2, tone_pcm(0.5))
        assert back.status_code == 200, back.text
        assert back.json()["next_chunk_seq"] == 3
        assert control(deployment.url, session, "finalize").status_code == 200
        rest = collect(deployment.url, session, last_event_id=before[-1].id)
        assert rest[-1].name == "done"
        assert [e.id for e in rest] == list(range(before[-1].id + 1, before[-1].id + 1 + len(rest)))
        assert rest[-2].data["audio_seconds"] == pytest.approx(1.5)
    finally:
        deployment.stop()


def _lease_holder_pid(redis_server, session_id):
    client = redis_server.client()
    value = client.get(f"harken:{{{session_id}}}:lease")
    client.close()
    return int(value.decode().split(":")[1]) if value else None


def test_killed_lease_holder_is_replaced_and_nothing_is_lost(own_redis, tmp_path):
    """kill -9 of the worker holding a session (no models): another takes over; chunks and event ids carry on."""
    deployment = Deployment(own_redis.url, tmp_path, HARKEN_HEARTBEAT_S="1", HARKEN_LEASE_TTL_S="2")
    try:
        session = start(deployment.url, suffix=".pcm")
        response = open_events(deployment.url, session)
        stream = iter_events(response)
        first = next(stream)
        for seq in range(3):
            assert upload(deployment.url, session, seq, tone_pcm(0.5)).status_code == 200
        victim = _lease_holder_pid(own_redis, session["session_id"])
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        for seq in range(3, 6):
            assert _upload_retrying(deployment.url, session, seq, tone_pcm(0.5)).status_code == 200
        took_over_s = time.monotonic() - killed_at
        successor = _lease_holder_pid(own_redis, session["session_id"])
        assert successor not in (None, victim)
        assert control(deployment.url, session, "finalize").status_code == 200
        seen = [first]
        for event in stream:
            seen.append(event)
            if event.name == "done":
                break
        response.close()
        assert [e.id for e in seen] == list(range(1, len(seen) + 1))
        assert seen[-2].data["audio_seconds"] == pytest.approx(3.0)
        assert took_over_s < 15
    finally:
        deployment.stop()


def test_sigterm_of_the_events_host_sends_its_reader_elsewhere(redis_server, tmp_path):
    """SIGTERM: the stream gets a non-fatal server_shutdown; resumed on another host, the session goes on."""
    deployment = Deployment(redis_server.db_url(4), tmp_path, HARKEN_HEARTBEAT_S="1")
    try:
        session = start(deployment.url, suffix=".pcm")
        assert upload(deployment.url, session, 0, tone_pcm(0.5)).status_code == 200
        response = open_events(deployment.url, session)
        stream = iter_events(response)
        seen = [next(stream), next(stream)]
        deployment.events_host.proc.send_signal(signal.SIGTERM)
        seen += list(stream)
        response.close()
        assert seen[-1].name == "error"
        assert seen[-1].data["code"] == "server_shutdown" and seen[-1].data["fatal"] is False
        assert deployment.events_host.proc.wait(30) == 0
        other = deployment.hosts[0].url
        assert upload(other, session, 1, tone_pcm(0.5)).status_code == 200
        assert control(other, session, "finalize").status_code == 200
        rest = collect(other, session, last_event_id=seen[-1].id)
        ids = [e.id for e in seen + rest]
        assert ids == list(range(1, len(ids) + 1))
        assert rest[-1].name == "done" and rest[-2].data["audio_seconds"] == pytest.approx(1.0)
    finally:
        deployment.stop()



# A lease holder in a process of its own, monkey-patched as a gunicorn gevent worker is: it
# publishes three events while the test has Redis stopped (it waits for a line on stdin), then
# prints the stream's status details once they are all in (or after 20 s).
_OUTAGE_PUBLISHER = """
from gevent import monkey; monkey.patch_all()
import json, sys, time
import gevent
from app.config import Settings
from app.inputs import StartOptions
from app.metrics import Metrics
from app.pipeline.transport import TransportOnlyPipeline
from app.shared.registry import SharedRegistry
from app.shared.store import session_keys
from client import events

registry = SharedRegistry(Settings.from_env({}, redis_url=sys.argv[1], redis_timeout_s=1.0),
                          TransportOnlyPipeline(), Metrics())
session_id = registry.create("", StartOptions(suffix=".pcm")).session_id
holder = registry.holders[session_id]
print("ready", flush=True)
sys.stdin.readline()  # Redis is down
said = [f"published during the outage, {n}" for n in range(3)]
for detail in said:
    holder.publish(events.Status(phase="ingesting", detail=detail))
print("published", flush=True)
sys.stdin.readline()  # Redis is back

def details():
    entries = registry.store.redis.xrange(session_keys(session_id)[3])
    return [json.loads(f[b"d"])["detail"] for _, f in entries if f[b"n"] == b"status"]

deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        if set(said) <= set(details()):
            break
    except Exception:
        pass
    gevent.sleep(0.1)
print(json.dumps(details()), flush=True)
"""


def test_what_the_analysis_publishes_while_the_store_is_down_is_written_in_order_once_it_is_back(own_redis):
    """The analysis of a session goes on through an outage: what it publishes meanwhile waits, in
    order, and reaches the event stream once Redis is back (it was lost before)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with subprocess.Popen([sys.executable, "-c", _OUTAGE_PUBLISHER, own_redis.url], cwd=root,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "ready"
            own_redis.stop(save=True)
            proc.stdin.write("down\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "published"
            own_redis.start()
            proc.stdin.write("up\n")
            proc.stdin.flush()
            details = json.loads(proc.stdout.readline())
        finally:
            proc.kill()
    assert details[-3:] == [f"published during the outage, {n}" for n in range(3)]

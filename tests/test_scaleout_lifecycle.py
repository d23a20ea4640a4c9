"""Session lifetimes across a scale-out deployment: TTL expiry, keepalive, tombstones, the deployment-wide limit.

The lifecycle suite's own functions, imported unchanged, against two hosts × two workers
on one Redis: every worker runs a reaper, so these also check that no session is reaped
twice (one `session_expired` event) and that the limit counts every host's sessions.
"""
import pytest

import test_session_lifecycle
from deployment import Deployment
from live import collect, control, start, tone_pcm, upload, wait_for

globals().update({name: test for name, test in vars(test_session_lifecycle).items()
                  if name.startswith("test_") and name != "test_live_streaming_can_be_turned_off"})
_status = test_session_lifecycle._status


@pytest.fixture(scope="module")
def short_ttl_server(redis_server, tmp_path_factory):
    """The lifecycle suite's settings (1 s TTLs, fast reaper, 4 sessions) on two hosts × two workers (Redis db 3),
    with a status per chunk and 20 events kept per session."""
    deployment = Deployment(redis_server.db_url(3), tmp_path_factory.mktemp("scaleout-ttl"),
                            HARKEN_MIN_TTL_S="1", HARKEN_REAPER_INTERVAL_S="0.1", HARKEN_RESULT_TTL_S="1",
                            HARKEN_MAX_SESSIONS="4", HARKEN_RETRY_AFTER_S="7", HARKEN_EVENT_LOG_MAX="20",
                            HARKEN_STATUS_EVERY_S="0")
    yield deployment
    deployment.stop()


def test_five_reapers_expire_a_session_once(short_ttl_server):
    """Every worker reaps; the expired session's stream still carries exactly one session_expired."""
    session = start(short_ttl_server.url, ttl_seconds=1)
    assert wait_for(lambda: _status(short_ttl_server, session)[1].get("status") == "expired", 10)
    seen = collect(short_ttl_server.url, session)
    assert [e.data.get("code") for e in seen if e.name == "error"] == ["session_expired"]
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))


def test_the_stream_keeps_event_log_max_events_and_says_what_was_dropped(short_ttl_server):
    """Past HARKEN_EVENT_LOG_MAX the oldest entries are trimmed; a resume before them gets events_dropped first."""
    session = start(short_ttl_server.url, suffix=".pcm", ttl_seconds=60)
    for seq in range(30):
        assert upload(short_ttl_server.url, session, seq, tone_pcm(0.05)).status_code == 200
    control(short_ttl_server.url, session, "finalize")
    # Resume only once the log is whole: a resume while the pipeline still appends reads those events too.
    assert collect(short_ttl_server.url, session)[-1].name == "done"
    seen = collect(short_ttl_server.url, session, last_event_id=1)
    assert seen[0].name == "error" and seen[0].data["code"] == "events_dropped" and not seen[0].data["fatal"]
    kept = seen[1:]
    assert len(kept) == 20 and kept[-1].name == "done"
    assert [e.id for e in kept] == list(range(seen[0].id + 1, seen[0].id + 21))

"""Session lifetimes across a scale-out deployment: TTL expiry, keepalive, tombstones, the deployment-wide limit.

The lifecycle suite's own functions, imported unchanged, against two hosts × two workers
on one Redis: every worker runs a reaper, so these also check that no session is reaped
twice (one `session_expired` event) and that the limit counts every host's sessions.
"""
import pytest

import test_session_lifecycle
from deployment import Deployment
from live import collect, start, wait_for

globals().update({name: test for name, test in vars(test_session_lifecycle).items()
                  if name.startswith("test_") and name != "test_live_streaming_can_be_turned_off"})
_status = test_session_lifecycle._status


@pytest.fixture(scope="module")
def short_ttl_server(redis_server, tmp_path_factory):
    """The lifecycle suite's settings (1 s TTLs, fast reaper, 4 sessions) on two hosts × two workers (Redis db 3)."""
    deployment = Deployment(redis_server.db_url(3), tmp_path_factory.mktemp("scaleout-ttl"),
                            HARKEN_MIN_TTL_S="1", HARKEN_REAPER_INTERVAL_S="0.1", HARKEN_RESULT_TTL_S="1",
                            HARKEN_MAX_SESSIONS="4", HARKEN_RETRY_AFTER_S="7")
    yield deployment
    deployment.stop()


def test_five_reapers_expire_a_session_once(short_ttl_server):
    """Every worker reaps; the expired session's stream still carries exactly one session_expired."""
    session = start(short_ttl_server.url, ttl_seconds=1)
    assert wait_for(lambda: _status(short_ttl_server, session)[1].get("status") == "expired", 10)
    seen = collect(short_ttl_server.url, session)
    assert [e.data.get("code") for e in seen if e.name == "error"] == ["session_expired"]
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))

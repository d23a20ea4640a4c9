"""Scale-out on a Redis that wants a password and speaks only TLS, as managed Redis services do."""
import pytest
import requests

from conftest import free_port
from deployment import Deployment
from live import TIMEOUT, collect, control, start, tone_pcm, upload
from redisserver import RedisServer

PASSWORD = "harken-test-secret"


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory):
    """A redis-server with a password and TLS only (a self-signed certificate for 127.0.0.1)."""
    server = RedisServer(tmp_path_factory.mktemp("redis-tls"), free_port(), password=PASSWORD, tls=True).start()
    yield server
    server.stop()


@pytest.fixture()
def deployment_on(tmp_path):
    """Start a one-host deployment on a Redis URL; every one started is stopped at the end."""
    started = []

    def on(redis_url):
        started.append(Deployment(redis_url, tmp_path, hosts=1, workers=1, events_workers=0))
        return started[-1]
    yield on
    for deployment in started:
        deployment.stop()


def test_a_session_runs_on_a_redis_with_password_and_tls(secure_redis, deployment_on):
    """rediss:// with the password and the CA certificate in HARKEN_REDIS_URL: the whole session
    runs, and its keys are in that Redis."""
    deployment = deployment_on(secure_redis.db_url(1))
    health = requests.get(deployment.url + "/healthz", timeout=TIMEOUT).json()["store"]
    assert health["reachable"] is True and "error" not in health
    assert requests.get(deployment.url + "/readyz", timeout=TIMEOUT).status_code == 200
    session = start(deployment.url, suffix=".pcm")
    for seq in range(2):
        assert upload(deployment.url, session, seq, tone_pcm(0.5)).status_code == 200
    assert control(deployment.url, session, "finalize").status_code == 200
    events = collect(deployment.url, session)
    assert events[-1].name == "done"
    assert events[-2].data["audio_seconds"] == pytest.approx(1.0)
    client = secure_redis.client(1)
    assert client.exists(f"harken:{{{session['session_id']}}}:meta") == 1
    client.close()


@pytest.mark.parametrize("problem", ["wrong password", "untrusted certificate"])
def test_a_misconfigured_redis_url_is_named_and_sessions_are_refused_with_503(secure_redis, deployment_on, problem):
    """A wrong password or a certificate the server does not trust: /healthz says which (it is
    no outage that waiting cures), /readyz and new sessions answer 503 store_unavailable."""
    url = secure_redis.db_url(2, password="not-the-password") if problem == "wrong password" \
        else secure_redis.db_url(2).split("?")[0]  # no CA certificate: the self-signed one is not trusted
    deployment = deployment_on(url)
    health = requests.get(deployment.url + "/healthz", timeout=TIMEOUT)
    assert health.status_code == 200
    store = health.json()["store"]
    assert store["reachable"] is False
    assert store["error"].startswith("authentication failed" if problem == "wrong password" else "TLS failed")
    assert PASSWORD not in health.text and "not-the-password" not in health.text
    assert requests.get(deployment.url + "/readyz", timeout=TIMEOUT).status_code == 503
    refused = requests.post(deployment.url + "/analyze/live/start", json={"suffix": ".pcm"}, timeout=TIMEOUT)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "store_unavailable"
    assert int(refused.headers["Retry-After"]) > 0

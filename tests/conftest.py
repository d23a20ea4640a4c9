"""Shared fixtures: a real gunicorn + gevent Harken on a free port, started from the Procfile's command."""
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from live import wait_for
from redisserver import RedisServer

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(port):
    """The Procfile's `web:` command with $PORT filled in and loopback binding."""
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    argv = shlex.split(line[len("web:"):].replace("$PORT", str(port)))
    argv[0] = str(VENV_BIN / argv[0])
    return [a.replace("0.0.0.0:", "127.0.0.1:") for a in argv]


class Server:
    """A running Harken server process and its base URL."""

    def __init__(self, env, log_path, ready_timeout_s=120.0, need_models=True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {**os.environ, "PORT": str(self.port), **{k: str(v) for k, v in env.items()}}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(procfile_command(self.port), cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready(ready_timeout_s, need_models)

    def _wait_ready(self, timeout_s, need_models):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                health = requests.get(self.url + "/healthz", timeout=2)
            except requests.RequestException:
                return False
            return health.status_code == 200 and (health.json().get("ready") or not need_models)

        if not wait_for(ready, timeout_s):
            self.stop()
            raise RuntimeError(f"server not ready in {timeout_s}s:\n{Path(self.log_path).read_text(errors='replace')}")

    def log(self):
        """Everything the server printed so far."""
        self._log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout_s=30):
        """Stop the server the way a process manager would, then reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """Factory: `start_server(HARKEN_X=...)` runs a fresh server; all are stopped at the end.

    `need_models=False` returns once the server answers, before (or without) its models.
    """
    servers = []

    def start(need_models=True, **env):
        log_path = tmp_path_factory.mktemp("server") / "server.log"
        server = Server(env, log_path, need_models=need_models)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def transport_server(start_server):
    """A server with no speech models (HARKEN_PIPELINE=none), fast to start, for API tests."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_HEARTBEAT_S="1")


@pytest.fixture(scope="session")
def backpressure_server(start_server):
    """Analysis always counts as too far behind (HARKEN_MAX_BACKLOG_S=-1): every new chunk gets 429."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MAX_BACKLOG_S="-1")


@pytest.fixture(scope="session")
def disabled_server(start_server):
    """The live API switched off (ENABLE_LIVE_STREAMING=false): its endpoints answer 503."""
    return start_server(HARKEN_PIPELINE="none", ENABLE_LIVE_STREAMING="false")


@pytest.fixture(scope="session")
def speech_server(start_server):
    """A server with the real speech pipeline and models, shared by every test that needs it."""
    return start_server(HARKEN_PIPELINE="speech", HARKEN_HEARTBEAT_S="2")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free port (no persistence, a temp dir), stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server
    server.stop()

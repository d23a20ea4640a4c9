"""A real redis-server for tests: its own process on a free port, in a temp dir, no config file."""
import shutil
import subprocess
from pathlib import Path

import redis

from live import wait_for


class RedisServer:
    """One redis-server process; `stop(save=True)` then `start()` restarts it with its data."""

    def __init__(self, directory, port):
        self.dir = Path(directory)
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = None
        self._log = None

    def start(self):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"],
            stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_for(self._answers, 10):
            raise RuntimeError(f"redis-server did not start:\n{self.log()}")
        return self

    def _answers(self):
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def db_url(self, db):
        """The URL of logical database `db` (each deployment of a test run gets its own)."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db=0):
        """A fresh redis-py client on database `db` of this server (for tests' own checks)."""
        return redis.Redis.from_url(self.db_url(db), socket_timeout=2)

    def stop(self, save=False):
        """Stop the server (writing its data to dump.rdb first if `save`, so a restart keeps it)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.client().shutdown(save=save, nosave=not save)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection it came on
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log(self):
        return (self.dir / "redis.log").read_text(errors="replace")

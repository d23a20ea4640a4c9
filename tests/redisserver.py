"""A real redis-server for tests: its own process on a free port, in a temp dir, no config file."""
import shutil
import subprocess
from pathlib import Path

import redis

from live import wait_for


class RedisServer:
    """One redis-server process; `stop(save=True)` then `start()` restarts it with its data.

    With `password` it requires AUTH; with `tls` it speaks only TLS, with a self-signed
    certificate for 127.0.0.1 made by openssl in `directory` (`ca_file`), as a managed Redis does.
    """

    def __init__(self, directory, port, password=None, tls=False):
        self.dir = Path(directory)
        self.port = port
        self.password = password
        self.ca_file = self.dir / "redis-cert.pem" if tls else None
        self.url = self.db_url(0)
        self.proc = None
        self._log = None

    def start(self):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb", *self._security()],
            stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_for(self._answers, 10):
            raise RuntimeError(f"redis-server did not start:\n{self.log()}")
        return self

    def _answers(self):
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def _security(self):
        """redis-server's port options, and those of its password and TLS."""
        options = ["--requirepass", self.password] if self.password else []
        if self.ca_file is None:
            return ["--port", str(self.port), *options]
        key = self.dir / "redis-key.pem"
        if not self.ca_file.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-keyout", str(key), "-out", str(self.ca_file), "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.ca_file),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(self.ca_file),
                "--tls-auth-clients", "no", *options]

    def db_url(self, db, password=None):
        """The URL of logical database `db` (each deployment of a test run gets its own), with
        this server's password (or `password`, to try a wrong one) and CA certificate."""
        password = password or self.password
        auth = f":{password}@" if password else ""
        if self.ca_file is None:
            return f"redis://{auth}127.0.0.1:{self.port}/{db}"
        return f"rediss://{auth}127.0.0.1:{self.port}/{db}?ssl_ca_certs={self.ca_file}&ssl_cert_reqs=required"

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

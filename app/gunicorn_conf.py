"""gunicorn settings for Harken: one gevent worker owns the in-memory sessions.

Shipped inside the package so `harken serve` runs from an installed wheel. gunicorn
loads it by path (`-c …/app/gunicorn_conf.py`), not as `app.gunicorn_conf`, and this file
loads the worker and logger classes by path too: importing the `app` package in the master
would import Flask, gevent and ssl before the worker patches them.
"""
import os
import runpy
import signal
from pathlib import Path

_classes = runpy.run_path(str(Path(__file__).resolve().parent / "gunicorn_classes.py"))
HarkenLogger, HarkenWorker = _classes["HarkenLogger"], _classes["HarkenWorker"]

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# The gevent worker, with a request-head deadline and JSON answers to malformed requests.
worker_class = HarkenWorker
HarkenWorker.head_timeout_s = float(os.environ.get("HARKEN_HEADER_TIMEOUT_S", "10"))
# Keys redacted and control characters escaped in every log line.
logger_class = HarkenLogger
# Embedded, sessions live in the one worker's memory. With HARKEN_REDIS_URL they live in Redis
# and any number of workers serve them: WEB_CONCURRENCY, gunicorn's own convention, says how many.
workers = int(os.environ.get("WEB_CONCURRENCY", "1")) if os.environ.get("HARKEN_REDIS_URL") else 1
worker_connections = int(os.environ.get("HARKEN_WORKER_CONNECTIONS", "2000"))
graceful_timeout = int(os.environ.get("HARKEN_GRACEFUL_TIMEOUT_S", "10"))
timeout = 120
keepalive = 75
# Several servers may run on one host (tests, benchmarks): no shared control socket.
control_socket_disable = True
loglevel = os.environ.get("HARKEN_LOG_LEVEL", "info").lower()
errorlog = "-"
accesslog = os.environ.get("HARKEN_ACCESS_LOG", "-") or None
# %(U)s is the path without the query string: an `api_key` query parameter never reaches the log.
# The request id is the one the app's lines of the same request carry (X-Request-ID).
if os.environ.get("HARKEN_LOG_FORMAT", "text") == "json":
    access_log_format = ('{"ts": "%(t)s", "access": true, "remote": "%(h)s", "method": "%(m)s", '
                         '"path": "%(U)s", "status": "%(s)s", "bytes": "%(b)s", "ms": %(M)s, '
                         '"request_id": "%({x-request-id}o)s"}')
else:
    access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def post_worker_init(worker):
    """On SIGTERM, tell open event streams to reconnect before gunicorn's graceful stop."""
    import gevent

    services = worker.wsgi.extensions["harken"]
    if services.settings.log_format == "json":  # gunicorn's own lines from this worker, too
        from app.logs import JsonFormatter

        for handler in worker.log.error_log.handlers:
            handler.setFormatter(JsonFormatter())
    gunicorn_exit = signal.getsignal(signal.SIGTERM)

    def on_sigterm(sig, frame):
        gevent.spawn(services.shutdown)
        gunicorn_exit(sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)

"""gunicorn settings for Harken: one gevent worker owns the in-memory sessions.

Shipped inside the package so `harken serve` runs from an installed wheel. gunicorn
loads it by path (`-c …/app/gunicorn_conf.py`), not as `app.gunicorn_conf`: importing
the `app` package in the master would import gevent and ssl before the worker patches them.
"""
import os
import signal

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
# Sessions live in this worker's memory, so there is exactly one worker per host until Redis.
workers = 1
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
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker):
    """On SIGTERM, tell open event streams to reconnect before gunicorn's graceful stop."""
    import gevent

    services = worker.wsgi.extensions["harken"]
    gunicorn_exit = signal.getsignal(signal.SIGTERM)

    def on_sigterm(sig, frame):
        gevent.spawn(services.shutdown)
        gunicorn_exit(sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)

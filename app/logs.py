"""Where the app's log lines go: stderr, beside gunicorn's own, at HARKEN_LOG_LEVEL.

Two formats (HARKEN_LOG_FORMAT): `text`, one line each for people, and `json`, one JSON
object per line for log pipelines, with `session_id` and `request_id` as fields. Every line
written while a request is handled carries that request's id (the `X-Request-ID` it came
with, if sane, else a new one; the response echoes it), so a request's lines can be found
together, gunicorn's access line included.
"""
import json
import logging
import re
import secrets
import sys
import time

from flask import g, has_request_context, request

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] [%(request_id)s] %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, pid, message, and the ids it carries."""

    def format(self, record):
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "pid": record.process,
                "msg": record.getMessage()}
        for name in ("request_id", "session_id"):
            value = getattr(record, name, None)
            if value and value != "-":
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (`-` outside a request)."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def formatter(log_format):
    """The formatter for HARKEN_LOG_FORMAT (`text` or `json`)."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(FORMAT)
    raise ValueError(f"HARKEN_LOG_FORMAT must be text or json, not {log_format!r}")


def init_logging(level, log_format="text"):
    """Give the `app` logger one stderr handler (once per process, however many apps are built)."""
    logger = logging.getLogger("app")
    logger.setLevel(level.upper())
    handler = next((h for h in logger.handlers if getattr(h, "harken", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.harken = True
        handler.addFilter(_RequestIdFilter())
        logger.addHandler(handler)
        logger.propagate = False
    handler.setFormatter(formatter(log_format))


def init_app(app):
    """Give every request an id, for its log lines and its response's X-Request-ID."""

    @app.before_request
    def _request_id():
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if _SANE_REQUEST_ID.match(offered) else secrets.token_hex(8)

    @app.after_request
    def _echo_request_id(response):
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

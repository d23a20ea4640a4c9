"""Prometheus metrics owned by one app (its own registry, so every test app starts at zero).

Every label takes its value from a closed set, whatever a client sends: a made-up method is
`other`, a path no route matches is `unmatched`, a status outside HTTP's is `other`. So no
request can add a series, and the exposition stays the same size under any traffic.
"""
import functools
import http
import importlib.metadata
import re
import time

import prometheus_client
from flask import g, request
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, PlatformCollector,
                               ProcessCollector, generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"))
STATUSES = frozenset(str(status.value) for status in http.HTTPStatus)
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def method_label(method):
    """The request method if HTTP defines it, else `other`."""
    return method if method in METHODS else "other"


def status_label(status_code):
    """The status code if HTTP defines it, else `other`."""
    text = str(status_code)
    return text if text in STATUSES else "other"


def endpoint_label(url_rule):
    """The matched route's rule without converter names (a fixed string per route), or `unmatched`."""
    return _bare_rule(url_rule.rule) if url_rule is not None else "unmatched"


@functools.lru_cache(maxsize=256)  # one entry per route: the app's routes are the keys
def _bare_rule(rule):
    return _CONVERTER.sub(r"<\1>", rule)


def _version():
    try:
        return importlib.metadata.version("harken")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Counters the sessions update, process figures, and latency recorded around every request."""

    def __init__(self):
        # `_created` series double every counter and histogram for a figure no dashboard uses.
        prometheus_client.disable_created_metrics()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info("harken_build", "The running Harken's version", registry=self.registry).info(
            {"version": _version()})
        self.chunks = Counter("harken_chunks", "Chunk uploads by outcome", ["outcome"],
                              registry=self.registry)
        self.chunk_bytes = Counter("harken_chunk_bytes", "Bytes of accepted chunks",
                                   registry=self.registry)
        self.backpressure = Counter("harken_backpressure", "Chunks refused with 429 because analysis "
                                    "was too far behind", registry=self.registry)
        self.events = Counter("harken_events", "Events logged by name", ["event"],
                              registry=self.registry)
        self.consumers = Gauge("harken_consumers", "Attached SSE consumers", registry=self.registry)
        self.request_seconds = Histogram(
            "harken_http_request_duration_seconds",
            "Request handling time (SSE: until the response starts)",
            ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS_S, registry=self.registry)

    def watch_sessions(self, registry):
        """Report sessions by state and analysis lag from the session registry at every scrape."""
        self.registry.register(_SessionCollector(registry))

    def watch_workers(self, pipeline):
        """Report each speech worker's live sessions and catch-up decodes from the pipeline's health."""
        self.registry.register(_WorkerCollector(pipeline))

    def exposition(self):
        return generate_latest(self.registry)

    def init_app(self, app):
        app.before_request(_start_timer)

        @app.after_request
        def _observe(response):
            started = g.pop("harken_started", None)
            if started is not None:
                self.request_seconds.labels(endpoint_label(request.url_rule),
                                            method_label(request.method),
                                            status_label(response.status_code)) \
                    .observe(time.perf_counter() - started)
            return response


def _start_timer():
    g.harken_started = time.perf_counter()


class _SessionCollector:
    def __init__(self, sessions):
        self._sessions = sessions

    def collect(self):
        family = GaugeMetricFamily("harken_sessions", "Live sessions by state", labels=["state"])
        for state, count in self._sessions.count_by_state().items():
            family.add_metric([state], count)
        yield family
        yield GaugeMetricFamily("harken_analysis_lag_seconds",
                                "Audio received but not yet analysed, in the session furthest behind",
                                value=self._sessions.max_lag_seconds())


class _WorkerCollector:
    """Per speech worker (labelled by its index in the pool, a closed set): the live sessions pinned
    to it and the finals it decoded cheaply because other sessions were waiting. The second grows
    only past a worker's capacity (docs/speech.md, "Capacity"): alert on its rate. The transport
    pipeline has no workers and reports none."""

    def __init__(self, pipeline):
        self._pipeline = pipeline

    def collect(self):
        workers = self._pipeline.health().get("workers")
        if not workers:
            return
        sessions = GaugeMetricFamily("harken_worker_sessions", "Live sessions pinned to each speech worker",
                                     labels=["worker"])
        catch_up = CounterMetricFamily("harken_worker_catch_up_decodes",
                                       "Finals a speech worker decoded as cheaply as a partial because "
                                       "other sessions were waiting (HARKEN_ASR_CATCH_UP_AT)", labels=["worker"])
        for index, worker in enumerate(workers):
            sessions.add_metric([str(index)], worker["sessions"])
            catch_up.add_metric([str(index)], worker["catch_up_decodes"])
        yield sessions
        yield catch_up

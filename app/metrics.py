"""Prometheus metrics owned by one app (its own registry, so every test app starts at zero)."""
import time

from flask import g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Counters the sessions update, plus request latency recorded around every request."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.chunks = Counter("harken_chunks", "Chunk uploads by outcome", ["outcome"],
                              registry=self.registry)
        self.chunk_bytes = Counter("harken_chunk_bytes", "Bytes of accepted chunks",
                                   registry=self.registry)
        self.events = Counter("harken_events", "Events logged by name", ["event"],
                              registry=self.registry)
        self.consumers = Gauge("harken_consumers", "Attached SSE consumers", registry=self.registry)
        self.request_seconds = Histogram(
            "harken_request_seconds", "Request handling time (SSE: until the response starts)",
            ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS_S, registry=self.registry)

    def watch_sessions(self, registry):
        """Report sessions by state from the session registry at every scrape."""
        self.registry.register(_SessionCollector(registry))

    def exposition(self):
        return generate_latest(self.registry)

    def init_app(self, app):
        app.before_request(_start_timer)

        @app.after_request
        def _observe(response):
            started = g.pop("harken_started", None)
            if started is not None:
                endpoint = request.url_rule.rule if request.url_rule else "unmatched"
                self.request_seconds.labels(endpoint, request.method, str(response.status_code)) \
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

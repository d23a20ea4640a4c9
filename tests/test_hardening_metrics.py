"""Every metric label comes from a closed set: no request, however odd, adds a series."""
import random
import string

import requests

from live import TIMEOUT, control, start, tone_pcm, upload
from rawhttp import exchange


def _metrics_size(server):
    return len(requests.get(server.url + "/metrics", timeout=TIMEOUT).content)


def test_random_methods_and_paths_do_not_grow_metrics(transport_server):
    """1,000 made-up methods and paths leave /metrics the size it was (before: one series each)."""
    rng = random.Random(14)
    session = requests.Session()

    def noise(count):
        for _ in range(count):
            method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
            path = "/" + "/".join("".join(rng.choices(string.ascii_lowercase + "_", k=rng.randint(1, 8)))
                                  for _ in range(rng.randint(1, 4)))
            session.request(method, transport_server.url + path, timeout=TIMEOUT)

    noise(50)  # every closed label set that this traffic can reach now exists
    before = _metrics_size(transport_server)
    noise(1000)
    after = _metrics_size(transport_server)
    assert after - before < 2048, (before, after)


def test_odd_methods_count_as_other(transport_server):
    """A method outside the HTTP set is counted as `other`, and never by its own name."""
    exchange(transport_server.port, b"QWERTYUIOPAS /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = requests.get(transport_server.url + "/metrics", timeout=TIMEOUT).text
    assert "QWERTYUIOPAS" not in text
    assert 'method="other"' in text


def _samples(server):
    text = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
    return text, dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_operations_metrics(backpressure_server):
    """Build info, process figures, analysis lag and back-pressure answers; no `_created` series."""
    server = backpressure_server
    refused_before = float(_samples(server)[1]["harken_backpressure_total"])
    session = start(server.url, suffix=".pcm")
    refused = upload(server.url, session, 0, tone_pcm(0.1))
    control(server.url, session, "cancel")
    assert refused.status_code == 429
    text, samples = _samples(server)
    assert float(samples['harken_build_info{version="0.1.0"}']) == 1.0
    assert float(samples["process_resident_memory_bytes"]) > 10e6
    assert float(samples["harken_backpressure_total"]) == refused_before + 1
    assert float(samples["harken_analysis_lag_seconds"]) == 0.0
    assert "_created" not in text
    assert "harken_worker_" not in text  # the transport pipeline has no speech workers
    assert "harken_http_request_duration_seconds_bucket{" in text

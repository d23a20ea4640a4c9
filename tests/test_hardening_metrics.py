"""Every metric label comes from a closed set: no request, however odd, adds a series."""
import random
import string

import requests

from live import TIMEOUT
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

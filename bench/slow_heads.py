"""Slow request heads: how long half-sent request lines can hold a real gunicorn Harken's connections.

Opens `--connections` sockets that each send part of a request line and then nothing,
against a server with the default HARKEN_HEADER_TIMEOUT_S (10 s) and keep-alive (75 s).
Measures when the server closes each of them (it must, from the head deadline, long before
the keep-alive time) and /healthz latency on a fresh connection while they are held.
Results: printed and bench/results/slow_heads.json.

    .venv/bin/python bench/slow_heads.py [--connections 1500]
"""
import argparse
import json
import selectors
import socket
import statistics
import sys
import time

import requests

from harness import model_free_server
from machine import describe
from report import save


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--head-timeout-s", type=float, default=10.0)
    args = parser.parse_args()
    with model_free_server({"HARKEN_HEADER_TIMEOUT_S": str(args.head_timeout_s)}) as server:
        result = measure(server, args.connections)
    result.update(connections=args.connections, head_timeout_s=args.head_timeout_s, keepalive_s=75,
                  machine=describe())
    save("slow_heads.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0 if result["closed"] == args.connections and result["last_closed_s"] < 75 else 1


def measure(server, count):
    selector = selectors.DefaultSelector()
    opened = time.monotonic()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /healthz HTT")
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, time.monotonic())
    opened_s = time.monotonic() - opened
    health_ms, closed_after, deadline = [], [], time.monotonic() + 90
    next_probe = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        if time.monotonic() >= next_probe:
            started = time.monotonic()
            requests.get(server.url + "/healthz", timeout=10).raise_for_status()
            health_ms.append((time.monotonic() - started) * 1000)
            next_probe = started + 0.5
        for key, _ in selector.select(timeout=0.1):
            try:
                data = key.fileobj.recv(4096)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:
                closed_after.append(time.monotonic() - key.data)
                selector.unregister(key.fileobj)
                key.fileobj.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    return {"opened_in_s": round(opened_s, 2), "closed": len(closed_after),
            "first_closed_s": round(min(closed_after), 2) if closed_after else None,
            "median_closed_s": round(statistics.median(closed_after), 2) if closed_after else None,
            "last_closed_s": round(max(closed_after), 2) if closed_after else None,
            "healthz_while_held_ms": {"p50": round(statistics.median(health_ms), 1),
                                      "max": round(max(health_ms), 1), "probes": len(health_ms)}}


if __name__ == "__main__":
    sys.exit(main())

"""Transport benchmark: chunk upload latency, event delivery and memory of a real gunicorn Harken.

Starts the Procfile's gunicorn command (HARKEN_PIPELINE=none, loopback, a free port), then
runs the load in a separate gevent process so the generator and the server each get a core:

    .venv/bin/python bench/transport.py                        # 50 sessions, 32 kB chunks at 4 Hz, live consumers
    .venv/bin/python bench/transport.py --idle-consumers 1000   # RSS of 1,000 idle SSE consumers

Sessions mode reports chunk POST latency (p50/p99), event delivery delay, requests per
second and the gunicorn worker's RSS and CPU (from /proc). HARKEN_STATUS_EVERY_S=0 makes
every accepted chunk publish one `status` event whose `audio_seconds` names the chunk, so
each event's delay is measured from the moment the POST that caused it was sent (an upper
bound: the event is logged while that POST is handled) and from the POST's response.
The worker's and the generator's run-queue wait (/proc/<pid>/schedstat) says how long
they were ready to run but had no CPU: on a box shared with other jobs that, not Harken, is
what moves the tail; `--nice 10` emulates a dedicated box and is recorded in the results.
Results are printed and merged into bench/results/transport.json under the mode's name.
"""
import sys

# The load role runs in its own process with gevent; patch before anything imports socket or ssl.
if __name__ == "__main__" and "--role=load" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Server  # noqa: E402  (the tests' server runner: the Procfile's command)
from report import merge, results_path  # noqa: E402

LIVE = "/analyze/live"
TIMEOUT = (5, 30)
PCM_RATE_HZ = 16000
TARGETS = {"chunk_p50_ms": 3.0, "chunk_p99_ms": 20.0, "idle_rss_over_idle_server_mb": 150.0}


# -- the server ------------------------------------------------------------------------------

class BenchServer(Server):
    """The tests' server runner (the Procfile's command on loopback), plus its one worker's pid."""

    def __init__(self, env, log_path):
        super().__init__(env, log_path, ready_timeout_s=120.0)
        self.worker_pid = self._worker()

    def _worker(self):
        children = [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
                    .read_text().split()]
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        return children[0]


class ProcStat:
    """RSS and CPU time of one process, read from /proc."""

    CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid):
        self.pid = pid

    def rss_mb(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def runqueue_wait_s(self):
        """Seconds the main thread (where the gevent hub runs) was runnable but had no CPU."""
        return int(Path(f"/proc/{self.pid}/schedstat").read_text().split()[1]) / 1e9

    def cpu_s(self):
        # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.CLOCK_TICKS


class RssSampler(threading.Thread):
    """Samples a process's RSS every `interval_s` to report its peak."""

    def __init__(self, stat, interval_s=0.25):
        super().__init__(daemon=True)
        self.stat, self.interval_s = stat, interval_s
        self.peak_mb = stat.rss_mb()
        self._halt = threading.Event()

    def run(self):
        while not self._halt.wait(self.interval_s):
            try:
                self.peak_mb = max(self.peak_mb, self.stat.rss_mb())
            except (OSError, RuntimeError):
                return

    def stop(self):
        self._halt.set()
        self.join()


def raise_fd_limit(wanted):
    """Raise this process's open-file limit (inherited by the server and the load) towards `wanted`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _loadavg():
    """The 1-minute load average: other work on the box competes for the same two cores."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def percentiles(values):
    """p50/p90/p99/max/mean of `values` (milliseconds), by nearest rank."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p):
        return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]

    return {"count": len(ordered), "p50": round(rank(50), 3), "p90": round(rank(90), 3),
            "p99": round(rank(99), 3), "max": round(ordered[-1], 3),
            "mean": round(sum(ordered) / len(ordered), 3)}


def warm_up(server):
    """One whole session, so the idle baseline already holds every lazily imported module."""
    start = requests.post(server.url + LIVE + "/start", json={"suffix": ".pcm"}, timeout=TIMEOUT)
    session_id = start.json()["session_id"]
    base = f"{server.url}{LIVE}/{session_id}"
    requests.post(base + "/chunk", params={"chunk_seq": 0}, data=bytes(3200), timeout=TIMEOUT,
                  headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    requests.post(base + "/control", json={"action": "finalize"}, timeout=TIMEOUT).raise_for_status()
    with requests.get(base + "/events", stream=True, timeout=TIMEOUT) as stream:
        for _ in stream.iter_content(chunk_size=None):
            pass
    requests.get(server.url + "/metrics", timeout=TIMEOUT).raise_for_status()


# -- the orchestrator ------------------------------------------------------------------------

def orchestrate(args):
    """Start the server and the load process, measure the worker over the load's window, report."""
    idle = args.idle_consumers > 0
    if args.nice:
        os.nice(-args.nice)  # inherited by the server and the load process
    fd_limit = raise_fd_limit(max(4096, 4 * (args.idle_consumers or args.sessions) + 256))
    env = {"HARKEN_PIPELINE": "none", "HARKEN_STATUS_EVERY_S": "0",
           "HARKEN_MAX_SESSIONS": str(max(200, (args.idle_consumers or args.sessions) + 100)),
           "HARKEN_WORKER_CONNECTIONS": str(max(2000, 2 * (args.idle_consumers or args.sessions) + 100))}
    if args.no_access_log:
        env["HARKEN_ACCESS_LOG"] = ""
    mode = "idle_consumers" if idle else "sessions"
    server = BenchServer(env, results_path(f"transport-{mode}-server.log"))
    worker = ProcStat(server.worker_pid)
    try:
        warm_up(server)
        rss_idle = worker.rss_mb()
        sampler = RssSampler(worker)
        sampler.start()
        load = subprocess.Popen([sys.executable, __file__, "--role=load", "--url", server.url,
                                 "--sessions", str(args.sessions), "--chunk-bytes", str(args.chunk_bytes),
                                 "--rate-hz", str(args.rate_hz), "--duration", str(args.duration),
                                 "--warmup", str(args.warmup),
                                 "--idle-consumers", str(args.idle_consumers), "--hold", str(args.hold)],
                                stdout=subprocess.PIPE, text=True)
        load_stat = ProcStat(load.pid)
        marks, report = {}, None
        for line in load.stdout:
            line = line.strip()
            if line in ("WINDOW_START", "WINDOW_END"):
                marks[line] = (time.monotonic(), worker.cpu_s(), worker.rss_mb(), load_stat.cpu_s(),
                               _loadavg(), worker.runqueue_wait_s(), load_stat.runqueue_wait_s())
            elif line.startswith("{"):
                report = json.loads(line)
        if load.wait(60) != 0 or report is None:
            raise RuntimeError(f"the load process failed (exit {load.returncode})")
        sampler.stop()
    finally:
        server.stop()

    (t0, cpu0, _, load0, avg0, wait0, lwait0) = marks["WINDOW_START"]
    (t1, cpu1, rss_end, load1, avg1, wait1, lwait1) = marks["WINDOW_END"]
    window_s = t1 - t0
    result = {
        "mode": mode,
        "config": {"sessions": args.sessions, "chunk_bytes": args.chunk_bytes, "rate_hz": args.rate_hz,
                   "duration_s": args.duration, "warmup_s": args.warmup,
                   "idle_consumers": args.idle_consumers, "hold_s": args.hold,
                   "priority_raised_by": args.nice,
                   "server_env": env, "fd_limit": fd_limit},
        **report,
        "server": {"worker_pid": server.worker_pid, "rss_idle_mb": round(rss_idle, 1),
                   "rss_window_end_mb": round(rss_end, 1), "rss_peak_mb": round(sampler.peak_mb, 1),
                   "rss_over_idle_mb": round(rss_end - rss_idle, 1),
                   "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / window_s, 1),
                   # Time the worker was ready to run but had no CPU: other work on the box.
                   "runqueue_wait_percent": round(100 * (wait1 - wait0) / window_s, 1)},
        "load_generator": {"cpu_percent_of_one_core": round(100 * (load1 - load0) / window_s, 1),
                           "runqueue_wait_percent": round(100 * (lwait1 - lwait0) / window_s, 1)},
        "window_s": round(window_s, 2),
        "host": {"cpus": os.cpu_count(), "loadavg_1min_at_start": avg0, "loadavg_1min_at_end": avg1,
                 "python": platform.python_version(),
                 "kernel": platform.release(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    if idle:
        result["per_consumer_kb"] = round(1024 * (rss_end - rss_idle) / max(1, report["attached"]), 1)
        result["targets"] = {"rss_over_idle_server_mb": TARGETS["idle_rss_over_idle_server_mb"],
                             "met": rss_end - rss_idle <= TARGETS["idle_rss_over_idle_server_mb"]
                             and report["attached"] == args.idle_consumers}
    else:
        latency = report["chunk_post_latency_ms"]
        result["targets"] = {"chunk_p50_ms": TARGETS["chunk_p50_ms"], "chunk_p99_ms": TARGETS["chunk_p99_ms"],
                             "met": latency.get("p50", 1e9) <= TARGETS["chunk_p50_ms"]
                             and latency.get("p99", 1e9) <= TARGETS["chunk_p99_ms"]}
    path = merge("transport.json", {mode: result})
    print(json.dumps(result, indent=2))
    print(f"written to {path.relative_to(ROOT)}", file=sys.stderr)
    return 0 if result["targets"]["met"] else 1


# -- the load (its own process, gevent) ------------------------------------------------------

def _pcm_chunk(size):
    """`size` bytes of a 440 Hz tone, s16le mono at 16 kHz (even length)."""
    import math
    samples = size // 2
    return b"".join(int(8000 * math.sin(2 * math.pi * 440 * i / PCM_RATE_HZ)).to_bytes(2, "little", signed=True)
                    for i in range(samples))


def _start_session(http, url):
    response = http.post(url + LIVE + "/start", json={"suffix": ".pcm", "ttl_seconds": 900},
                         timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()["session_id"]


class RawHttp:
    """A keep-alive HTTP/1.1 connection that sends each request in one `sendall` and parses only
    what the bench needs, so the generator spends microseconds, not milliseconds, per request."""

    def __init__(self, url):
        host, port = url.split("//", 1)[1].split(":")
        self.host = f"{host}:{port}"
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT[1])
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def request(self, method, path, body=b"", headers=()):
        """(status, body) of one request with a Content-Length response."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}",
                *headers, "", ""]
        self.sock.sendall("\r\n".join(head).encode() + body)
        status, fields = self._read_head()
        return status, self._read_exact(int(fields.get(b"content-length", b"0")))

    def open_stream(self, path):
        """Send a GET and read the response head; the body is read with `stream_chunks`."""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        return self._read_head()

    def stream_chunks(self):
        """The payloads of a chunked response body as they arrive, until its last chunk."""
        while True:
            size_line = self._read_line()
            size = int(size_line.split(b";")[0], 16)
            data = self._read_exact(size + 2)[:-2]
            if size == 0:
                return
            yield data

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    def _read_line(self):
        while b"\r\n" not in self._buffer:
            self._fill()
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _read_exact(self, size):
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_head(self):
        status = int(self._read_line().split(b" ", 2)[1])
        fields = {}
        while True:
            line = self._read_line()
            if not line:
                return status, fields
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()

    def close(self):
        self.sock.close()


class Consumer:
    """Reads one session's SSE stream; notes when each `status` event for a new audio_seconds arrives."""

    def __init__(self, url, session_id):
        import gevent.event
        self.url = url
        self.path = f"{LIVE}/{session_id}/events"
        self.attached = gevent.event.Event()
        self.arrivals = {}  # audio_seconds -> perf_counter at arrival (first event only)
        self.events = 0
        self.error = None
        self.first_byte_ms = None
        self._http = None

    def run(self):
        try:
            self._http = RawHttp(self.url)
            asked = time.perf_counter()
            status, _ = self._http.open_stream(self.path)
            self.first_byte_ms = 1000 * (time.perf_counter() - asked)
            if status != 200:
                raise RuntimeError(f"events answered {status}")
            self._http.sock.settimeout(None)
            buffer = b""
            for piece in self._http.stream_chunks():
                now = time.perf_counter()
                buffer += piece
                *frames, buffer = buffer.split(b"\n\n")
                for frame in frames:
                    self._frame(frame, now)
        except Exception as exc:  # noqa: BLE001 -- reported in the results, not raised
            if self._http is not None and self._http.sock.fileno() != -1:
                self.error = self.error or f"{type(exc).__name__}: {exc}"
        finally:
            self.attached.set()

    def _frame(self, frame, now):
        if frame.startswith(b"retry:"):
            self.attached.set()
            return
        name = data = None
        for line in frame.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if name is None:
            return
        self.events += 1
        if name == b"status":
            seconds = json.loads(data)["audio_seconds"]
            self.arrivals.setdefault(seconds, now)

    def close(self):
        if self._http is not None:
            self._http.close()


def load_sessions(args):
    """N sessions each posting `chunk_bytes` at `rate_hz` while its consumer reads; one JSON report."""
    import gevent
    import gevent.pool

    url, n, period = args.url, args.sessions, 1.0 / args.rate_hz
    chunk = _pcm_chunk(args.chunk_bytes)
    audio_per_chunk_s = (len(chunk) // 2) / PCM_RATE_HZ
    setup = requests.Session()
    session_ids = gevent.pool.Pool(20).map(lambda _: _start_session(setup, url), range(n))
    consumers = [Consumer(url, sid) for sid in session_ids]
    readers = [gevent.spawn(c.run) for c in consumers]
    for consumer in consumers:
        consumer.attached.wait(10)
    t0 = time.perf_counter() + 0.5
    window = (t0 + args.warmup, t0 + args.warmup + args.duration)
    count = int((args.warmup + args.duration) * args.rate_hz)
    sends = [dict() for _ in range(n)]  # per session: chunk_seq -> (sent, answered)
    latencies, statuses, late, failures = [], {}, [0], []

    def post_chunks(index, session_id):
        http = RawHttp(url)
        endpoint = f"{LIVE}/{session_id}/chunk"
        headers = ("Content-Type: application/octet-stream",)
        offset = index * period / n  # spread the sessions evenly over one period
        for seq in range(count):
            due = t0 + offset + seq * period
            delay = due - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            elif delay < -0.05:
                late[0] += 1
            sent = time.perf_counter()
            try:
                status, _ = http.request("POST", f"{endpoint}?chunk_seq={seq}", chunk, headers)
            except OSError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                http.close()
                http = RawHttp(url)
                continue
            answered = time.perf_counter()
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                sends[index][seq] = (sent, answered)
                if window[0] <= sent < window[1]:
                    latencies.append(1000 * (answered - sent))
        http.close()

    posters = [gevent.spawn(post_chunks, i, sid) for i, sid in enumerate(session_ids)]
    gevent.sleep(max(0.0, window[0] - time.perf_counter()))
    print("WINDOW_START", flush=True)
    buckets_before = _chunk_histogram(setup, url)
    gevent.sleep(max(0.0, window[1] - time.perf_counter()))
    buckets_after = _chunk_histogram(setup, url)
    print("WINDOW_END", flush=True)
    gevent.joinall(posters)
    for sid in session_ids:
        setup.post(f"{url}{LIVE}/{sid}/control", json={"action": "finalize"}, timeout=TIMEOUT)
    gevent.joinall(readers, timeout=30)
    for consumer in consumers:
        consumer.close()

    from_sent, from_answer, missing = [], [], 0
    for index, consumer in enumerate(consumers):
        for seq, (sent, answered) in sends[index].items():
            if not window[0] <= sent < window[1]:
                continue
            arrived = consumer.arrivals.get(round((seq + 1) * audio_per_chunk_s, 3))
            if arrived is None:
                missing += 1
                continue
            from_sent.append(1000 * (arrived - sent))
            from_answer.append(1000 * (arrived - answered))
    in_window = len(latencies)
    return {
        "chunk_post_latency_ms": percentiles(latencies),
        "event_delivery_delay_ms": {"from_post_sent": percentiles(from_sent),
                                    "after_post_response": percentiles(from_answer),
                                    "events_not_seen": missing},
        "requests_per_second": round(in_window / args.duration, 1),
        "events_per_second": round(sum(c.events for c in consumers)
                                   / (time.perf_counter() - t0), 1),
        "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "request_failures": len(failures), "failure_examples": failures[:3],
        "server_side_chunk_handling_ms": _histogram_quantiles(buckets_before, buckets_after),
        "sse_first_byte_ms": percentiles([c.first_byte_ms for c in consumers if c.first_byte_ms]),
        "sends_late_over_50ms": late[0],
        "consumer_errors": [c.error for c in consumers if c.error][:3],
    }


def _chunk_histogram(http, url):
    """{upper bound in ms: cumulative count} of the server's own timing of 200 chunk POSTs."""
    buckets = {}
    for line in http.get(url + "/metrics", timeout=TIMEOUT).text.splitlines():
        if line.startswith("harken_http_request_duration_seconds_bucket{") and "/chunk" in line \
                and 'status="200"' in line and 'method="POST"' in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else 1000 * float(bound)] = float(line.split()[-1])
    return buckets


def _histogram_quantiles(before, after):
    """Bucket upper bounds holding p50 and p99 of the requests between two scrapes (the app's own
    timing, from before_request to after_request: no queueing, parsing or socket time)."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0
    if not total:
        return {"count": 0}

    def bound_of(q):
        return next(bound for bound, cumulative in counts if cumulative >= q * total)

    return {"count": int(total), "p50_at_most": bound_of(0.5), "p99_at_most": bound_of(0.99)}


def load_idle(args):
    """Hold `idle_consumers` sessions, each with an attached SSE consumer and no audio; one JSON report."""
    import gevent
    import gevent.pool

    url, n = args.url, args.idle_consumers
    setup = requests.Session()
    started = time.perf_counter()
    session_ids = gevent.pool.Pool(50).map(lambda _: _start_session(setup, url), range(n))
    consumers = [Consumer(url, sid) for sid in session_ids]
    readers = []
    for consumer in consumers:
        readers.append(gevent.spawn(consumer.run))
        gevent.sleep(0)
    for consumer in consumers:
        consumer.attached.wait(30)
    attached_after_s = time.perf_counter() - started
    attached = sum(1 for c in consumers if c.attached.is_set() and c.error is None)
    print("WINDOW_START", flush=True)
    gevent.sleep(args.hold)
    state = setup.get(url + "/metrics", timeout=TIMEOUT).text
    server_consumers = next((float(l.split()[1]) for l in state.splitlines()
                             if l.startswith("harken_consumers ")), None)
    print("WINDOW_END", flush=True)
    for pool_map in gevent.pool.Pool(50).imap_unordered(
            lambda sid: setup.post(f"{url}{LIVE}/{sid}/control", json={"action": "cancel"},
                                   timeout=TIMEOUT), session_ids):
        pass
    gevent.joinall(readers, timeout=30)
    for consumer in consumers:
        consumer.close()
    return {"attached": attached, "server_consumers_gauge": server_consumers,
            "sse_first_byte_ms": percentiles([c.first_byte_ms for c in consumers if c.first_byte_ms]),
            "seconds_to_attach_all": round(attached_after_s, 2),
            "consumer_errors": [c.error for c in consumers if c.error][:3]}


def load_main(args):
    report = load_idle(args) if args.idle_consumers else load_sessions(args)
    print(json.dumps(report), flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    parser.add_argument("--chunk-bytes", type=int, default=32000, help="bytes per chunk (default 32000)")
    parser.add_argument("--rate-hz", type=float, default=4.0, help="chunks per second per session")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first (default 3)")
    parser.add_argument("--idle-consumers", type=int, default=0,
                        help="instead: hold this many idle SSE consumers and report RSS")
    parser.add_argument("--hold", type=float, default=20.0,
                        help="idle mode: seconds to hold the consumers (default 20)")
    parser.add_argument("--no-access-log", action="store_true",
                        help="turn gunicorn's access log off (on by default, as the Procfile runs it)")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="run the server and the load N nice levels above normal (root only): emulates "
                             "a dedicated box when other jobs share the cores; recorded in the results")
    parser.add_argument("--role", choices=["orchestrate", "load"], default="orchestrate",
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "load":
        return load_main(args)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())

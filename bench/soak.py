"""Fault soak: N live sessions of long audio through the fault proxy, counting every loss.

A real gunicorn Harken with no models (HARKEN_PIPELINE=none, a `status` event per chunk)
sits behind tests/proxy.py. Each of `--sessions` sessions uploads `--audio-s` seconds of PCM
in `--chunk-s` chunks as fast as the server takes them, retrying every chunk until it is
acknowledged, while a consumer reads its event stream and reconnects with Last-Event-ID
whenever the stream is cut (and, now and then, hangs up by itself and reconnects at once). The proxy drops, resets, delays or loses the answer of random
chunk and control POSTs and cuts or delays random event streams.

At the end, for each session, the server's own state (read directly, not through the proxy)
gives chunks lost or ingested twice; the consumer's events, against the session's whole
log replayed directly, give events lost, repeated and out of order. All must be 0. The
worker's RSS is read after a warm-up round of the same sessions without faults (the
allocator's arenas are then at their working size) and again once every soak session is
finished and buried: growth beyond 10 % would be memory the sessions keep. Results: printed and bench/results/soak.json.

    .venv/bin/python bench/soak.py [--sessions 20] [--audio-s 300] [--chunk-s 0.25]
    .venv/bin/python bench/soak.py --speech --sessions 4 --audio-s 60   # the models on, real words

With `--speech` the server runs the speech pipeline and every session streams the bundled
two-speaker call (samples/sales-call.ogg) over and over, so finals, emotion and moments cross
the faults too.
"""
import argparse
import functools
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from live import iter_events  # noqa: E402
from machine import describe  # noqa: E402
from proxy import Fault, FaultyProxy  # noqa: E402
from report import save  # noqa: E402
from speechgen import RATE_HZ  # noqa: E402
from transport import BenchServer, ProcStat  # noqa: E402

TIMEOUT = (5, 15)
RESULT_TTL_S = 5


def pcm_chunk(seq, seconds):
    """A distinct chunk of s16le PCM per seq (a tone whose pitch depends on seq)."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    tone = 0.2 * np.sin(2 * np.pi * (200 + seq % 400) * t)
    return (tone * 32767).astype("<i2").tobytes()


def speech_chunk(seq, seconds):
    """Chunk `seq` of the bundled call as s16le PCM, the call repeating without end."""
    call = _call_pcm()
    size = int(seconds * RATE_HZ) * 2
    start = (seq * size) % len(call)
    return (call + call)[start:start + size]


@functools.lru_cache(maxsize=1)
def _call_pcm():
    import av
    with av.open(str(ROOT / "samples" / "sales-call.ogg")) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE_HZ)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    return b"".join(bytes(f.planes[0])[:f.samples * 2] for f in frames)


class Faults:
    """Random faults on chunk and control POSTs and on event streams, counted by kind."""

    def __init__(self, seed, rate, stream_rate):
        self._rng = random.Random(seed)
        self._rate, self._stream_rate = rate, stream_rate
        self._lock = threading.Lock()
        self.counts = Counter()

    def __call__(self, seen):
        with self._lock:
            roll = self._rng.random()
            rate = self._rate
            if seen.method == "POST" and ("/chunk" in seen.path or "/control" in seen.path):
                kinds = [("drop", Fault(drop=True)), ("reset", Fault(reset=True)),
                         ("lose_response", Fault(lose_response=True)),
                         ("delay", Fault(delay_s=self._rng.uniform(0.05, 0.5)))]
            elif seen.method == "GET" and seen.path.split("?")[0].endswith("/events"):
                kinds = [("cut_stream", Fault(cut_after_events=self._rng.randint(0, 40))),
                         ("cut_stream", Fault(cut_after_events=self._rng.randint(0, 5))),
                         ("delay_stream", Fault(delay_s=self._rng.uniform(0.05, 0.5))),
                         ("reset_stream", Fault(reset=True))]
                rate = self._stream_rate  # each fault makes a reconnect, which may meet the next
            else:
                return None
            if roll >= rate:
                return None
            name, fault = kinds[self._rng.randrange(len(kinds))]
            self.counts[name] += 1
            return fault


class SessionRun:
    """One session: an uploader that retries each chunk until acknowledged, and a consumer."""

    def __init__(self, proxy_url, server_url, chunks, chunk_s, hangup_rate=0.0, seed=0, make_chunk=pcm_chunk):
        self.proxy, self.server, self.chunks, self.chunk_s = proxy_url, server_url, chunks, chunk_s
        self.make_chunk = make_chunk
        self.hangup_rate, self.rng = hangup_rate, random.Random(seed)
        self.hangups = 0
        self.http = requests.Session()
        self.session = self._start()
        self.received = []  # event ids in the order the consumer got them
        self.names = Counter()  # event names the consumer got (finals, emotion… with --speech)
        self.retries = Counter()
        self.errors = []
        self.reconnects = 0
        self.sent_bytes = 0

    def _start(self):
        while True:
            try:
                answer = self.http.post(self.server + "/analyze/live/start", json={"suffix": ".pcm"},
                                        timeout=TIMEOUT)
                answer.raise_for_status()
                return answer.json()
            except requests.RequestException:
                time.sleep(0.2)

    def upload(self):
        endpoint = self.proxy + self.session["chunk_endpoint"]
        for seq in range(self.chunks):
            data = self.make_chunk(seq, self.chunk_s)
            while True:
                try:
                    answer = requests.post(endpoint, params={"chunk_seq": seq}, data=data, timeout=TIMEOUT,
                                           headers={"Content-Type": "application/octet-stream"})
                except requests.RequestException as exc:
                    self.retries[type(exc).__name__] += 1
                    continue
                if answer.status_code == 200:
                    if answer.json().get("duplicate"):
                        self.retries["acknowledged_duplicate"] += 1
                    break
                self.retries[f"http_{answer.status_code}"] += 1
                if answer.status_code < 500 and answer.status_code != 429:
                    self.errors.append(f"chunk {seq}: {answer.status_code} {answer.text[:200]}")
                    break
                time.sleep(0.1)
            self.sent_bytes += len(data)
        self._control("finalize")

    def _control(self, action):
        while True:
            try:
                answer = requests.post(self.proxy + self.session["control_endpoint"],
                                       json={"action": action}, timeout=TIMEOUT)
            except requests.RequestException as exc:
                self.retries[f"control_{type(exc).__name__}"] += 1
                continue
            if answer.status_code == 200:
                return
            self.errors.append(f"{action}: {answer.status_code} {answer.text[:200]}")
            return

    def consume(self):
        last_id = 0
        while True:
            headers = {"Last-Event-ID": str(last_id)} if last_id else {}
            try:
                response = requests.get(self.proxy + self.session["events_endpoint"], headers=headers,
                                        stream=True, timeout=(5, 30))
            except requests.RequestException:
                self.reconnects += 1
                continue
            if response.status_code == 409:  # the server has not seen the cut yet
                response.close()
                self.retries["events_409"] += 1
                time.sleep(0.05)
                continue
            if response.status_code != 200:
                self.errors.append(f"events: {response.status_code} {response.text[:200]}")
                return
            try:
                for event in iter_events(response):
                    self.received.append(event.id)
                    self.names[event.name] += 1
                    last_id = event.id
                    if event.name == "done" or (event.name == "error" and event.data.get("fatal")):
                        return
                    if self.rng.random() < self.hangup_rate:  # the client leaves, then comes back
                        self.hangups += 1
                        break
            except (requests.RequestException, ValueError):
                pass  # cut mid-event: reconnect from the last whole event
            finally:
                response.close()
            self.reconnects += 1

    def verdict(self):
        """Losses against the server's own state and its whole event log, read directly."""
        state = self.http.get(self.server + "/analyze/live/" + self.session["session_id"],
                              timeout=TIMEOUT).json()
        log = requests.get(self.server + self.session["events_endpoint"], stream=True, timeout=(5, 30))
        reference = [event.id for event in iter_events(log)]
        log.close()
        seen, repeated, out_of_order, previous = set(), 0, 0, 0
        for event_id in self.received:
            if event_id in seen:
                repeated += 1
            elif event_id < previous:
                out_of_order += 1
            seen.add(event_id)
            previous = max(previous, event_id)
        chunk_bytes = self.sent_bytes // self.chunks
        return {"chunks_lost": self.chunks - state["next_chunk_seq"],
                "chunks_duplicated": max(0, state["total_bytes"] - self.sent_bytes) // chunk_bytes,
                "bytes_short": max(0, self.sent_bytes - state["total_bytes"]),
                "audio_seconds": state["audio_seconds"], "status": state["status"],
                "events": len(reference), "events_lost": len(set(reference) - seen),
                "events_repeated": repeated, "events_out_of_order": out_of_order,
                "reconnects": self.reconnects, "client_hangups": self.hangups, "retries": dict(self.retries), "errors": self.errors}


def run_sessions(proxy_url, server_url, count, chunks, chunk_s, hangup_rate=0.0, seed=0, make_chunk=pcm_chunk):
    runs = [SessionRun(proxy_url, server_url, chunks, chunk_s, hangup_rate, seed + i, make_chunk)
            for i in range(count)]
    threads = [threading.Thread(target=fn, daemon=True) for run in runs for fn in (run.upload, run.consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


def wait_buried(server_url, sessions, timeout_s):
    """Until every session answers 410 (finished, then removed by the reaper)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        codes = {requests.get(server_url + "/analyze/live/" + s["session_id"], timeout=TIMEOUT).status_code
                 for s in sessions}
        if codes == {410}:
            return True
        time.sleep(0.5)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--audio-s", type=float, default=300.0, help="audio per session")
    parser.add_argument("--chunk-s", type=float, default=0.25)
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of POSTs given a fault")
    parser.add_argument("--stream-fault-rate", type=float, default=0.75,
                        help="share of event-stream connections given a fault")
    parser.add_argument("--hangup-rate", type=float, default=0.01,
                        help="chance per event that the consumer hangs up and reconnects at once")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--speech", action="store_true", help="the speech pipeline on, the bundled call as audio")
    args = parser.parse_args()
    chunks = int(args.audio_s / args.chunk_s)
    make_chunk = speech_chunk if args.speech else pcm_chunk
    with tempfile.TemporaryDirectory() as tmp:
        server = BenchServer({"HARKEN_PIPELINE": "speech" if args.speech else "none",
                              "HARKEN_STATUS_EVERY_S": "0",
                              "HARKEN_RESULT_TTL_S": str(RESULT_TTL_S), "HARKEN_REAPER_INTERVAL_S": "0.5",
                              "HARKEN_HEARTBEAT_S": "2", "HARKEN_ACCESS_LOG": ""},
                             Path(tmp) / "server.log")
        worker = ProcStat(server.worker_pid)
        faults = Faults(args.seed, args.fault_rate, args.stream_fault_rate)
        try:
            with FaultyProxy(server.url, faults) as proxy:
                rss_start_mb = worker.rss_mb()
                warm = run_sessions(server.url, server.url, args.sessions, chunks, args.chunk_s,
                                    make_chunk=make_chunk)  # no faults
                wait_buried(server.url, [r.session for r in warm], 120)
                rss_before_mb = worker.rss_mb()
                started = time.monotonic()
                runs = run_sessions(proxy.url, server.url, args.sessions, chunks, args.chunk_s,
                                    args.hangup_rate, args.seed, make_chunk)
                soak_s = time.monotonic() - started
                verdicts = [run.verdict() for run in runs]
                buried = wait_buried(server.url, [r.session for r in runs], 120)
                rss_after_mb = worker.rss_mb()
        finally:
            server.stop()
    totals = {key: sum(v[key] for v in verdicts) for key in
              ("chunks_lost", "chunks_duplicated", "bytes_short", "events", "events_lost",
               "events_repeated", "events_out_of_order", "reconnects", "client_hangups")}
    errors = [e for v in verdicts for e in v["errors"]]
    retries = sum((Counter(v["retries"]) for v in verdicts), Counter())
    names = sum((run.names for run in runs), Counter())
    result = {"pipeline": "speech" if args.speech else "none", "sessions": args.sessions,
              "audio_s_per_session": args.audio_s, "chunk_s": args.chunk_s,
              "chunks_per_session": chunks, "fault_rate": args.fault_rate,
              "stream_fault_rate": args.stream_fault_rate, "faults": dict(faults.counts),
              "soak_wall_s": round(soak_s, 1),
              "audio_x_real_time": round(args.sessions * args.audio_s / soak_s, 1), **totals,
              "all_completed": all(v["status"] == "completed" for v in verdicts),
              "event_names": dict(names), "retries": dict(retries), "errors": errors[:20],
              "rss_start_mb": round(rss_start_mb, 1), "rss_before_mb": round(rss_before_mb, 1),
              "rss_after_mb": round(rss_after_mb, 1),
              "rss_change_pct": round(100 * (rss_after_mb - rss_before_mb) / rss_before_mb, 1),
              "all_buried": buried, "machine": describe()}
    save("soak-speech.json" if args.speech else "soak.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    losses = sum(totals[k] for k in ("chunks_lost", "chunks_duplicated", "bytes_short", "events_lost",
                                     "events_repeated", "events_out_of_order"))
    ok = losses == 0 and not errors and result["all_completed"] and abs(result["rss_change_pct"]) <= 10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

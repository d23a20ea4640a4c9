"""Client overhead: CPU µs per chunk and per event, and the delay from the server's write to the caller's iterator.

Runs the real server (gunicorn + gevent from the Procfile, transport pipeline, one `status`
event per accepted chunk) on a free loopback port, uploads a few thousand small chunks from
one thread while another iterates `LiveClient.events()`, and measures the same for
`AsyncLiveClient`: there each thread runs its own event loop (uploads in one, the event
iterator in the other), so a thread's CPU time is one side's cost, loop overhead included:
- per chunk: the upload thread's CPU time per `upload()` (the client's own cost: multipart
  encoding, requests, urllib3, JSON) and the wall time of the round trip;
- per event: the reading thread's CPU time per typed event (socket reads, chunked decoding,
  SSE framing, JSON, dataclass) — and the same for the parser alone on bytes in memory;
- delay: the server publishes chunk k's `status` event inside the request that accepts
  chunk k, so the event is written when that request's answer is; the delay is the time
  from `upload()` returning to the event coming out of the iterator (it can be negative
  when the event wins the race).
Prints the figures and writes them as JSON to bench/results/client-<time>.json.

    .venv/bin/python bench/client.py [--chunks 3000]
"""
import argparse
import asyncio
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


from client import AsyncLiveClient, LiveClient, Status  # noqa: E402
from client.events import FinalTranscript, Word, parse_event  # noqa: E402
from client.sse import SSEParser  # noqa: E402
from conftest import Server  # noqa: E402  (the tests' server runner: the Procfile's command)
from report import results_path, save  # noqa: E402

CHUNK_BYTES = 320  # 10 ms of 16 kHz s16le mono
CHUNK_S = 0.01


def start_server(log_path):
    """The Procfile's command (the tests' Server) with one status event per chunk and no access log."""
    return Server({"HARKEN_PIPELINE": "none", "HARKEN_STATUS_EVERY_S": "0", "HARKEN_ACCESS_LOG": "",
                   "HARKEN_LOG_LEVEL": "warning"}, log_path, ready_timeout_s=60)


def thread_cpu():
    """(user s, system s) this thread has used: the client's own work, and the kernel's on its behalf."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime, usage.ru_stime


def cpu_per_item_us(before, after, count):
    user, system = ((a - b) / count * 1e6 for a, b in zip(after, before))
    return {"user": round(user, 1), "system": round(system, 1), "total": round(user + system, 1)}


def summary_us(values_s):
    values = sorted(v * 1e6 for v in values_s)
    return {"n": len(values), "mean": round(statistics.fmean(values), 1),
            "p50": round(values[len(values) // 2], 1), "p99": round(values[int(len(values) * 0.99)], 1),
            "max": round(values[-1], 1)}


def bench_parser(n_events):
    """The SSE layer and typed events alone, on bytes in memory: µs per event."""
    final = FinalTranscript(utterance_id="utt_0001", speaker="Speaker_0", t_start=1.0, t_end=3.5,
                            text="we need weekly reports without the manual work", confidence=0.93,
                            words=[Word(w, 1.0 + i * 0.3, 1.25 + i * 0.3, 0.9) for i, w in
                                   enumerate("we need weekly reports without the manual work".split())])
    status = Status(phase="ingesting", progress=0.98, audio_seconds=12.34, lag_seconds=0.2,
                    detail="analysing live audio")
    frames = []
    for i in range(1, n_events + 1):
        event = final if i % 4 == 0 else status
        frames.append(f"id: {i}\nevent: {event.name}\ndata: {event.to_json()}\n\n".encode())
    began = time.thread_time()
    count = sum(1 for m in SSEParser(iter(frames)).events() if parse_event(m.event, m.data, m.id))
    cpu = time.thread_time() - began
    assert count == n_events
    return {"events": n_events, "cpu_us_per_event": round(cpu / n_events * 1e6, 1)}


class Run:
    """One live run's bookkeeping, whichever client: upload times, event arrivals, CPU per item."""

    def __init__(self, n_chunks, pace_s):
        self.n_chunks, self.pace_s = n_chunks, pace_s
        self.answered_at, self.arrived_at = {}, {}
        self.upload_wall, self.upload_cpu, self.events_cpu = [], {}, {}
        self.events = 0

    def send_at(self, began, seq):
        """Seconds to wait before chunk `seq` (back to back when `pace_s` is 0)."""
        return max(0.0, began + seq * self.pace_s - time.perf_counter())

    def uploaded(self, seq, sent):
        done = time.perf_counter()
        self.upload_wall.append(done - sent)
        self.answered_at[seq] = done

    def arrived(self, event):
        self.events += 1
        if isinstance(event, Status) and event.phase == "ingesting":
            self.arrived_at.setdefault(round(event.audio_seconds / CHUNK_S) - 1, time.perf_counter())

    def result(self):
        delays = [self.arrived_at[seq] - self.answered_at[seq] for seq in self.arrived_at
                  if seq in self.answered_at]
        return {
            "chunks": self.n_chunks, "chunk_bytes": CHUNK_BYTES, "pace_s": self.pace_s,
            "events": self.events + 1,
            "upload_cpu_us_per_chunk": self.upload_cpu,
            "upload_wall_us": summary_us(self.upload_wall),
            "events_cpu_us_per_event": self.events_cpu,
            "write_to_iterator_delay_us": summary_us(delays),
        }


def bench_live(url, n_chunks, pace_s):
    """LiveClient: uploads from a thread (on the client's twin), events in this one; CPU per chunk and per event, and the delay."""
    run = Run(n_chunks, pace_s)
    with LiveClient(url) as client:
        session = client.start(suffix=".pcm")
        events = client.events(session)
        assert next(events).id == 1  # the stream is open before the first chunk goes
        uploads = client.twin()

        def upload_all():
            cpu0, began = thread_cpu(), time.perf_counter()
            for seq in range(n_chunks):
                time.sleep(run.send_at(began, seq))
                sent = time.perf_counter()
                uploads.upload(session, seq, bytes(CHUNK_BYTES))
                run.uploaded(seq, sent)
            run.upload_cpu.update(cpu_per_item_us(cpu0, thread_cpu(), n_chunks))
            uploads.control(session, "finalize")

        uploader = threading.Thread(target=upload_all)
        cpu0 = thread_cpu()
        uploader.start()
        for event in events:
            run.arrived(event)
        run.events_cpu.update(cpu_per_item_us(cpu0, thread_cpu(), run.events))
        uploader.join()
    return run.result()


def bench_live_async(url, n_chunks, pace_s):
    """AsyncLiveClient: uploads on an event loop in a thread, events on another loop in this one; the same figures."""
    run = Run(n_chunks, pace_s)

    async def upload_all(session):
        async with AsyncLiveClient(url) as client:
            cpu0, began = thread_cpu(), time.perf_counter()
            for seq in range(n_chunks):
                await asyncio.sleep(run.send_at(began, seq))
                sent = time.perf_counter()
                await client.upload(session, seq, bytes(CHUNK_BYTES))
                run.uploaded(seq, sent)
            run.upload_cpu.update(cpu_per_item_us(cpu0, thread_cpu(), n_chunks))
            await client.control(session, "finalize")

    async def read_all():
        async with AsyncLiveClient(url) as client:
            session = await client.start(suffix=".pcm")
            events = client.events(session)
            assert (await anext(events)).id == 1
            uploader = threading.Thread(target=asyncio.run, args=(upload_all(session),))
            cpu0 = thread_cpu()
            uploader.start()
            async for event in events:
                run.arrived(event)
            run.events_cpu.update(cpu_per_item_us(cpu0, thread_cpu(), run.events))
            uploader.join()

    asyncio.run(read_all())
    return run.result()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=3000, help="chunks sent back to back")
    parser.add_argument("--paced-chunks", type=int, default=1000,
                        help="chunks sent one every 10 ms, as a microphone would")
    args = parser.parse_args()
    server = start_server(results_path("client-server.log"))
    try:
        runs = {"back_to_back": bench_live(server.url, args.chunks, 0.0),
                "real_time": bench_live(server.url, args.paced_chunks, CHUNK_S),
                "async_back_to_back": bench_live_async(server.url, args.chunks, 0.0),
                "async_real_time": bench_live_async(server.url, args.paced_chunks, CHUNK_S)}
    finally:
        server.stop()
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
              "load_average_1m": os.getloadavg()[0], "python": sys.version.split()[0],
              "parser": bench_parser(5000), **runs}
    print(f"load average {result['load_average_1m']:.1f} on {result['cpus']} CPUs")
    print(f"parser alone: {result['parser']['cpu_us_per_event']} µs CPU per event "
          f"({result['parser']['events']} events in memory)")
    for name, live in runs.items():
        chunk_cpu, event_cpu = live["upload_cpu_us_per_chunk"], live["events_cpu_us_per_event"]
        wall, delay = live["upload_wall_us"], live["write_to_iterator_delay_us"]
        print(f"{name}: {live['chunks']} chunks, {live['events']} events")
        print(f"  per chunk: {chunk_cpu['user']} µs user + {chunk_cpu['system']} µs system CPU; "
              f"round trip p50 {wall['p50']} µs, p99 {wall['p99']} µs")
        print(f"  per event: {event_cpu['user']} µs user + {event_cpu['system']} µs system CPU")
        print(f"  server write → iterator: p50 {delay['p50']} µs, p99 {delay['p99']} µs, "
              f"max {delay['max']} µs")
    out = save(f"client-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json", result)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Scale-out benchmark: the cost of Redis (HARKEN_REDIS_URL) against the in-memory mode, and failover time.

    .venv/bin/python bench/scale.py                 # all parts, about 3 minutes
    .venv/bin/python bench/scale.py --parts memory redis-1x1 --duration 20

Parts (each with HARKEN_PIPELINE=none, so the figures are the transport's and the store's):

- `memory`, `redis-1x1`, `redis-1x2`: bench/transport.py's load (50 sessions posting 8,000-byte
  PCM chunks four times a second — real time — each with a live SSE consumer) against one
  embedded worker, one worker on Redis, and two workers on Redis behind one port (the kernel
  spreads connections, so most chunks land on a worker that is not the session's lease
  holder and are forwarded). Chunk POST p50/p99, event delivery delay, and the CPU of the
  gunicorn workers and of redis-server over the window; from them the Redis overhead in
  CPU-ms per second of audio ingested.
- `memory-per-minute`: 10 sessions each given one minute of 16 kHz PCM: Redis `used_memory`
  per session per minute of audio (the stored chunks dominate; compressed uploads cost their
  own bit rate).
- `failover`: 2 hosts × 2 workers, one session uploading 0.25 s chunks in real time;
  kill -9 of its lease holder: seconds from the kill to the next accepted chunk (the client
  retries 503s after Retry-After), chunks lost (must be 0).
- `failover-speech`: the speech pipeline on 2 hosts × 1 worker (HARKEN_WORKERS=1), the
  test's two-voice dialogue streamed at real time by the plain client; kill -9 of the
  analysing worker after the first final: seconds to the next final, audio analysed again,
  finals repeated (must be 0).

Results are merged into bench/results/scale.json part by part (a run of some parts keeps
the others' last figures).

Results are printed. The machine this ran on is
shared (2 cores, other jobs): read the CPU figures as upper bounds.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # before bench/: bench/client.py must not shadow the client
from conftest import Server, free_port  # noqa: E402  (the tests' runners: the Procfile's command)
from machine import describe  # noqa: E402
from redisserver import RedisServer  # noqa: E402
from report import merge  # noqa: E402
from transport import ProcStat, _loadavg, warm_up  # noqa: E402

LIVE = "/analyze/live"
TIMEOUT = (5, 30)
RATE_HZ = 16000
BASE_ENV = {"HARKEN_PIPELINE": "none", "HARKEN_STATUS_EVERY_S": "0", "HARKEN_MAX_SESSIONS": "300",
            "HARKEN_ACCESS_LOG": ""}


def _workers(server):
    """The pids of a gunicorn master's workers."""
    pid = server.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cpu(pids):
    return sum(ProcStat(pid).cpu_s() for pid in pids)


def _transport_load(url, args, pids):
    """Run bench/transport.py's load role against `url`; its report plus the CPU of `pids` over its window."""
    load = subprocess.Popen([sys.executable, str(ROOT / "bench" / "transport.py"), "--role=load", "--url", url,
                             "--sessions", str(args.sessions), "--chunk-bytes", "8000", "--rate-hz", "4",
                             "--duration", str(args.duration), "--warmup", "3", "--idle-consumers", "0",
                             "--hold", "0"], stdout=subprocess.PIPE, text=True)
    marks, report = {}, None
    for line in load.stdout:
        line = line.strip()
        if line in ("WINDOW_START", "WINDOW_END"):
            marks[line] = (time.monotonic(), {pid: ProcStat(pid).cpu_s() for pid in pids}, _loadavg())
        elif line.startswith("{"):
            report = json.loads(line)
    if load.wait(120) != 0 or report is None:
        raise RuntimeError(f"the load process failed (exit {load.returncode})")
    (t0, cpu0, avg0), (t1, cpu1, avg1) = marks["WINDOW_START"], marks["WINDOW_END"]
    window_s = t1 - t0
    cpu = {pid: round(1000 * (cpu1[pid] - cpu0[pid]) / window_s, 1) for pid in pids}
    audio_s_per_s = args.sessions * 4 * (8000 / 2 / RATE_HZ)
    return report, cpu, window_s, audio_s_per_s, (avg0, avg1)


def transport_part(name, args, redis_server, hosts=1, workers=1):
    """One transport run: `hosts` masters of `workers` each (Redis) or the embedded server."""
    env = dict(BASE_ENV)
    if name != "memory":
        env.update(HARKEN_REDIS_URL=redis_server.db_url(0), WEB_CONCURRENCY=str(workers))
        redis_server.client().flushdb()
    log_dir = Path(tempfile.mkdtemp(prefix=f"scale-{name}-"))
    servers = [Server(env, log_dir / f"host{i}.log", need_models=False) for i in range(hosts)]
    try:
        warm_up(servers[0])
        time.sleep(1.5)  # every worker has advertised its load once
        worker_pids = [pid for server in servers for pid in _workers(server)]
        pids = worker_pids + ([redis_server.proc.pid] if name != "memory" else [])
        report, cpu, window_s, audio_rate, loadavg = _transport_load(servers[0].url, args, pids)
    finally:
        for server in servers:
            server.stop()
    workers_ms = sum(cpu[pid] for pid in worker_pids)
    redis_ms = cpu.get(redis_server.proc.pid, 0.0)
    result = {
        "gunicorn": {"hosts": hosts, "workers_per_host": workers, "redis": name != "memory"},
        "chunk_post_latency_ms": report["chunk_post_latency_ms"],
        "event_delivery_delay_ms": report["event_delivery_delay_ms"],
        "sse_first_byte_ms": report["sse_first_byte_ms"],
        "http_statuses": report["http_statuses"], "request_failures": report["request_failures"],
        "cpu_ms_per_s": {"workers": round(workers_ms, 1), "redis_server": round(redis_ms, 1)},
        "audio_s_ingested_per_s": audio_rate,
        "cpu_ms_per_audio_s": round((workers_ms + redis_ms) / audio_rate, 2),
        "window_s": round(window_s, 1), "loadavg_1min": loadavg,
    }
    print(f"{name}: chunk POST p50 {report['chunk_post_latency_ms'].get('p50')} ms, "
          f"p99 {report['chunk_post_latency_ms'].get('p99')} ms; event delivery p50 "
          f"{report['event_delivery_delay_ms']['from_post_sent'].get('p50')} ms, p99 "
          f"{report['event_delivery_delay_ms']['from_post_sent'].get('p99')} ms; CPU {workers_ms:.0f} ms/s "
          f"workers + {redis_ms:.0f} ms/s redis = {result['cpu_ms_per_audio_s']} ms per audio second",
          flush=True)
    return result


def memory_part(args, redis_server, sessions=10, minutes=1.0):
    """Redis used_memory per session per minute of 16 kHz PCM audio."""
    store = redis_server.client()
    store.flushdb()
    server = Server({**BASE_ENV, "HARKEN_REDIS_URL": redis_server.db_url(0)},
                    Path(tempfile.mkdtemp(prefix="scale-mem-")) / "host.log", need_models=False)
    try:
        warm_up(server)
        before = store.info("memory")["used_memory"]
        chunk = bytes(32000)  # one second; content does not change the size stored
        http = requests.Session()
        for _ in range(sessions):
            session_id = http.post(server.url + LIVE + "/start", json={"suffix": ".pcm"},
                                   timeout=TIMEOUT).json()["session_id"]
            for seq in range(int(60 * minutes)):
                http.post(f"{server.url}{LIVE}/{session_id}/chunk", params={"chunk_seq": seq}, data=chunk,
                          headers={"Content-Type": "application/octet-stream"},
                          timeout=TIMEOUT).raise_for_status()
        after = store.info("memory")["used_memory"]
    finally:
        server.stop()
        store.close()
    per = (after - before) / sessions / minutes / 2**20
    print(f"memory: {per:.2f} MiB per session per minute of 16 kHz PCM "
          f"({len(chunk) * 60 / 2**20:.2f} MiB of it is the audio itself)", flush=True)
    return {"sessions": sessions, "audio_minutes_each": minutes, "format": "pcm s16le 16 kHz mono",
            "used_memory_delta_mib": round((after - before) / 2**20, 2),
            "mib_per_session_minute": round(per, 3),
            "audio_bytes_mib_per_minute": round(32000 * 60 / 2**20, 3)}


def failover_part(args, redis_server):
    """kill -9 of a session's lease holder while the client uploads in real time: time to the next accepted chunk."""
    store = redis_server.client()
    store.flushdb()
    env = {**BASE_ENV, "HARKEN_REDIS_URL": redis_server.db_url(0), "WEB_CONCURRENCY": "2"}
    log_dir = Path(tempfile.mkdtemp(prefix="scale-failover-"))
    servers = [Server(env, log_dir / f"host{i}.log", need_models=False) for i in range(2)]
    lease_ttl_s = 5.0
    try:
        url = servers[1].url
        session_id = requests.post(servers[0].url + LIVE + "/start", json={"suffix": ".pcm"},
                                   timeout=TIMEOUT).json()["session_id"]
        chunk = bytes(8000)
        seq, killed_at, resumed_at, retries = 0, None, None, 0
        began = time.monotonic()
        while seq < 80:
            time.sleep(max(0.0, began + seq * 0.25 - time.monotonic()))
            if seq == 20 and killed_at is None:
                holder = store.get(f"harken:{{{session_id}}}:lease").decode()
                os.kill(int(holder.split(":")[1]), signal.SIGKILL)
                killed_at = time.monotonic()
            answer = requests.post(f"{url}{LIVE}/{session_id}/chunk", params={"chunk_seq": seq}, data=chunk,
                                   headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT)
            if answer.status_code == 503:
                retries += 1
                time.sleep(min(1.0, float(answer.headers.get("Retry-After", "1"))))
                continue
            answer.raise_for_status()
            if killed_at is not None and resumed_at is None:
                resumed_at = time.monotonic()
            seq += 1
        state = requests.get(f"{url}{LIVE}/{session_id}", timeout=TIMEOUT).json()
    finally:
        for server in servers:
            server.stop()
        store.close()
    result = {"lease_ttl_s": lease_ttl_s, "kill_to_next_accepted_chunk_s": round(resumed_at - killed_at, 2),
              "client_retries": retries, "chunks_sent": 80, "chunks_in_session": state["next_chunk_seq"],
              "audio_seconds": state["audio_seconds"], "chunks_lost": 80 - state["next_chunk_seq"]}
    print(f"failover: {result['kill_to_next_accepted_chunk_s']} s from kill -9 to the next accepted chunk "
          f"({retries} retried requests), {result['chunks_lost']} chunks lost", flush=True)
    return result


def failover_speech_part(args, redis_server):
    """The speech pipeline on 2 hosts × 1 worker: kill -9 of the analysing worker after the first final.

    Seconds from the kill to the next final the client reads, and how much audio the new
    holder analysed again (from the last checkpoint to what had been received at the kill).
    """
    from client import LiveClient
    from deployment import Deployment
    from test_scaleout_failover import DIALOGUE, VOICES
    import speechgen

    store = redis_server.client()
    store.flushdb()
    wav, _ = speechgen.dialogue(DIALOGUE, voices=VOICES)
    deployment = Deployment(redis_server.db_url(0), Path(tempfile.mkdtemp(prefix="scale-speech-")), hosts=2,
                            workers=1, events_workers=0, HARKEN_PIPELINE="speech", HARKEN_WORKERS="1")
    marks, finals = {}, []
    try:
        with LiveClient(deployment.url) as client:
            stream = client.stream(str(wav), chunk_bytes=8000, realtime=True)
            for event in stream:
                if event.name != "final_transcript":
                    continue
                finals.append((time.monotonic(), event.utterance_id))
                if not marks:
                    keys = f"harken:{{{stream.session.session_id}}}"
                    holder = store.get(keys + ":lease").decode()
                    checkpoint, received = store.hmget(keys + ":meta", "checkpoint", "samples")
                    marks.update(received=int(received), checkpoint=json.loads(checkpoint)["samples"])
                    os.kill(int(holder.split(":")[1]), signal.SIGKILL)
                    marks["killed"] = time.monotonic()
    finally:
        deployment.stop()
        store.close()
    after = [at for at, _ in finals if at > marks["killed"]]
    ids = [utterance for _, utterance in finals]
    result = {"lease_ttl_s": 5.0, "finals": len(finals), "finals_repeated": len(ids) - len(set(ids)),
              "kill_to_next_final_s": round(after[0] - marks["killed"], 2) if after else None,
              "reanalysed_audio_s": round((marks["received"] - marks["checkpoint"]) / RATE_HZ, 2)}
    print(f"failover (speech): {result['kill_to_next_final_s']} s from kill -9 to the next final; "
          f"{result['reanalysed_audio_s']} s of audio analysed again; {result['finals_repeated']} finals repeated",
          flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parts", nargs="+",
                        default=["memory", "redis-1x1", "redis-1x2", "memory-per-minute", "failover",
                                 "failover-speech"])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds of each transport run")
    args = parser.parse_args(argv)
    redis_server = RedisServer(Path(tempfile.mkdtemp(prefix="scale-redis-")), free_port()).start()
    results = {"machine": describe(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "sessions": args.sessions, "duration_s": args.duration}
    try:
        for part in args.parts:
            if part == "memory":
                results[part] = transport_part(part, args, redis_server)
            elif part.startswith("redis-1x"):
                results[part] = transport_part(part, args, redis_server, workers=int(part[-1]))
            elif part == "memory-per-minute":
                results[part] = memory_part(args, redis_server)
            elif part == "failover":
                results[part] = failover_part(args, redis_server)
            elif part == "failover-speech":
                results[part] = failover_speech_part(args, redis_server)
    finally:
        redis_server.stop()
    if "memory" in results and "redis-1x1" in results:
        results["redis_overhead_cpu_ms_per_audio_s"] = round(
            results["redis-1x1"]["cpu_ms_per_audio_s"] - results["memory"]["cpu_ms_per_audio_s"], 2)
        print(f"Redis overhead: {results['redis_overhead_cpu_ms_per_audio_s']} CPU-ms per audio second "
              "(one worker, workers + redis-server)")
    path = merge("scale.json", results)
    print(f"written to {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

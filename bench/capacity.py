"""How many concurrent real-time sessions of real speech one server serves within its latency promises.

    .venv/bin/python bench/capacity.py                   # 2, 4, 6, 8, 10, 12 sessions
    .venv/bin/python bench/capacity.py --counts 4,8 --audio-s 45

For each count N, N sessions stream real human speech (the sessions of bench/real_speech.py,
clean, cut to --audio-s seconds, repeated in turn when N exceeds them) at real time in 100 ms
PCM chunks into one server, starting 0.37 s apart as calls do. Per count: word -> final
P50/P95 over every final word of every session, utterance end -> final P50/P95, word -> first
partial P50, the share of words first seen in their final, partials per session minute, the
largest `lag_seconds`, the worker CPU per audio second, and the WER of the finals. The ceiling
is the largest count at which word -> final P50 <= 1.5 s and P95 <= 3 s both hold (issue 16);
the run stops at the first count that misses it.
The sessions' own latency counts too: a fluent reader's words wait for a pause whatever the
load. By default count N takes the first N sessions, so a larger count also brings harder
material; --mix K cycles the first K sessions instead, so that counts that are multiples of K
hold the same material. --alone first streams each session of the material alone into the
idle server, and every count then also reports the latency of its sessions alone (the
material's floor) beside what it measured under load. All timings depend on what else the machine
runs: the load average at the start of each count is in the JSON.
With --simulate, the same sessions are served instead by one in-process worker on a virtual
clock, as bench/final_latency.py does for one session: chunks arrive at real time, the worker
feeds every arrived chunk before it decodes a partial (round robin over the sessions that want
one), makes a final decode cheap when HARKEN_ASR_CATCH_UP_AT other sessions want one (as
app.speech.worker does), and each call lasts the CPU time it took. That gives the number of
sessions one worker keeps within the promises on a core of its own, whatever else the machine
runs; a server has one worker per core. WER counts the sessions not cut by --audio-s.
With --layout, the live server is a scale-out deployment on a redis-server of its own
(docs/scaleout.md): `redis-1x2` one host with two gunicorn workers, `redis-2x2` two hosts
with two each, every gunicorn worker with one speech worker (HARKEN_WORKERS=1) and each
request sent to a random host. The worker CPU figure is then left out (it is read from one
host's /healthz). Writes bench/results/capacity.json (capacity-sim.json with --simulate,
capacity-<layout>.json with a layout).
"""
import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from conftest import Server  # noqa: E402
from deployment import Deployment  # noqa: E402
from redisserver import RedisServer  # noqa: E402
from real_speech import SESSIONS, manifest, session_audio  # noqa: E402
from report import results_path, save  # noqa: E402
from speech import CHUNK_S, RATE_HZ, LiveRun, pct, utterance_end_latencies, worker_cpu_s  # noqa: E402

WORD_TO_FINAL_P50_S = 1.5
WORD_TO_FINAL_P95_S = 3.0


def sessions(audio_s, mix=None):
    """[(name, pcm, reference or None)]: the first `mix` (default all) real-speech sessions, each
    cut to `audio_s` (its reference only when whole)."""
    utterances = manifest()
    out = []
    for name, _, ids in SESSIONS[:mix]:
        audio = session_audio(ids, utterances)
        whole = len(audio) <= audio_s * RATE_HZ
        reference = " ".join(utterances[u]["reference"] for u in ids) if whole else None
        pcm = (np.clip(audio[:int(audio_s * RATE_HZ)], -1, 1) * 32767).astype(np.int16).tobytes()
        out.append((name, pcm, reference))
    return out


def picked(material, count):
    """The sessions a trial of `count` streams: the material in turn."""
    return [material[i % len(material)] for i in range(count)]


def alone(url, material):
    """{name: [word -> final seconds]}: each session of `material` streamed alone."""
    out = {}
    for name, pcm, _ in material:
        run = LiveRun(url, pcm)
        run.run()
        out[name] = [final for _, final in run.word_latencies()]
        print(f"{name} alone: word -> final P50 {pct(out[name], 50)} s, P95 {pct(out[name], 95)} s", flush=True)
    return out


def trial(url, material, count, measure_cpu=True):
    """`count` sessions at once; their figures."""
    picked_sessions = picked(material, count)
    runs = [LiveRun(url, pcm) for _, pcm, _ in picked_sessions]
    load = os.getloadavg()[0]
    cpu_before = worker_cpu_s(url) if measure_cpu else None
    threads = [threading.Thread(target=run.run) for run in runs]
    for thread in threads:
        thread.start()
        time.sleep(0.37)
    for thread in threads:
        thread.join()
    cpu = worker_cpu_s(url) - cpu_before if cpu_before is not None else None
    audio_s = sum(len(pcm) / 2 / RATE_HZ for _, pcm, _ in picked_sessions)
    words = [w for run in runs for w in run.word_latencies()]
    finals = [f for _, f in words]
    firsts = [p for p, _ in words if p is not None]
    utterance = [u for run in runs for u in run.utterance_latencies()]
    return {"sessions": count, "names": [name for name, _, _ in picked_sessions],
            "load_average_at_start": round(load, 2),
            "word_to_final_s": {"p50": pct(finals, 50), "p95": pct(finals, 95), "n": len(finals)},
            "utterance_end_to_final_s": {"p50": pct(utterance, 50), "p95": pct(utterance, 95), "n": len(utterance)},
            "word_to_first_partial_s": {"p50": pct(firsts, 50), "p95": pct(firsts, 95)},
            "words_first_seen_in_final": round(1 - len(firsts) / len(words), 3) if words else None,
            "partials_per_session_minute": round(
                sum(len(run.of("partial_transcript")) for run in runs) * 60 / audio_s, 1),
            "max_lag_s": round(max(run.max_lag_s for run in runs), 3),
            "worker_cpu_per_audio_s": round(cpu / audio_s, 3) if cpu is not None else None,
            "wer": pooled_wer(picked_sessions, [run.transcript for run in runs]),
            "errors": sum(1 for run in runs if run.error or not run.of("done"))}


def pooled_wer(picked_sessions, transcripts):
    """WER over the sessions that have their reference (those not cut), pooled by words; None if none has."""
    scored = [(reference, text) for (_, _, reference), text in zip(picked_sessions, transcripts) if reference]
    ref_words = sum(len(speechgen.normalise(r).split()) for r, _ in scored)
    errors = sum(speechgen.wer(r, t) * len(speechgen.normalise(r).split()) for r, t in scored)
    return round(errors / ref_words, 4) if ref_words else None


def simulate_worker(count, material, slowdown=1.0):
    """`count` sessions on one in-process worker, on the virtual clock; the trial's figures."""
    import heapq

    from app.config import Settings
    from app.speech.asr import WhisperRecognizer
    from app.speech.diarization import OnlineSpeakers, SpeakerEncoder
    from app.speech.models import whisper_model
    from app.speech.settings import endpoint_settings
    from app.speech.streaming import SessionRecognizer
    from app.speech.worker import crowded

    global _MODELS
    config = Settings.from_env()
    if _MODELS is None:
        _MODELS = (WhisperRecognizer(whisper_model(config)), SpeakerEncoder())
    whisper, encoder = _MODELS
    chunk = int(CHUNK_S * RATE_HZ)
    picked_sessions = picked(material, count)
    audios = [np.frombuffer(pcm, np.int16).astype(np.float32) / 32767 for _, pcm, _ in picked_sessions]
    recognizers = [SessionRecognizer(whisper, OnlineSpeakers(encoder, config.speaker_similarity),
                                     settings=endpoint_settings(config))
                   for _ in range(count)]
    offsets = [0.37 * i for i in range(count)]
    chunk_arrivals = [[offset + k * CHUNK_S for k in range(-(-len(audio) // chunk))]
                      for offset, audio in zip(offsets, audios)]
    arrivals = [(at, i, k) for i, session in enumerate(chunk_arrivals) for k, at in enumerate(session)]
    heapq.heapify(arrivals)
    finals, partials, order = [[] for _ in range(count)], [[] for _ in range(count)], list(range(count))
    now = 0.0

    cpu_by_call = {}

    def crowded_but(i):
        """As app.speech.worker decides it: enough sessions other than `i` wait for a decode."""
        return crowded((r for j, r in enumerate(recognizers) if j != i), config.asr_catch_up_at)

    def call(i, kind, fn):
        nonlocal now
        cpu = time.process_time()
        events = fn()
        spent = time.process_time() - cpu
        now += spent * slowdown
        emitted_final = False
        for event in events:
            is_final = type(event).__name__ == "FinalTranscript"
            emitted_final |= is_final
            (finals if is_final else partials)[i].append((now, event))
        # A feed that emits a final decoded it at the endpoint; a partial that does committed words.
        key = f"{kind} with a final" if emitted_final else kind
        spent_n = cpu_by_call.setdefault(key, [0.0, 0])
        spent_n[0] += spent
        spent_n[1] += 1

    while arrivals:
        if arrivals[0][0] <= now:
            _, i, k = heapq.heappop(arrivals)
            call(i, "feed", lambda: recognizers[i].feed(audios[i][k * chunk:(k + 1) * chunk], crowded_but(i)))
            continue
        due = next((i for i in order if recognizers[i].wants_partial()), None)
        if due is None:
            now = arrivals[0][0]
            continue
        call(due, "partial", lambda: recognizers[due].partial(crowded_but(due)))
        order.remove(due)
        order.append(due)
    for i in range(count):
        call(i, "finish", recognizers[i].finish)
    audio_s = sum(len(a) / RATE_HZ for a in audios)
    word_final, first, utterance_end = [], [], []
    for i in range(count):
        utterance_end += utterance_end_latencies([(at, f.t_start, f.t_end) for at, f in finals[i]], chunk_arrivals[i])
        seen = {}
        for at, partial in partials[i]:
            seen.setdefault(partial.utterance_id, []).append((at, speechgen.normalise(partial.text).split()))
        for at, final in finals[i]:
            for k, word in enumerate(final.words):
                spoken = offsets[i] + word.end
                word_final.append(at - spoken)
                hit = next((t for t, words in seen.get(final.utterance_id, [])
                            if k < len(words) and words[k] == speechgen.normalise(word.word)), None)
                if hit is not None:
                    first.append(hit - spoken)
    return {"sessions_per_worker": count, "slowdown": slowdown,
            "word_to_final_s": {"p50": pct(word_final, 50), "p95": pct(word_final, 95), "n": len(word_final)},
            "word_to_first_partial_s": {"p50": pct(first, 50), "p95": pct(first, 95)},
            "utterance_end_to_final_s": {"p50": pct(utterance_end, 50), "p95": pct(utterance_end, 95),
                                         "n": len(utterance_end)},
            "words_first_seen_in_final": round(1 - len(first) / len(word_final), 3) if word_final else None,
            "partials_per_session_minute": round(
                sum(len(p) for p in partials) * 60 / audio_s, 1),
            "cpu_per_audio_s": round(sum(c for c, _ in cpu_by_call.values()) / audio_s, 3),
            "catch_up_at": config.asr_catch_up_at,
            "wer": pooled_wer(picked_sessions, [" ".join(f.text for _, f in session) for session in finals]),
            # Where the worker's CPU goes: seconds per audio second and calls, by kind of call.
            "cpu_by_call": {kind: {"cpu_per_audio_s": round(c / audio_s, 4), "calls": n, "mean_s": round(c / n, 4)}
                            for kind, (c, n) in sorted(cpu_by_call.items())},
            "errors": 0}


_MODELS = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2,4,6,8,10,12")
    parser.add_argument("--audio-s", type=float, default=60.0, help="each session's audio is cut to this")
    parser.add_argument("--simulate", action="store_true",
                        help="sessions per worker on a virtual clock in-process, instead of a live server")
    parser.add_argument("--slowdown", type=float, default=1.0, help="with --simulate: calls last N times their CPU time")
    parser.add_argument("--layout", choices=("embedded", "redis-1x2", "redis-2x2"), default="embedded")
    parser.add_argument("--every-count", action="store_true",
                        help="measure every count, past the ceiling too (to compare layouts at the same loads)")
    parser.add_argument("--mix", type=int, default=None,
                        help="cycle the first K sessions (default: all), so that multiples of K hold the same material")
    parser.add_argument("--alone", action="store_true",
                        help="first stream each session alone, and report every count's latency alone beside it")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    material = sessions(args.audio_s, args.mix)
    if args.simulate:
        return simulated(args, material)
    from app.config import Settings
    report = {"machine": machine.describe(), "layout": args.layout, "audio_s": args.audio_s, "mix": args.mix,
              "catch_up_at": Settings.from_env().asr_catch_up_at, "trials": []}
    with _deployment(args.layout) as server:
        floors = alone(server.url, material[:max(counts)]) if args.alone else None
        if floors:
            report["alone_word_to_final_s"] = {
                name: {"p50": pct(v, 50), "p95": pct(v, 95), "n": len(v)} for name, v in floors.items()}
        for count in counts:
            row = trial(server.url, material, count, measure_cpu=args.layout == "embedded")
            if floors:
                pooled = [s for name in row["names"] for s in floors[name]]
                row["alone_word_to_final_s"] = {"p50": pct(pooled, 50), "p95": pct(pooled, 95)}
            report["trials"].append(row)
            print(json.dumps(row), flush=True)
            final = row["word_to_final_s"]
            if args.every_count:
                continue
            if row["errors"] or final["p50"] is None or final["p50"] > WORD_TO_FINAL_P50_S \
                    or final["p95"] > WORD_TO_FINAL_P95_S:
                break
    kept = [r["sessions"] for r in report["trials"] if not r["errors"] and r["word_to_final_s"]["p50"] is not None
            and r["word_to_final_s"]["p50"] <= WORD_TO_FINAL_P50_S and r["word_to_final_s"]["p95"] <= WORD_TO_FINAL_P95_S]
    report["ceiling_sessions"] = max(kept, default=0)
    print(f"ceiling: {report['ceiling_sessions']} sessions (word -> final P50 <= {WORD_TO_FINAL_P50_S} s, "
          f"P95 <= {WORD_TO_FINAL_P95_S} s)")
    default_out = "capacity.json" if args.layout == "embedded" else f"capacity-{args.layout}.json"
    save(args.out or default_out, report, indent=1)


@contextlib.contextmanager
def _deployment(layout):
    """The server the sessions stream into (its `url`), stopped on exit."""
    env = {"HARKEN_PIPELINE": "speech", "HARKEN_STATUS_EVERY_S": "0.5"}
    if layout == "embedded":
        server = Server(env, results_path("capacity-server.log"))
        try:
            yield server
        finally:
            server.stop()
        return
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        store = RedisServer(tmp, port).start()
        hosts = 1 if layout == "redis-1x2" else 2
        deployment = Deployment(store.url, Path(tmp), hosts=hosts, workers=2, events_workers=0,
                                HARKEN_WORKERS=1, **env)
        try:
            yield deployment
        finally:
            deployment.stop()
            store.stop()


def simulated(args, material):
    """The ceiling of one worker on a core of its own (--simulate)."""
    report = {"machine": machine.describe(), "audio_s": args.audio_s, "simulated": True, "trials": []}
    for count in [int(c) for c in args.counts.split(",")]:
        row = simulate_worker(count, material, args.slowdown)
        report["trials"].append(row)
        print(json.dumps(row), flush=True)
        final = row["word_to_final_s"]
        if not args.every_count and (final["p50"] > WORD_TO_FINAL_P50_S or final["p95"] > WORD_TO_FINAL_P95_S):
            break
    kept = [r["sessions_per_worker"] for r in report["trials"]
            if r["word_to_final_s"]["p50"] <= WORD_TO_FINAL_P50_S and r["word_to_final_s"]["p95"] <= WORD_TO_FINAL_P95_S]
    report["ceiling_sessions_per_worker"] = max(kept, default=0)
    print(f"ceiling: {report['ceiling_sessions_per_worker']} sessions per worker on its own core")
    save(args.out or "capacity-sim.json", report, indent=1)


if __name__ == "__main__":
    main()

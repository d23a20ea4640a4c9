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
the run stops at the first count that misses it. All timings depend on what else the machine
runs: the load average at the start of each count is in the JSON.
Writes bench/results/capacity.json.
"""
import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from conftest import Server  # noqa: E402
from real_speech import SESSIONS, manifest, session_audio  # noqa: E402
from speech import RATE_HZ, RESULTS, LiveRun, pct, worker_cpu_s  # noqa: E402

WORD_TO_FINAL_P50_S = 1.5
WORD_TO_FINAL_P95_S = 3.0


def sessions(audio_s):
    """[(pcm, reference or None)]: each real-speech session cut to `audio_s` (its reference only when whole)."""
    utterances = manifest()
    out = []
    for _, _, ids in SESSIONS:
        audio = session_audio(ids, utterances)
        whole = len(audio) <= audio_s * RATE_HZ
        reference = " ".join(utterances[u]["reference"] for u in ids) if whole else None
        pcm = (np.clip(audio[:int(audio_s * RATE_HZ)], -1, 1) * 32767).astype(np.int16).tobytes()
        out.append((pcm, reference))
    return out


def trial(url, material, count):
    """`count` sessions at once; their figures."""
    picked = [material[i % len(material)] for i in range(count)]
    runs = [LiveRun(url, pcm) for pcm, _ in picked]
    load = os.getloadavg()[0]
    cpu_before = worker_cpu_s(url)
    threads = [threading.Thread(target=run.run) for run in runs]
    for thread in threads:
        thread.start()
        time.sleep(0.37)
    for thread in threads:
        thread.join()
    cpu = worker_cpu_s(url) - cpu_before
    audio_s = sum(len(pcm) / 2 / RATE_HZ for pcm, _ in picked)
    words = [w for run in runs for w in run.word_latencies()]
    finals = [f for _, f in words]
    firsts = [p for p, _ in words if p is not None]
    utterance = [u for run in runs for u in run.utterance_latencies()]
    scored = [(reference, run.transcript) for (_, reference), run in zip(picked, runs) if reference]
    ref_words = sum(len(speechgen.normalise(r).split()) for r, _ in scored)
    errors = sum(speechgen.wer(r, t) * len(speechgen.normalise(r).split()) for r, t in scored)
    return {"sessions": count, "load_average_at_start": round(load, 2),
            "word_to_final_s": {"p50": pct(finals, 50), "p95": pct(finals, 95), "n": len(finals)},
            "utterance_end_to_final_s": {"p50": pct(utterance, 50), "p95": pct(utterance, 95), "n": len(utterance)},
            "word_to_first_partial_s": {"p50": pct(firsts, 50), "p95": pct(firsts, 95)},
            "words_first_seen_in_final": round(1 - len(firsts) / len(words), 3) if words else None,
            "partials_per_session_minute": round(
                sum(len(run.of("partial_transcript")) for run in runs) * 60 / audio_s, 1),
            "max_lag_s": round(max(run.max_lag_s for run in runs), 3),
            "worker_cpu_per_audio_s": round(cpu / audio_s, 3),
            "wer": round(errors / ref_words, 4) if ref_words else None,
            "errors": sum(1 for run in runs if run.error or not run.of("done"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2,4,6,8,10,12")
    parser.add_argument("--audio-s", type=float, default=60.0, help="each session's audio is cut to this")
    parser.add_argument("--out", default="capacity.json")
    args = parser.parse_args()
    material = sessions(args.audio_s)
    RESULTS.mkdir(parents=True, exist_ok=True)
    server = Server({"HARKEN_PIPELINE": "speech", "HARKEN_STATUS_EVERY_S": "0.5"}, RESULTS / "capacity-server.log")
    report = {"machine": machine.describe(), "audio_s": args.audio_s, "trials": []}
    try:
        for count in [int(c) for c in args.counts.split(",")]:
            row = trial(server.url, material, count)
            report["trials"].append(row)
            print(json.dumps(row), flush=True)
            final = row["word_to_final_s"]
            if row["errors"] or final["p50"] is None or final["p50"] > WORD_TO_FINAL_P50_S \
                    or final["p95"] > WORD_TO_FINAL_P95_S:
                break
    finally:
        server.stop()
    kept = [r["sessions"] for r in report["trials"] if not r["errors"] and r["word_to_final_s"]["p50"] is not None
            and r["word_to_final_s"]["p50"] <= WORD_TO_FINAL_P50_S and r["word_to_final_s"]["p95"] <= WORD_TO_FINAL_P95_S]
    report["ceiling_sessions"] = max(kept, default=0)
    print(f"ceiling: {report['ceiling_sessions']} sessions (word -> final P50 <= {WORD_TO_FINAL_P50_S} s, "
          f"P95 <= {WORD_TO_FINAL_P95_S} s)")
    (RESULTS / args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

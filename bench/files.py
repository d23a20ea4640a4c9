"""Recorded-file benchmark: speed, accuracy and memory of POST /analyze against the live path.

    .venv/bin/python bench/files.py                       # 1- and 5-minute calls (about 10 minutes)
    .venv/bin/python bench/files.py --minutes 1 5 30 60   # adds files per hour and peak memory of long calls

Starts the Procfile's gunicorn with the speech pipeline (one model worker per core) and uses
the bundled two-speaker call (samples/sales-call.ogg, 30 s, its script beside it) repeated to
each length. Measures:
- real-time factor of whole-file analysis (audio seconds per wall second) and files per hour;
- the same file through the live path (a session fed as fast as the server takes it);
- WER and speaker attribution of both paths (share of script turns whose utterances carry the
  label of that turn's speaker, after mapping labels to speakers by majority);
- the speech workers' peak RSS (VmHWM) after each file, and the server's RSS;
- a real-time live session's word → final latency alone and while a 5-minute file is analysed.
Prints the figures and writes bench/results/files.json.
"""
import argparse
import io
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np
import requests
import soundfile
import sseclient

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from speechgen import RATE_HZ  # noqa: E402
from conftest import Server  # noqa: E402
from report import results_path, save  # noqa: E402

SAMPLE = ROOT / "samples" / "sales-call.ogg"
TIMEOUT = (5, 3600)
TURN = re.compile(r"^\[\s*([\d.]+)-\s*([\d.]+)\] (\w+): (.*)$")
LIVE_CHUNK_BYTES = 32000


def sample():
    """(16 kHz mono float32 samples, [(start_s, end_s, speaker, text)]) of the bundled call."""
    with av.open(str(SAMPLE)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE_HZ)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    lines = (ROOT / "samples" / "sales-call.txt").read_text().splitlines()
    turns = [(float(m[1]), float(m[2]), m[3], m[4]) for m in map(TURN.match, lines) if m]
    return samples, turns


def call_of(minutes, samples, turns):
    """The call repeated to about `minutes`, as WAV bytes, with its script shifted to match."""
    copies = max(1, round(minutes * 60 * RATE_HZ / len(samples)))
    period_s = len(samples) / RATE_HZ
    script = [(s + k * period_s, e + k * period_s, who, text)
              for k in range(copies) for s, e, who, text in turns]
    out = io.BytesIO()
    soundfile.write(out, np.tile(samples, copies), RATE_HZ, format="WAV", subtype="PCM_16")
    return out.getvalue(), script, copies * period_s


def attribution(utterances, script):
    """Share of script turns whose utterances all carry the label of that turn's speaker.

    Labels are matched to script speakers one to one, most votes first: two speakers heard
    as one voice leave one of them with no label, and its turns count as wrong.
    """
    votes = Counter()
    per_turn = []
    for start_s, end_s, who, _ in script:
        labels = [u["speaker"] for u in utterances if start_s - 0.5 <= u["t_start"] < end_s]
        per_turn.append((who, labels))
        votes.update((who, label) for label in labels)
    mapping, used = {}, set()
    for (who, label), _ in votes.most_common():
        if who not in mapping and label not in used:
            mapping[who] = label
            used.add(label)
    right = sum(1 for who, labels in per_turn if labels and all(l == mapping.get(who) for l in labels))
    return round(right / len(per_turn), 3)


def analyse_file(url, data):
    """POST /analyze; (document, wall seconds)."""
    began = time.monotonic()
    response = requests.post(url + "/analyze", files={"file": ("call.wav", data)}, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json(), time.monotonic() - began


def live_run(url, data, realtime=False):
    """A live session fed `data` (WAV) in chunks; (finals, wall seconds, word->final latencies)."""
    session = requests.post(url + "/analyze/live/start", json={"suffix": ".wav"}, timeout=TIMEOUT).json()
    stream = requests.get(url + session["events_endpoint"], stream=True, timeout=TIMEOUT)
    began = time.monotonic()
    bytes_per_s = 2 * RATE_HZ

    def upload():
        seq, offset = 0, 0
        while offset < len(data):
            chunk = data[offset:offset + LIVE_CHUNK_BYTES]
            if realtime:
                time.sleep(max(0.0, began + offset / bytes_per_s - time.monotonic()))
            reply = requests.post(url + session["chunk_endpoint"], params={"chunk_seq": seq}, data=chunk,
                                  headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT)
            if reply.status_code == 429:
                time.sleep(float(reply.headers.get("Retry-After", "1")))
                continue
            reply.raise_for_status()
            seq, offset = seq + 1, offset + len(chunk)
        requests.post(url + session["control_endpoint"], json={"action": "finalize"}, timeout=TIMEOUT)

    uploader = threading.Thread(target=upload)
    uploader.start()
    finals, latencies = [], []
    for message in sseclient.SSEClient(stream).events():
        if message.event == "final_transcript":
            final = json.loads(message.data)
            finals.append(final)
            latencies.append(time.monotonic() - began - final["t_end"])
        if message.event == "done":
            break
    stream.close()
    uploader.join()
    return finals, time.monotonic() - began, latencies


def worker_memory(url):
    """Each speech worker's peak and current RSS in MiB, and the server process's RSS."""
    health = requests.get(url + "/healthz", timeout=TIMEOUT).json()
    out = []
    for worker in health["pipeline"]["workers"]:
        status = Path(f"/proc/{worker['pid']}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out.append({"pid": worker["pid"], "peak_mib": int(fields["VmHWM"].split()[0]) // 1024,
                    "rss_mib": int(fields["VmRSS"].split()[0]) // 1024})
    return out


def wer_of(script, texts):
    return round(speechgen.wer(" ".join(t[3] for t in script), " ".join(texts)), 4)


def bench_length(url, minutes, samples, turns, with_live):
    data, script, audio_s = call_of(minutes, samples, turns)
    doc, wall_s = analyse_file(url, data)
    row = {"minutes": round(audio_s / 60, 2), "file": {
        "wall_s": round(wall_s, 1), "rtf": round(audio_s / wall_s, 2),
        "files_per_hour": round(3600 / wall_s, 1),
        "wer": wer_of(script, [u["text"] for u in doc["timeline"]]),
        "attribution": attribution(doc["timeline"], script),
        "speakers": len({u["speaker"] for u in doc["timeline"]})},
        "workers_after": worker_memory(url)}
    if with_live:
        finals, live_wall_s, _ = live_run(url, data)
        row["live"] = {"wall_s": round(live_wall_s, 1), "rtf": round(audio_s / live_wall_s, 2),
                       "wer": wer_of(script, [f["text"] for f in finals]),
                       "attribution": attribution(finals, script),
                       "speakers": len({f["speaker"] for f in finals})}
    print(json.dumps(row), flush=True)
    return row


def live_beside_file(url, samples, turns):
    """Word -> final P50/P95 of a real-time live session, alone and while a 5-minute file is analysed."""
    data, _, _ = call_of(0.5, samples, turns)
    _, _, alone = live_run(url, data, realtime=True)
    long_data, _, _ = call_of(5, samples, turns)
    busy = threading.Thread(target=analyse_file, args=(url, long_data))
    busy.start()
    time.sleep(2.0)  # the file's job is under way
    _, _, beside = live_run(url, data, realtime=True)
    busy.join()

    def figures(values):
        ordered = sorted(values)
        return {"p50_s": round(statistics.median(ordered), 3),
                "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
                "finals": len(ordered)}

    return {"alone": figures(alone), "beside_file": figures(beside)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5])
    parser.add_argument("--live-up-to", type=float, default=5, help="compare with the live path up to this length")
    args = parser.parse_args()
    samples, turns = sample()
    log = results_path("files-server.log")
    server = Server({"HARKEN_PIPELINE": "speech", "HARKEN_MAX_FILE_JOBS": "2",
                     "HARKEN_MAX_BACKLOG_S": "600", "HARKEN_ACCESS_LOG": ""}, log)
    try:
        result = {"machine": machine.describe(), "workers_idle": worker_memory(server.url),
                  "lengths": [bench_length(server.url, m, samples, turns, m <= args.live_up_to)
                              for m in args.minutes]}
        result["live_latency"] = live_beside_file(server.url, samples, turns)
        print(json.dumps(result["live_latency"]), flush=True)
    finally:
        server.stop()
    print("wrote", save("files.json", result))


if __name__ == "__main__":
    main()

"""Decoder benchmark: how long the gevent hub is held per MiB of the worst input of every format.

    .venv/bin/python bench/decode_hub.py            # every format's worst chunks, inline and off the hub
    .venv/bin/python bench/decode_hub.py --repeat 3

For each format two inputs are decoded the way a session decodes a chunk, with the default
limits (30 min of audio, 200,000 frames per chunk): the densest real encoding (an hour of
silence at the codec's lowest bit rate, cut to a 1 MiB chunk) and a framing flood (a valid
header, then 1 MiB of the smallest units the container allows). Each is decoded twice in
one gevent process while a ticker greenlet asks the hub for a turn every millisecond:

- `inline`: on the hub, as before issue 14; the hub is held for the whole decode;
- `pool`: through app/audio/offload.py's thread pool, as sessions now do.

Three figures per run: the hub's CPU time (`time.thread_time()` of the hub's thread while
the chunk is handled, less the ticker's own cost per second measured with the hub idle), the longest single wait of
the ticker beyond its 1 ms (the stall every other request on the hub would see), and the
sum of those waits (with a thread decoding, the hub queues for the GIL up to one switch
interval, 5 ms, per turn: this grows with the decode's length, and with the machine's
load, though the hub does no decoding work). Issue 14's target is < 50 ms of hub time per
MiB of the worst input (or decoding off the hub).
Results are printed and written to bench/results/decode_hub.json.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import gevent
import gevent.event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/client.py must not shadow the client package
import audiofiles  # noqa: E402  (the tests' hostile audio)
import machine  # noqa: E402
from report import save  # noqa: E402
from app.audio import Budget, DecodeLimitExceeded, UndecodableAudio, open_decoder  # noqa: E402
from app.audio.offload import DecodePool  # noqa: E402
from app.config import Settings  # noqa: E402

TICK_S = 0.001


def inputs():
    """(name, suffix, bytes) of every worst case: dense silence and framing floods per format."""
    cases = [(f"{fmt}-silence", f".{fmt}", audiofiles.worst_chunk(fmt)) for fmt in audiofiles.FORMATS]
    cases += [(f"{fmt}-flood", f".{fmt}", data) for fmt, data in audiofiles.framing_floods().items()]
    # 8-bit WAV at 8 kHz carries the most seconds per byte of the PCM formats.
    wav = audiofiles.live.tone_wav(1.0, 8000)
    header = wav[:44].replace((8000 * 2).to_bytes(4, "little"), (8000).to_bytes(4, "little"))
    cases.append(("wav-8bit", ".wav", header[:34] + (8).to_bytes(2, "little") + header[36:] + bytes(1 << 20)))
    return cases


def decode_once(suffix, data, settings):
    """What a session does with a first chunk: decode within the per-chunk budget."""
    decoder = open_decoder(suffix)
    budget = Budget(seconds=settings.max_chunk_audio_s, frames=settings.max_chunk_frames)
    try:
        return f"accepted {len(decoder.decode(data, budget)) / 16000:.0f} s"
    except DecodeLimitExceeded as exc:
        return f"refused: {exc}"
    except UndecodableAudio as exc:
        return f"invalid: {exc}"


def idle(seconds, *args):
    """Nothing but a wait in the hub, to measure the ticker's own cost."""
    gevent.sleep(seconds)


def ticker_cpu_per_s():
    """Hub CPU seconds per wall second the ticker itself uses."""
    wall, cpu, _, _, _ = measure(lambda func, *a: idle(2.0), None, None, None)
    return cpu / wall


def measure(run, suffix, data, settings):
    """(wall s, hub CPU s, hub waits s, longest stall s, outcome) of decoding `data` through `run`."""
    waits, done = [], gevent.event.Event()

    def ticker():
        last = time.perf_counter()
        while not done.is_set():
            gevent.sleep(TICK_S)
            now = time.perf_counter()
            waits.append(now - last - TICK_S)
            last = now

    tick = gevent.spawn(ticker)
    gevent.sleep(0.01)
    began, began_cpu = time.perf_counter(), time.thread_time()
    outcome = run(decode_once, suffix, data, settings)
    wall, cpu = time.perf_counter() - began, time.thread_time() - began_cpu
    done.set()
    tick.join()
    return wall, cpu, sum(w for w in waits if w > 0), max(waits, default=0.0), outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per input and mode; the worst is kept")
    args = parser.parse_args()
    settings = Settings()
    pool = DecodePool(settings.decode_threads)
    modes = {"inline": lambda func, *a: func(*a), "pool": pool.run}
    baseline = ticker_cpu_per_s()
    rows = []
    for name, suffix, data in inputs():
        mib = len(data) / (1 << 20)
        for mode, run in modes.items():
            runs = [measure(run, suffix, data, settings) for _ in range(args.repeat)]
            wall, cpu, waits, stall, outcome = max(runs, key=lambda r: r[3])
            cpu = max(0.0, cpu - baseline * wall)
            row = {"input": name, "mode": mode, "bytes": len(data), "wall_s": round(wall, 3),
                   "hub_cpu_ms_per_mib": round(1000 * cpu / mib, 1),
                   "hub_wait_ms_per_mib": round(1000 * waits / mib, 1),
                   "longest_stall_ms": round(1000 * stall, 1), "outcome": outcome[:90]}
            rows.append(row)
            print(f"{name:14} {mode:6} {len(data) / 1024:5.0f} KiB  wall {wall:6.2f} s  hub CPU "
                  f"{row['hub_cpu_ms_per_mib']:8.1f} ms/MiB  waits {row['hub_wait_ms_per_mib']:8.1f} ms/MiB  "
                  f"stall {row['longest_stall_ms']:7.1f} ms  {outcome[:50]}", flush=True)
    pooled = [r for r in rows if r["mode"] == "pool"]
    summary = {"worst_pool_hub_cpu_ms_per_mib": max(r["hub_cpu_ms_per_mib"] for r in pooled),
               "worst_pool_stall_ms": max(r["longest_stall_ms"] for r in pooled),
               "worst_inline_stall_ms": max(r["longest_stall_ms"] for r in rows if r["mode"] == "inline"),
               "target_hub_ms_per_mib": 50}
    print(json.dumps(summary, indent=2))
    out = {"machine": machine.describe(), "ticker_cpu_per_s": round(baseline, 4),
           "load_average": list(os.getloadavg()), "limits": {"max_chunk_audio_s": settings.max_chunk_audio_s,
                                                     "max_chunk_frames": settings.max_chunk_frames,
                                                     "decode_threads": settings.decode_threads},
           "summary": summary, "rows": rows, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save("decode_hub.json", out)


if __name__ == "__main__":
    main()

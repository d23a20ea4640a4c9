"""Where the time between an utterance's end and its final goes, on real speech, one worker core.

    .venv/bin/python bench/final_latency.py                      # tuning split (the default)
    .venv/bin/python bench/final_latency.py --set sentence_end_silence_s=0.1 --set end_silence_s=0.3
    .venv/bin/python bench/final_latency.py --fixed-cost --conditions clean,phone,noise --set pre_roll_s=0.2

The real recordings of bench/data/real (the sessions of bench/real_speech.py) go through one
in-process `SessionRecognizer` as a worker would serve them, on a virtual clock: a 100 ms
chunk arrives every 100 ms of audio (as bench/speech.py's LiveRun sends them), the worker feeds
every chunk that has arrived before it decodes a partial, and each call takes the CPU time it
really took (process time, so a loaded machine slows the run but not the figures much;
--slowdown N makes every call N times longer, as on a core shared with other work). For
each final that closes an utterance (as bench/speech.py counts them: a gap of at least
ENDPOINT_GAP_S follows) the delay from the arrival of the chunk holding its last word is cut
into:
- vad: until the audio that decided it had arrived (the pause that starts the sentence-end
  decode, or the endpoint silence); of which voice_after_word is how long the VAD still
  heard voice after the final's last word ended (Whisper's word time);
- wait: until the worker was free to start the decode that made the final (a partial decode
  of the same session was under way);
- decode: the call that emitted the final (0 when the endpoint took a reading decoded during
  the pause).
Also word -> first partial and word -> final, the WER of the finals (each session's finals
are in the JSON) and their false sentence ends (bench/real_speech.py's, against the offline
greedy reading, cached in bench/results/ as real_speech caches it). With --fixed-cost every
call takes a fixed time instead of its CPU time: the run no longer depends on the machine or its load, so two settings compare word for word (CPU
time varies from run to run, and so do the commit points and a few words with it). This is one session
alone on a core: the live bench (bench/real_speech.py) adds the other sessions and the load.
Writes bench/results/final_latency.json.
"""
import argparse
import dataclasses
import json
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from real_speech import (SESSIONS, cached_readings, condition, false_sentence_ends, manifest,  # noqa: E402
                         offline_readings, session_audio)
from report import save  # noqa: E402
from speech import CHUNK_S, ENDPOINT_GAP_S, offline_model, pct  # noqa: E402

CHUNK = int(CHUNK_S * 16000)


# --fixed-cost: what each call takes on the virtual clock instead of its CPU time.
FIXED_COST_S = {"feed": 0.005, "partial": 0.25, "finish": 0.25}


def simulate(recognizer, audio, slowdown=1.0, fixed_cost=False):
    """Feed `audio` on the virtual clock, each call taking `slowdown` times its CPU time
    (or, with `fixed_cost`, its FIXED_COST_S: the run is then the same on every machine and
    every run, so two settings compare word for word); (finals with their timing, partial
    arrival times)."""
    arrivals = [k * CHUNK_S for k in range(-(-len(audio) // CHUNK))]  # LiveRun posts chunk k at k * CHUNK_S
    now, fed, finals, partials = 0.0, 0, [], []
    pause_known = None  # when the audio that made the current pause a sentence-end pause had arrived

    def call(kind, fn):
        nonlocal now
        started, cpu = now, time.process_time()
        events = fn()
        now += FIXED_COST_S[kind] if fixed_cost else (time.process_time() - cpu) * slowdown
        for event in events:
            name = type(event).__name__
            if name == "FinalTranscript":
                finals.append({"final": event, "kind": kind, "call_start": started, "emitted": now,
                               "pause_known": pause_known, "chunk_fed": arrivals[fed - 1],
                               "voice_end": recognizer._vad.speech_end / 16000})
            elif name == "PartialTranscript":
                partials.append((now, event))
        return events

    while fed < len(arrivals) or recognizer.wants_partial():
        if fed < len(arrivals) and arrivals[fed] <= now:
            while fed < len(arrivals) and arrivals[fed] <= now:
                fed += 1
                call("feed", lambda: recognizer.feed(audio[(fed - 1) * CHUNK:fed * CHUNK]))
                # Private state read for this diagnosis only: when the sentence-end pause began.
                pausing = recognizer._vad.in_speech and recognizer._vad.pausing()
                if pausing and pause_known is None:
                    pause_known = arrivals[fed - 1]
                elif not pausing:
                    pause_known = None
        elif recognizer.wants_partial():
            call("partial", recognizer.partial)
        elif fed < len(arrivals):
            now = arrivals[fed]
    call("finish", recognizer.finish)
    return finals, partials


def breakdown(finals):
    """Per utterance-closing final: total, vad, wait and decode delays."""
    out = []
    for i, entry in enumerate(finals):
        final = entry["final"]
        following = finals[i + 1]["final"].t_start if i + 1 < len(finals) else float("inf")
        if following - final.t_end < ENDPOINT_GAP_S or entry["kind"] == "finish":
            continue
        last_chunk = int(final.t_end / CHUNK_S) * CHUNK_S
        if entry["kind"] == "partial":  # a sentence-end reading in a pause
            decided = entry["pause_known"] if entry["pause_known"] is not None else entry["call_start"]
        else:  # the endpoint (or the maximum length), found while feeding a chunk
            decided = entry["chunk_fed"]
        decided = max(decided, last_chunk)
        out.append({"total": entry["emitted"] - last_chunk, "vad": decided - last_chunk,
                    "voice_after_word": entry["voice_end"] - final.t_end,
                    "wait": max(0.0, entry["call_start"] - decided), "decode": entry["emitted"] - entry["call_start"],
                    "kind": "sentence end in a pause" if entry["kind"] == "partial" else "endpoint"})
    return out


def word_latencies(finals, partials):
    """(word -> first partial or None, word -> final) per final word, on the virtual clock."""
    seen = {}
    for at, partial in partials:
        seen.setdefault(partial.utterance_id, []).append((at, speechgen.normalise(partial.text).split()))
    out = []
    for entry in finals:
        final = entry["final"]
        for k, word in enumerate(final.words):
            first = next((at for at, words in seen.get(final.utterance_id, [])
                          if k < len(words) and words[k] == speechgen.normalise(word.word)), None)
            out.append((None if first is None else first - word.end, entry["emitted"] - word.end))
    return out


def run_condition(recognizer, sessions, utterances, condition_name, slowdown, fixed_cost, offline):
    """Every session played in `condition_name` through a fresh recognizer(): WER, finals, latencies,
    and sentence ends against `offline(key, audio)`, the offline greedy reading."""
    rows, words, errors, ref_words, per_session = [], [], 0.0, 0, {}
    sentence_ends = false_ends = 0

    def stats(values):
        return {"p50": pct(values, 50), "p95": pct(values, 95), "mean": round(float(np.mean(values)), 3),
                "n": len(values)} if values else None

    for seed, (name, ids) in enumerate(sessions):
        audio = condition(session_audio(ids, utterances), condition_name, seed)
        finals, partials = simulate(recognizer(), audio, slowdown, fixed_cost)
        rows += breakdown(finals)
        session_words = word_latencies(finals, partials)
        words += session_words
        reference = " ".join(utterances[u]["reference"] for u in ids)
        n = len(speechgen.normalise(reference).split())
        text = " ".join(e["final"].text for e in finals)
        session_wer = speechgen.wer(reference, text)
        ends, false = false_sentence_ends(text, offline((condition_name, name), audio))
        sentence_ends, false_ends = sentence_ends + ends, false_ends + false
        errors, ref_words = errors + session_wer * n, ref_words + n
        # Each session's own word -> final, to tell which material sets the pooled P95.
        per_session[name] = {"wer": round(session_wer, 4), "words": n,
                             "word_to_final_s": stats([f for _, f in session_words]),
                             "sentence_ends": ends, "false_sentence_ends": false,
                             "finals": [e["final"].text for e in finals]}
        print(f"{name}: WER {session_wer:.3f}, {len(finals)} finals, {len(partials)} partials, "
              f"{false} of {ends} sentence ends false", flush=True)

    return {"wer": round(errors / ref_words, 4), "words": ref_words,
            "sentence_ends": sentence_ends, "false_sentence_ends": false_ends,
            "utterance_end_to_final_s": {part: stats([r[part] for r in rows])
                                         for part in ("total", "vad", "voice_after_word", "wait", "decode")},
            "by_kind": {kind: {"n": sum(1 for r in rows if r["kind"] == kind),
                               "total_p50": pct([r["total"] for r in rows if r["kind"] == kind], 50)}
                        for kind in ("sentence end in a pause", "endpoint")},
            "word_to_first_partial_s": stats([p for p, _ in words if p is not None]),
            "words_first_seen_in_final": sum(1 for p, _ in words if p is None),
            "word_to_final_s": stats([f for _, f in words]),
            "sessions": per_session}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="an EndpointSettings field to change")
    parser.add_argument("--slowdown", type=float, default=1.0,
                        help="every call takes this many times its CPU time (a loaded or slower core)")
    parser.add_argument("--fixed-cost", action="store_true",
                        help="each call takes a fixed time (FIXED_COST_S), not its CPU time: "
                             "deterministic, for comparing settings (its latencies are not the machine's)")
    parser.add_argument("--conditions", default="clean",
                        help="comma-separated: clean, phone, noise (as bench/real_speech.py plays them)")
    parser.add_argument("--out", default="final_latency.json")
    args = parser.parse_args()

    from app.config import Settings
    from app.speech.asr import WhisperRecognizer
    from app.speech.diarization import OnlineSpeakers, SpeakerEncoder
    from app.speech.models import whisper_model
    from app.speech.endpointing import EndpointSettings
    from app.speech.settings import endpoint_settings
    from app.speech.streaming import SessionRecognizer
    fields = {f.name: f.type for f in dataclasses.fields(EndpointSettings)}
    changes = {}
    for item in args.set:
        name, value = item.split("=", 1)
        changes[name] = (int if fields[name] in (int, "int") else float)(value)
    config = Settings.from_env()
    settings = dataclasses.replace(endpoint_settings(config), **changes)
    whisper = WhisperRecognizer(whisper_model(config))
    encoder = SpeakerEncoder()
    utterances = manifest()
    sessions = [(name, ids) for name, split, ids in SESSIONS if split == args.split]
    report = {"machine": machine.describe(), "split": args.split, "slowdown": args.slowdown,
              "fixed_cost": FIXED_COST_S if args.fixed_cost else None,
              "settings": dataclasses.asdict(settings), "conditions": {}}

    reader = lru_cache(maxsize=1)(offline_model)  # loaded only if a reading is not cached

    def offline(key, audio):
        return cached_readings("offline", {key: audio}, lambda samples: offline_readings(reader(), samples))[key][0]

    def recognizer():
        return SessionRecognizer(whisper, OnlineSpeakers(encoder, config.speaker_similarity), settings=settings)

    for condition_name in args.conditions.split(","):
        print(f"-- {condition_name}", flush=True)
        report["conditions"][condition_name] = run_condition(
            recognizer, sessions, utterances, condition_name, args.slowdown, args.fixed_cost, offline)
    print(json.dumps({c: {k: v for k, v in r.items() if k != "sessions"}
                      for c, r in report["conditions"].items()}, indent=1))
    save(args.out, report, indent=1)


if __name__ == "__main__":
    main()

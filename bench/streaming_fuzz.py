"""Streaming fuzz: does the recognizer ever emit a word twice or lose one, whatever the load?

    .venv/bin/python bench/streaming_fuzz.py                 # 24 schedules per set
    .venv/bin/python bench/streaming_fuzz.py --runs 60 --sets browser

The live path's output depends on when its decodes run: a loaded worker decodes partials
less often, so LocalAgreement compares longer readings and cuts elsewhere. This drives one
`SessionRecognizer` in-process with the real models over generated speech, under random
schedules (chunk sizes, the share of due partials actually decoded, backlogs fed in one
go), and checks each run's finals against the reference: WER, and words emitted twice
(a 4-gram the finals hold more often than the reference does). Prints the figures and
writes bench/results/streaming_fuzz.json; the worst runs' transcripts are kept there.
"""
import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from speechgen import RATE_HZ  # noqa: E402
from app.audio import open_decoder  # noqa: E402
from app.config import Settings  # noqa: E402
from app.speech.asr import WhisperRecognizer  # noqa: E402
from app.speech.diarization import OnlineSpeakers, SpeakerEncoder  # noqa: E402
from app.speech.models import whisper_model  # noqa: E402
from app.speech.settings import endpoint_settings  # noqa: E402
from app.speech.streaming import SessionRecognizer  # noqa: E402
from report import results_path, save  # noqa: E402

SETS = {
    # The browser test's microphone passage, where a replayed clause was seen under load.
    "browser": ([("A", "Thanks for joining the call today. I wanted to walk you through the new pricing."),
                 ("A", "Honestly, the price is too high for our budget this quarter."),
                 ("A", "Could you send me a proposal by Friday? Then we can sign the contract next week.")],
                {"A": {"voice": "joe"}}, 1.2),
    "espeak": ([(str(i), text) for i, text in enumerate([
        "Thank you for joining the call today, I would like to review the project plan.",
        "The first milestone was delivered on time and the customer was very happy with it.",
        "We still need to agree on the budget for the second phase before the end of the month.",
        "Could you send me the updated schedule so that I can share it with the team?"])],
        {str(i): {"voice": "espeak"} for i in range(4)}, 0.8),
    "varied": ([(str(i), text) for i, text in enumerate([
        "Thank you for joining the call today, I would like to review the project plan.",
        "The first milestone was delivered on time and the customer was very happy with it.",
        "I think the biggest risk is the integration with the old billing system.",
        "Let us meet again next week and decide who will own the testing work."])],
        {"0": {"voice": "joe", "pitch_cents": 300, "tempo": 1.1}, "1": {"voice": "joe", "pitch_cents": -250},
         "2": {"voice": "joe", "tempo": 0.85}, "3": {"voice": "joe", "pitch_cents": -400, "gain_db": -4}}, 0.8),
}


def heard_as_webm(wav):
    """The samples of `wav` encoded as MediaRecorder's WebM/Opus, decoded by the server's own decoder."""
    decoder = open_decoder(".webm")
    samples = decoder.decode(speechgen.encode(wav, "webm").read_bytes())
    return np.concatenate([samples, decoder.flush()])


def fresh_recording(turns, gap_s, take, opus=False):
    """The turns in Piper's rendering number `take` (each take sounds different), joined, 16 kHz."""
    voices = {speaker: {"voice": "joe", "take": take} for speaker, _ in turns}
    wav, _ = speechgen.dialogue(turns, voices=voices, gap_s=gap_s)
    return heard_as_webm(wav) if opus else speechgen.pcm_of(wav)[0].astype(np.float32)


def schedule(rng):
    """One random load pattern: chunk length, share of due partials decoded, chance of a backlog."""
    return {"chunk_s": rng.choice([0.1, 0.25, 0.5]), "decode_share": rng.choice([1.0, 0.7, 0.4, 0.2, 0.1]),
            "backlog_chance": rng.choice([0.0, 0.1, 0.3]), "backlog_s": rng.choice([0.5, 2.0, 4.0])}


def run_once(asr, encoder, samples, plan, rng):
    """Feed `samples` under `plan`; the finals' texts in order."""
    defaults = Settings()
    recognizer = SessionRecognizer(asr, OnlineSpeakers(encoder, defaults.speaker_similarity),
                                   settings=endpoint_settings(defaults))
    step = int(plan["chunk_s"] * RATE_HZ)
    events, pos = [], 0
    while pos < len(samples):
        # A backlog: several chunks arrive while the worker was busy, fed before any decode.
        n = max(1, round(rng.uniform(0, plan["backlog_s"]) / plan["chunk_s"])) \
            if rng.random() < plan["backlog_chance"] else 1
        for _ in range(n):
            events += recognizer.feed(samples[pos:pos + step])
            pos += step
        if recognizer.wants_partial() and rng.random() < plan["decode_share"]:
            events += recognizer.partial()
    events += recognizer.finish()
    return [e.text for e in events if type(e).__name__ == "FinalTranscript"]


def repeated_words(reference, hypothesis, n=4):
    """How many of the reference's n-grams the hypothesis holds more often than it does: words said twice."""
    ref = speechgen.normalise(reference).split()
    hyp = speechgen.normalise(hypothesis).split()
    ref_counts = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
    hyp_counts = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
    return sum(max(0, c - ref_counts[g]) for g, c in hyp_counts.items() if ref_counts[g])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--audio", help="replay a kept recording (with --run, the schedule it failed on)")
    parser.add_argument("--run", type=int, help="only this run's schedule")
    parser.add_argument("--opus", action="store_true", help="pass fresh recordings through WebM/Opus")
    parser.add_argument("--fresh", action="store_true",
                        help="a different Piper take of the sets for every run instead of one recording")
    args = parser.parse_args()
    settings = Settings.from_env()
    asr = WhisperRecognizer(whisper_model(settings))
    encoder = SpeakerEncoder()
    report = {"machine": machine.describe(),
              "runs_per_set": args.runs, "fresh_recordings": args.fresh, "opus": args.opus, "sets": {}}
    for name in args.sets:
        turns, voices, gap = SETS[name]
        wav, _ = speechgen.dialogue(turns, voices=voices, gap_s=gap)
        samples, _ = speechgen.pcm_of(wav)
        fresh = args.fresh and all(v == {"voice": "joe"} for v in voices.values())
        reference = " ".join(text for _, text in turns)
        rng = random.Random(f"{args.seed}-{name}")
        runs = []
        started = time.monotonic()
        for i in range(args.runs):
            plan = schedule(rng)
            if args.run is not None and i != args.run:
                continue
            if args.audio:
                audio = soundfile.read(args.audio, dtype="float32")[0]
            else:
                take = 1000 * args.seed + i + 1  # take 0 is the one the tests hear
                audio = fresh_recording(turns, gap, take, args.opus) if fresh else samples.astype(np.float32)
            finals = run_once(asr, encoder, audio, plan, random.Random(f"{name}-{i}"))
            hypothesis = " ".join(finals)
            runs.append({"plan": plan, "wer": round(speechgen.wer(reference, hypothesis), 4),
                         "repeated_4grams": repeated_words(reference, hypothesis), "finals": finals})
            if fresh and (runs[-1]["repeated_4grams"] or runs[-1]["wer"] > 0.1):
                # Keep the recording of a bad run, so it can be replayed: --audio FILE --run i.
                runs[-1]["audio"] = str(results_path(f"fuzz-{name}-{args.seed}-{i}.wav"))
                soundfile.write(runs[-1]["audio"], audio, RATE_HZ, subtype="PCM_16")
            print(f"{name} run {i:2d} {plan} WER {runs[-1]['wer']:.3f} repeats {runs[-1]['repeated_4grams']}",
                  flush=True)
        wers = [r["wer"] for r in runs]
        summary = {"mean_wer": round(float(np.mean(wers)), 4), "max_wer": max(wers),
                   "runs_with_repeats": sum(r["repeated_4grams"] > 0 for r in runs),
                   "seconds": round(time.monotonic() - started, 1),
                   "worst": sorted(runs, key=lambda r: (r["repeated_4grams"], r["wer"]))[-3:]}
        report["sets"][name] = summary
        print(f"== {name}: mean WER {summary['mean_wer']:.3f}, max {summary['max_wer']:.3f}, "
              f"runs with repeated words {summary['runs_with_repeats']}/{args.runs}")
    save("streaming_fuzz.json", report)


if __name__ == "__main__":
    main()

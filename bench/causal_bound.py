"""How well can any live decoder read the bench sets? The offline WER against a causal bound.

    .venv/bin/python bench/causal_bound.py            # about 15 minutes on 2 cores
    .venv/bin/python bench/causal_bound.py --real     # the real recordings of bench/data/real

The live target of issue 4 is WER <= 1.25 x the offline whole-file WER. The offline
reference (faster-whisper's `transcribe`, beam 5) hears up to 30 s around every word, the
words after it included. A live decoder that must finalise a sentence soon after it ends
hears only what came before. This measures what such a decoder could reach with no limit on
compute: for each sentence of the six sets of bench/speech.py, once it has ended,
`transcribe` (the same call as the reference, timestamps, beam 5) reads the last 15 s or
25 s of audio again, and the sentence's words are those centred inside it. A decode of a
window that long took 1.1-1.4 s on one core here, about twice the live target for a final,
so this is a bound, not a design. With --real the sets are the real-speech sessions of
bench/real_speech.py (clean), each utterance a sentence, tuning and held-out reported apart,
beside both whole-file readings (greedy and beam 5) that issue 16's targets name.
Prints the figures and writes bench/results/causal_bound.json (causal_bound_real.json).
"""
import argparse
import json
import sys
from collections import namedtuple
from pathlib import Path

import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from speechgen import RATE_HZ  # noqa: E402
from report import save  # noqa: E402
from speech import build_sets, offline_model, offline_transcripts  # noqa: E402

PAST_S = (15, 25)
# Audio kept before a window's first sentence and after the sentence being read.
_LEAD_S = 0.2
_TRAIL_S = 0.25
# A word belongs to the sentence when its centre is no earlier than this before the sentence
# starts (sentences are 0.7-0.8 s apart; Whisper's word times are approximate).
_BOUNDARY_SLACK_S = 0.3


def causal_reading(whisper, audio, spans, index, past_s):
    """The words of sentence `index`, read once it ended from at most `past_s` of audio before."""
    span = spans[index]
    first = index
    while first > 0 and span.end_s - spans[first - 1].start_s <= past_s:
        first -= 1
    start_s = max(0.0, spans[first].start_s - _LEAD_S)
    window = audio[int(start_s * RATE_HZ):int((span.end_s + _TRAIL_S) * RATE_HZ)]
    segments, _ = whisper.transcribe(window, language="en", vad_filter=False, beam_size=5, word_timestamps=True)
    begins_s = span.start_s - start_s - _BOUNDARY_SLACK_S
    return " ".join(w.word.strip() for s in segments for w in s.words if (w.start + w.end) / 2 >= begins_s)


Span = namedtuple("Span", "start_s end_s")


def real_sets():
    """name -> (audio, reference, utterance spans, split) of bench/real_speech.py's sessions."""
    from real_speech import PAUSE_S, SESSIONS, manifest, session_audio
    utterances = manifest()
    out = {}
    for name, split, ids in SESSIONS:
        spans, at = [], 0.0
        for uid in ids:
            duration = soundfile.info(str(ROOT / "bench" / "data" / "real" / utterances[uid]["audio"])).duration
            spans.append(Span(at, at + duration))
            at += duration + PAUSE_S
        out[name] = (session_audio(ids, utterances), " ".join(utterances[u]["reference"] for u in ids), spans, split)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="the real recordings instead of the synthetic sets")
    args = parser.parse_args()
    whisper = offline_model()
    if args.real:
        from real_speech import cached_readings, offline_readings
        sets = real_sets()
        readings = cached_readings("offline", {("clean", n): a for n, (a, _, _, _) in sets.items()},
                                   lambda samples: offline_readings(whisper, samples))
        offline = {name: {"offline_greedy": readings[("clean", name)][0],
                          "offline_beam5": readings[("clean", name)][1]} for name in sets}
    else:
        built = build_sets(all_spans=True)
        sets = {name: (soundfile.read(path, dtype="float32")[0], reference, spans,
                       "heldout" if name.startswith("heldout_") else "tuning")
                for name, (path, reference, spans) in built.items()}
        offline = {name: {"offline_whole_file": text} for name, text in offline_transcripts(built, whisper).items()}
    baselines = list(next(iter(offline.values())))
    keys = [*baselines, *(f"causal_past_{p}s" for p in PAST_S)]
    errors = {split: dict.fromkeys(keys, 0.0) for split in ("all", "tuning", "heldout")}
    words = dict.fromkeys(errors, 0)
    per_set = {}
    for name, (audio, reference, spans, split) in sets.items():
        n = len(speechgen.normalise(reference).split())
        readings = dict(offline[name])
        for past_s in PAST_S:
            readings[f"causal_past_{past_s}s"] = " ".join(
                causal_reading(whisper, audio, spans, i, past_s) for i in range(len(spans)))
        per_set[name] = {key: round(speechgen.wer(reference, text), 4) for key, text in readings.items()}
        for group in ("all", split):
            words[group] += n
            for key, wer in per_set[name].items():
                errors[group][key] += wer * n
        print(name, split, per_set[name], flush=True)
    pooled = {group: {key: round(count / words[group], 4) for key, count in errors[group].items()}
              for group in errors if words[group]}
    report = {"machine": machine.describe(), "sets": "real" if args.real else "synthetic", "words": words,
              "pooled": pooled["all"], "pooled_by_split": pooled,
              "ratio_to": {base: {group: {key: round(value / p[base], 2) if p[base] else None
                                          for key, value in p.items()} for group, p in pooled.items()}
                           for base in baselines},
              "per_set": per_set}
    print(json.dumps(report, indent=2))
    save("causal_bound_real.json" if args.real else "causal_bound.json", report)


if __name__ == "__main__":
    main()

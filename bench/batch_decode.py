"""Would batching the decodes of concurrent sessions into one CTranslate2 call raise capacity?

    .venv/bin/python bench/batch_decode.py          # about 2 minutes on one core

Issue 16 names this as the first thing to try. When B sessions of one worker need a decode at
the same moment, the worker can run them one after another, or as one batch: one `encode` of
B windows and one `generate` with B prompts. A batch costs less CPU than B single calls (the
decoder's matrix products are wider), but every item of the batch is ready only when the
whole batch is, so the first sessions wait longer than they would have.

For each window length the live path uses (the 3 s floor of partials and the 10 s window of
finals), greedy and beam 5, and B = 1..4 tuning-split utterances of bench/data/real, one
CPU thread as a worker runs: the CPU of B single calls against one batch, and the mean time
until an item's reading is ready (one after another: the k-th waits for the k before it;
batched: all wait for the batch). Each figure is the median of three repetitions.
Writes bench/results/batch_decode.json.
"""
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import machine  # noqa: E402
from real_speech import manifest, session_audio  # noqa: E402
from report import save  # noqa: E402

from app.config import Settings  # noqa: E402
from app.speech.asr import WhisperRecognizer  # noqa: E402
from app.speech.models import whisper_model  # noqa: E402

WINDOWS_S = (3, 10)
BEAMS = (1, 5)
BATCHES = (1, 2, 3, 4)
REPEATS = 3
MAX_NEW_TOKENS = 80


class Decoder:
    """The encode + generate of `WhisperRecognizer.recognize`, for one window or a batch of them."""

    def __init__(self):
        from faster_whisper.transcribe import get_suppressed_tokens
        settings = Settings.from_env()
        recognizer = WhisperRecognizer(whisper_model(settings))
        self._whisper = recognizer._whisper
        self._tokenizer = recognizer._tokenizer("en")
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self._sot = self._whisper.get_prompt(self._tokenizer, [], without_timestamps=True)

    def features(self, audio, window_s):
        from faster_whisper.audio import pad_or_trim
        return pad_or_trim(self._whisper.feature_extractor(audio, padding=0), window_s * self._whisper.frames_per_second)

    def cpu_seconds(self, features, beam_size):
        """CPU time of one encode + generate over the stacked `features`."""
        started = time.process_time()
        encoded = self._whisper.encode(np.stack(features))
        self._whisper.model.generate(encoded, [self._sot] * len(features), beam_size=beam_size,
                                     max_length=len(self._sot) + MAX_NEW_TOKENS, suppress_blank=True,
                                     suppress_tokens=self._suppress, no_repeat_ngram_size=3)
        return time.process_time() - started


def compare(decoder, clips, window_s, beam_size):
    """One after another against one batch, for the clips in `clips`: CPU and mean time to a reading."""
    features = [decoder.features(clip, window_s) for clip in clips]
    decoder.cpu_seconds(features, beam_size)  # warm the kernels for this shape
    singles, batched = [], []
    for _ in range(REPEATS):
        singles.append([decoder.cpu_seconds([f], beam_size) for f in features])
        batched.append(decoder.cpu_seconds(features, beam_size))
    single = [statistics.median(run[k] for run in singles) for k in range(len(features))]
    batch = statistics.median(batched)
    ready_one_by_one = statistics.mean(np.cumsum(single))
    return {"sessions": len(clips), "cpu_one_by_one_s": round(sum(single), 3), "cpu_batched_s": round(batch, 3),
            "cpu_ratio": round(batch / sum(single), 2), "mean_ready_one_by_one_s": round(ready_one_by_one, 3),
            "mean_ready_batched_s": round(batch, 3)}


def main():
    decoder = Decoder()
    utterances = manifest()
    tuning = [u for u in sorted(utterances) if utterances[u]["split"] == "tuning"][:max(BATCHES)]
    clips = [session_audio([u], utterances) for u in tuning]
    rows = []
    for window_s in WINDOWS_S:
        for beam_size in BEAMS:
            for batch in BATCHES:
                cut = [clip[:int((window_s - 1) * 16000)] for clip in clips[:batch]]
                row = {"window_s": window_s, "beam_size": beam_size, **compare(decoder, cut, window_s, beam_size)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    report = {"machine": machine.describe(), "utterances": tuning, "rows": rows}
    save("batch_decode.json", report)


if __name__ == "__main__":
    main()

"""The LocalAgreement-2 anchor: whisper_streaming's commit policy as a small reference decoder.

Macháček et al., "Turning Whisper into Real-Time Transcription System" (2023): every
`STEP_S` of new audio, the buffer (the audio since the last trim) is decoded again with the
committed text as prompt; the longest common prefix of this hypothesis and the previous one,
past what is already committed, is committed. The buffer is trimmed behind the last
committed word once it is longer than `TRIM_S`. This runs in its computation-unaware mode:
the audio clock stops while a decode runs, so its latencies are the policy's floor, what it
would reach on an infinitely fast machine. It decodes with the service's own Whisper
(`app.speech.asr.WhisperRecognizer`, beam 5, the same model), so only the policy differs.
"""
import functools
import re

from app.audio import TARGET_RATE_HZ as RATE_HZ
from app.speech.asr import WhisperRecognizer

STEP_S = 1.0
TRIM_S = 15.0
PROMPT_CHARS = 200
# whisper_streaming drops hypothesis words that start before the last committed word's end,
# give or take this, and up to this many leading words that repeat the committed tail.
OVERLAP_SLACK_S = 0.1
OVERLAP_MAX_WORDS = 5


def _norm(text):
    return re.sub(r"[^\w']+", "", text.lower())


@functools.lru_cache(maxsize=1)
def _recognizer():
    from app.config import Settings
    from app.speech.models import whisper_model
    return WhisperRecognizer(whisper_model(Settings.from_env()))


def transcribe(audio):
    """{'text', 'tokens', 'word_to_final_s'} of `audio` read by LocalAgreement-2 (see the docstring).

    `word_to_final_s` holds, per committed word, the audio time at its commit minus its end.
    """
    recognizer = _recognizer()
    committed = []  # (word, start_s, end_s, committed at audio time s)
    previous = []
    buffer_start = 0
    step = int(STEP_S * RATE_HZ)
    ends = list(range(step, len(audio), step)) + [len(audio)]
    for now in ends:
        buffer = audio[buffer_start:now]
        prompt = " ".join(w for w, s, _, _ in committed if s < buffer_start / RATE_HZ)[-PROMPT_CHARS:]
        offset = buffer_start / RATE_HZ
        hypothesis = recognizer.recognize(buffer, "en", prompt, "", beam_size=5)
        last_end = committed[-1][2] if committed else 0.0
        words = [(w.text.strip(), w.start + offset, w.end + offset) for w in hypothesis.words
                 if w.start + offset > last_end - OVERLAP_SLACK_S and _norm(w.text)]
        tail = [_norm(w) for w, _, _, _ in committed[-OVERLAP_MAX_WORDS:]]
        for k in range(min(len(tail), len(words), OVERLAP_MAX_WORDS), 0, -1):
            if tail[-k:] == [_norm(w) for w, _, _ in words[:k]]:
                words = words[k:]
                break
        agreed = 0
        while agreed < min(len(previous), len(words)) and _norm(previous[agreed][0]) == _norm(words[agreed][0]):
            agreed += 1
        committed += [(w, s, e, now / RATE_HZ) for w, s, e in words[:agreed]]
        previous = words[agreed:]
        if (now - buffer_start) / RATE_HZ > TRIM_S and committed:
            buffer_start = max(buffer_start, int(committed[-1][2] * RATE_HZ))
    end_s = len(audio) / RATE_HZ
    committed += [(w, s, e, end_s) for w, s, e in previous]  # the stream ended: the rest is final
    return {"text": " ".join(w for w, _, _, _ in committed), "tokens": [w for w, _, _, _ in committed],
            "word_to_final_s": [round(at - e, 3) for _, _, e, at in committed]}


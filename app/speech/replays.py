"""Committed words a decode reads again: told apart from words a person says again.

Decoding behind a forced prefix of committed words, with older ones as the prompt, Whisper
sometimes reads committed text once more, spelled a little differently ("thru" for
"through"): at the start of a decode, continuing into what was just emitted, or as a loop
over the trailing silence at its end. Those words must not be emitted twice. But people
repeat themselves too ("hello? hello?", a question asked again, a clause that starts with
words of the last sentence), and losing what was said is worse than a doubled run. The
evidence that tells them apart is the audio: a run is dropped only when the voice log holds
too little voice under its time span for its words to have been said (docs/speech.md,
"Replays", has the cases this was measured on).
"""
import functools
from collections import deque
from difflib import SequenceMatcher

from ..audio import TARGET_RATE_HZ as RATE_HZ
from .words import norm

# How many of the session's last emitted words a decode is compared with.
HISTORY_WORDS = 40
# Leading words that continue into the emitted tail are a candidate from this many on; a
# leading or trailing run that repeats any run of the history, from this many on.
_MIN_AT_TAIL = 3
_MIN_ANYWHERE = 4
# Voiced audio a run needs under its span, per word, to count as said. People say 2-4 words
# a second; a replayed run sits squeezed against the cut or over the trailing silence.
VOICED_S_PER_WORD = 0.12
# How far back the voice log reaches.
VOICE_LOG_S = 60.0
# How alike two spellings of a word ("thru", "through") and two readings of a run must be.
_SAME_WORD_SIMILARITY = 0.7
_SAME_RUN_SIMILARITY = 0.85


class VoiceLog:
    """The VAD's voiced/unvoiced decision for every frame of the last `VOICE_LOG_S`, in session samples."""

    def __init__(self, keep_s=VOICE_LOG_S):
        self._keep = keep_s * RATE_HZ
        self._frames = deque()  # (first sample, samples, voiced)

    def add(self, first, samples, voiced):
        self._frames.append((first, samples, voiced))
        while self._frames and self._frames[0][0] < first - self._keep:
            self._frames.popleft()

    def voiced_samples(self, start_s, end_s):
        """Voiced samples between two session times."""
        start, end = int(start_s * RATE_HZ), int(end_s * RATE_HZ)
        return sum(max(0, min(end, first + n) - max(start, first))
                   for first, n, voice in self._frames if voice and first < end and first + n > start)

    def spoken(self, run):
        """True when the audio under the words `run` holds voice enough for them to have been said."""
        return self.voiced_samples(run[0].start, run[-1].end) >= VOICED_S_PER_WORD * len(run) * RATE_HZ


def drop_echo(words, spoken):
    """Drop a tail that repeats the hypothesis's own first words (Whisper restarting the sentence)
    unless `spoken(tail)` says the voice under it said them again."""
    norms = [norm(w.word) for w in words]
    for k in range(len(words) // 2, 1, -1):
        if norms[-k:] == norms[:k] and not spoken(words[-k:]):
            return words[:-k]
    return words


def drop_replays(said, words, spoken):
    """`words` without a leading or trailing run read again from `said`, the session's last
    emitted words (normalised), unless `spoken(run)` finds the voice to have said it."""
    norms = [norm(w.word) for w in words]
    lead = 0
    for k in range(min(len(norms), len(said)), _MIN_AT_TAIL - 1, -1):
        if _same_run(said[-k:], norms[:k]) or (k >= _MIN_ANYWHERE and _inside(norms[:k], said)):
            lead = 0 if spoken(words[:k]) else k
            break
    for j in range(lead, len(norms) - _MIN_ANYWHERE + 1):
        if _inside(norms[j:], said + norms[lead:j]) and not spoken(words[j:]):
            return words[lead:j]
    return words[lead:]


def _inside(run, history):
    """True when `run` nearly matches some stretch of `history`, give or take a word."""
    return any(_same_run(history[i:i + n], run)
               for n in (len(run) - 1, len(run), len(run) + 1) for i in range(len(history) - n + 1))


def _same_run(a, b):
    """Two word runs that say the same: same first and last word, text 85 % alike.

    Compared as text, so a re-reading that splits or joins words ("account aim" and
    "accounting") still matches.
    """
    if not a or not b or not (_same_word(a[0], b[0]) and _same_word(a[-1], b[-1])):
        return False
    return SequenceMatcher(None, " ".join(a), " ".join(b)).ratio() >= _SAME_RUN_SIMILARITY


@functools.lru_cache(maxsize=4096)
def _same_word(a, b):
    return a == b or SequenceMatcher(None, a, b).ratio() >= _SAME_WORD_SIMILARITY

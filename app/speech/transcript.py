"""What a session has emitted: utterance and partial ids, finals, the words later decodes lean on.

The finals of a session, read in order, are the whole transcript, each word once. Later
decodes lean on them three ways: the session's last words are every decode's prompt and the
history the replay filter compares a decode with; the words the current VAD segment already
committed are forced as the next decode's prefix; and the last seconds of the last final
(`EndpointSettings.carry_s`, words and audio) are carried in front of the next turn, so Whisper hears some of
the voice before the words in question.
"""
from collections import deque

import numpy as np

from client.events import FinalTranscript, Word

from .replays import HISTORY_WORDS
from ..audio import TARGET_RATE_HZ as RATE_HZ
from .words import join, norm, shifted

# The session's last words (the forced prefix aside) are the prompt of every decode, as
# Whisper conditions on the previous text offline.
PROMPT_WORDS = 24
# Carried context and the next turn are joined with this much silence between them.
CARRY_GAP_S = 0.3


class Transcript:
    """One session's emitted words and ids; `utterances` counts the utterances already numbered.

    A transcript resumed after a checkpoint (`said`: the session's last words) numbers on from
    the last final and prompts with the words said before it. The last final's words that
    start within `carry_s` of its end are carried to the next turn.
    """

    def __init__(self, carry_s, utterances=0, said=()):
        self._carry_s = carry_s
        self._utterances = utterances
        self.finals_numbered = utterances  # the number of the last utterance that has a final
        self.utterance_id = None
        self._partials = 0
        self._said = deque(said, maxlen=HISTORY_WORDS)  # the session's last emitted words
        self.committed = []  # words the current VAD segment committed (and the carried ones)
        self._carry = None  # (audio, words) of the last final's last carry_s
        self._final_audio = {}

    def next_utterance(self):
        self._utterances += 1
        self.utterance_id = f"utt_{self._utterances:04d}"
        self._partials = 0

    def next_partial_id(self):
        self._partials += 1
        return f"{self.utterance_id}_p{self._partials}"

    def open_turn(self, start_s):
        """A VAD segment opens at session time `start_s`: the context audio to decode in front of it.

        The carried words become the segment's first committed words, placed just before it
        (after `CARRY_GAP_S` of silence), so they are the forced prefix of its first decode and
        never come back.
        """
        if self._carry is None:
            self.committed = []
            return np.zeros(0, np.float32)
        audio, words = self._carry
        self.committed = shifted(words, start_s - CARRY_GAP_S - words[-1].end)
        return np.concatenate([audio, np.zeros(int(CARRY_GAP_S * RATE_HZ), np.float32)])

    def close_turn(self):
        self.committed = []

    def final(self, words, speaker, audio):
        """`words` as the current utterance's final; `audio` is what they were heard in."""
        start, end = words[0].start, words[-1].end
        self.finals_numbered = self._utterances
        self._said.extend(w.word for w in words)
        self.committed += words
        self._final_audio[self.utterance_id] = audio
        tail = [w for w in words if w.start >= end - self._carry_s] or words[-1:]
        self._carry = (audio[max(0, int((tail[0].start - start) * RATE_HZ)):], tail)
        return FinalTranscript(
            utterance_id=self.utterance_id, speaker=speaker, t_start=round(start, 3),
            t_end=round(end, 3), text=join(words),
            confidence=round(float(np.mean([w.confidence for w in words])), 3),
            words=[Word(w.word, round(w.start, 3), round(w.end, 3), round(w.confidence, 3)) for w in words])

    def take_audio(self, utterance_id):
        """The samples behind a final, once (for the analytics stages)."""
        return self._final_audio.pop(utterance_id, np.zeros(0, np.float32))

    def committed_since(self, start_s):
        """The segment's committed words that start at or after `start_s`: a decode's forced prefix."""
        return [w for w in self.committed if w.start >= start_s]

    def prompt(self, prefix_words):
        """The session's last words before the `prefix_words` forced after them."""
        said = list(self._said)[-PROMPT_WORDS:]
        return said[:max(0, len(said) - prefix_words)]

    def said(self):
        """The session's last emitted words, as said (a checkpoint carries them)."""
        return list(self._said)

    def history(self):
        """The session's last emitted words, normalised, for the replay filter."""
        return [norm(word) for word in self._said]

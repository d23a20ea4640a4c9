"""The audio of the open utterance: what is not committed yet, what was committed just before it.

Words committed early take their audio with them: the open part starts at the cut, and the
committed audio before it is kept as context, since the next decode reads the last
committed words again in front of the open audio (their audio with them) so that Whisper
never starts inside a word. The latest speech of the VAD segment is kept apart for the
speaker encoder, whatever was committed.
"""
from collections import deque

import numpy as np

from ..audio import TARGET_RATE_HZ as RATE_HZ

# Speaker embeddings use at most this much of the segment's latest speech.
SPEAKER_AUDIO_S = 10.0

_EMPTY = np.zeros(0, np.float32)


class OpenAudio:
    """One session's open-utterance audio, in session samples."""

    def __init__(self, keep_context_s):
        self._keep_context = int(keep_context_s * RATE_HZ)
        self.start = 0  # session sample of the first uncommitted sample
        self.context = _EMPTY  # committed audio just before `start`
        self._frames = []
        self._samples = 0
        self._segment = deque()  # the VAD segment's latest frames, for the speaker encoder
        self._segment_samples = 0

    def open(self, start, context):
        """A new VAD segment begins at session sample `start`, with `context` before it."""
        self.start, self.context = start, context
        self._frames, self._samples = [], 0
        self._segment.clear()
        self._segment_samples = 0

    def close(self):
        """The segment ended: its audio is dropped (the context stays until the next opens)."""
        self._frames, self._samples = [], 0
        self._segment.clear()
        self._segment_samples = 0

    def append(self, frame):
        self._frames.append(frame)
        self._samples += len(frame)
        self._segment.append(frame)
        self._segment_samples += len(frame)
        while len(self._segment) > 1 and self._segment_samples > SPEAKER_AUDIO_S * RATE_HZ:
            self._segment_samples -= len(self._segment.popleft())

    @property
    def samples(self):
        """Uncommitted samples."""
        return self._samples

    @property
    def end(self):
        """Session sample just after the open audio."""
        return self.start + self._samples

    def audio(self, end=None):
        """The uncommitted audio, up to session sample `end` (default: all of it)."""
        audio = np.concatenate(self._frames) if self._frames else _EMPTY
        return audio if end is None else audio[:max(0, end - self.start)]

    def between(self, start_s, end_s):
        """The uncommitted audio between two session times."""
        return self.audio()[max(0, int(start_s * RATE_HZ) - self.start):max(0, int(end_s * RATE_HZ) - self.start)]

    def context_from(self, start_s):
        """The context audio from session time `start_s` to the open audio."""
        return self.context[len(self.context) - int((self.start / RATE_HZ - start_s) * RATE_HZ):]

    def segment_audio(self):
        return np.concatenate(self._segment)

    def has_segment(self):
        return bool(self._segment)

    def cut(self, cut_s):
        """Commit the audio before session time `cut_s`: it moves to the end of the context.

        A cut past the buffered audio (a last word's end time can reach into the padding of
        the decoded window) commits all of it and no more: `start` stays where the next frame
        begins, or every later frame would be placed late.
        """
        audio = self.audio()
        drop = min(int(cut_s * RATE_HZ) - self.start, len(audio))
        if drop <= 0:
            return
        self.context = np.concatenate([self.context, audio[:drop]])[-self._keep_context:]
        self._frames = [audio[drop:]] if len(audio) > drop else []
        self._samples = len(audio) - drop
        self.start += drop

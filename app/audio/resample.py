"""Stateful conversion of interleaved PCM at any rate and channel count to 16 kHz mono float32."""
import av
import numpy as np

TARGET_RATE_HZ = 16000

_LAYOUTS = {1: "mono", 2: "stereo"}


class Resampler:
    """Feeds libswresample (through PyAV) so rate changes carry their filter state across chunks."""

    def __init__(self, sample_rate_hz, channels):
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self._passthrough = sample_rate_hz == TARGET_RATE_HZ and channels == 1
        self._resampler = None if self._passthrough else av.AudioResampler(
            format="flt", layout="mono", rate=TARGET_RATE_HZ)

    def convert(self, interleaved):
        """Take float32 samples in [-1, 1], interleaved by channel; return 16 kHz mono float32."""
        if self._passthrough:
            return interleaved.astype(np.float32, copy=False)
        if interleaved.size == 0:
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(
            interleaved.reshape(1, -1).astype(np.float32, copy=False), format="flt",
            layout=_layout(self.channels))
        frame.sample_rate = self.sample_rate_hz
        return _join(self._resampler.resample(frame))

    def flush(self):
        """The samples still held in the filter at the end of the stream."""
        if self._passthrough:
            return np.zeros(0, np.float32)
        return _join(self._resampler.resample(None))


def _layout(channels):
    return _LAYOUTS.get(channels) or av.AudioLayout(channels).name


def _join(frames):
    parts = [f.to_ndarray().reshape(-1) for f in frames]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)

"""Incremental decoders for headerless PCM and for WAV, the two formats that need no demuxer."""
import struct

import numpy as np

from .errors import UndecodableAudio
from .limits import Budget
from .resample import Resampler

# Sample formats we read: (WAVE format tag, bits per sample) -> numpy dtype and scale to [-1, 1].
_PCM_INT = 1
_PCM_FLOAT = 3
_EXTENSIBLE = 0xFFFE
_SAMPLE_FORMATS = {
    (_PCM_INT, 8): ("u1", 128.0, 128.0),
    (_PCM_INT, 16): ("<i2", 0.0, 32768.0),
    (_PCM_INT, 32): ("<i4", 0.0, 2147483648.0),
    (_PCM_FLOAT, 32): ("<f4", 0.0, 1.0),
}

# Above any real recording's rate (768 kHz is the highest in use) and within libswresample's int.
MAX_RATE_HZ = 1_000_000


class PcmDecoder:
    """Raw interleaved samples; keeps a partial frame across chunk boundaries."""

    def __init__(self, sample_rate_hz, channels, dtype="<i2", offset=0.0, scale=32768.0):
        if not 0 < sample_rate_hz <= MAX_RATE_HZ or channels <= 0:
            raise UndecodableAudio(f"sample_rate must be 1..{MAX_RATE_HZ} Hz and channels positive")
        self._dtype = np.dtype(dtype)
        self._offset, self._scale = offset, scale
        self._frame_bytes = self._dtype.itemsize * channels
        self._rate = sample_rate_hz
        self._carry = b""
        self._resampler = Resampler(sample_rate_hz, channels)

    def decode(self, data, budget=None):
        """Samples for `data` at 16 kHz mono float32; a trailing partial frame waits for more."""
        data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        (budget or Budget()).audio(usable // self._frame_bytes, self._rate)  # before any resampling
        self._carry = data[usable:]
        raw = np.frombuffer(data[:usable], dtype=self._dtype).astype(np.float32)
        return self._resampler.convert((raw - self._offset) / self._scale)

    def flush(self, budget=None):
        """End of stream: drain the resampler (a dangling partial frame is dropped)."""
        return self._resampler.flush()


class WavDecoder:
    """RIFF/WAVE read as it arrives: header chunks are walked once, then the data chunk is PCM.

    Only the `fmt ` chunk and an unfinished chunk header are held; other chunks (LIST, fact,
    ...) are skipped as their bytes arrive, so tiny chunks cost work linear in their bytes.
    """

    def __init__(self, limits):
        self._limits = limits
        self._pending = b""  # bytes not yet walked: RIFF header, chunk header or fmt body
        self._skip = 0  # bytes of a skipped chunk still to come
        self._walked = 0  # header bytes walked so far, against the header limit
        self._fmt = None
        self._pcm = None

    def decode(self, data, budget=None):
        """Samples for `data`; raises UndecodableAudio without changing state if the header is bad."""
        if self._pcm is not None:
            return self._pcm.decode(data, budget)
        buf = self._pending + data
        pos, skip, fmt = 0, self._skip, self._fmt
        if self._walked == 0:
            if len(buf) < 12:
                self._pending = buf
                return np.zeros(0, np.float32)
            if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
                raise UndecodableAudio("not a RIFF/WAVE stream")
            pos = 12
        while True:
            step = min(skip, len(buf) - pos)
            pos, skip = pos + step, skip - step
            if skip or pos + 8 > len(buf):
                break
            chunk_id, size = buf[pos:pos + 4], struct.unpack("<I", buf[pos + 4:pos + 8])[0]
            if not all(32 <= byte < 127 for byte in chunk_id):
                raise UndecodableAudio("WAV header holds a chunk whose id is not four ASCII characters")
            body = pos + 8
            self._check_header_size(pos + 8 + (size if chunk_id != b"data" else 0))
            if chunk_id == b"data":
                if fmt is None:
                    raise UndecodableAudio("WAV data chunk before its fmt chunk")
                samples = fmt.decode(buf[body:], budget)
                self._pcm, self._pending = fmt, b""
                return samples
            if chunk_id == b"fmt ":
                if body + size > len(buf):
                    break
                fmt = _pcm_for_fmt(buf[body:body + size])
                pos, skip = body + size, size & 1  # the pad byte, when it comes
            else:
                pos, skip = body, size + (size & 1)
        self._check_header_size(pos + skip)
        self._pending, self._skip, self._fmt = buf[pos:], skip, fmt
        self._walked += pos
        return np.zeros(0, np.float32)

    def _check_header_size(self, upto):
        """`upto` bytes of this call's buffer would be header: refuse past the limit."""
        if self._walked + upto > self._limits.header_bytes:
            raise UndecodableAudio(f"no WAV data chunk within the first {self._limits.header_bytes} bytes")

    def flush(self, budget=None):
        """End of stream: drain the resampler; a stream that never got past its header is an error."""
        if self._pcm is None:
            raise UndecodableAudio("the stream ended inside the WAV header: no audio was sent")
        return self._pcm.flush()


def _pcm_for_fmt(fmt):
    if len(fmt) < 16:
        raise UndecodableAudio("WAV fmt chunk is truncated")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    spec = _SAMPLE_FORMATS.get((tag, bits))
    if spec is None:
        raise UndecodableAudio(f"unsupported WAV sample format (tag {tag}, {bits} bits)")
    dtype, offset, scale = spec
    return PcmDecoder(rate, channels, dtype, offset, scale)

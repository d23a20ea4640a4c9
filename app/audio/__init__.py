"""Incremental audio decoding: chunks of any supported format in, 16 kHz mono float32 out."""
import numpy as np

from .errors import UndecodableAudio
from .pcm import PcmDecoder, WavDecoder
from .resample import TARGET_RATE_HZ
from .sniff import RAW_SUFFIXES, SNIFF_BYTES, SUFFIX_KINDS, SUPPORTED_SUFFIXES, WAV, sniff

__all__ = ["TARGET_RATE_HZ", "SUPPORTED_SUFFIXES", "UndecodableAudio", "open_decoder"]


def open_decoder(suffix, sample_rate_hz=TARGET_RATE_HZ, channels=1):
    """A decoder for a stream announced with `suffix`; headerless PCM for .pcm/.raw."""
    if suffix in RAW_SUFFIXES:
        return PcmDecoder(sample_rate_hz, channels)
    return SniffingDecoder(SUFFIX_KINDS.get(suffix))


class SniffingDecoder:
    """Picks the real decoder from the stream's first bytes, falling back on the suffix's kind."""

    def __init__(self, announced_kind):
        self.announced_kind = announced_kind
        self.kind = None
        self._head = b""
        self._inner = None

    def decode(self, data):
        """16 kHz mono float32 for `data`; raises UndecodableAudio and keeps state on bad input."""
        if self._inner is not None:
            return self._inner.decode(data)
        head = self._head + data
        if len(head) < SNIFF_BYTES:
            self._head = head
            return np.zeros(0, np.float32)
        kind = sniff(head) or self.announced_kind
        inner = _decoder_for(kind)
        samples = inner.decode(head)
        self._inner, self.kind, self._head = inner, kind, b""
        return samples

    def flush(self):
        """End of stream: whatever the decoder still holds."""
        if self._inner is None:
            if self._head:
                raise UndecodableAudio("the stream ended before its format could be recognised")
            return np.zeros(0, np.float32)
        return self._inner.flush()


def _decoder_for(kind):
    if kind == WAV:
        return WavDecoder()
    from . import container
    return container.open_container_decoder(kind)

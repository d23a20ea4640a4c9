"""Incremental audio decoding: chunks of any supported format in, 16 kHz mono float32 out.

Every decoder's `decode(data, budget)` and `flush(budget)` are linear in their input and stop
at `budget` (decoded seconds, codec frames); byte caps come from DecodeLimits. They are
plain blocking calls: the session runs them off the gevent hub (see offload.py).
"""
import numpy as np

from .errors import DecodeLimitExceeded, UndecodableAudio
from .limits import Budget, DecodeLimits
from .pcm import PcmDecoder, WavDecoder
from .resample import TARGET_RATE_HZ
from .sniff import RAW_SUFFIXES, SNIFF_BYTES, SUFFIX_KINDS, SUPPORTED_SUFFIXES, WAV, could_start_stream, sniff

__all__ = ["TARGET_RATE_HZ", "SUPPORTED_SUFFIXES", "Budget", "DecodeLimits", "DecodeLimitExceeded",
           "UndecodableAudio", "open_decoder"]


def open_decoder(suffix, sample_rate_hz=TARGET_RATE_HZ, channels=1, limits=DecodeLimits()):
    """A decoder for a stream announced with `suffix`; headerless PCM for .pcm/.raw."""
    if suffix in RAW_SUFFIXES:
        return PcmDecoder(sample_rate_hz, channels)
    return SniffingDecoder(SUFFIX_KINDS.get(suffix), limits)


class SniffingDecoder:
    """Picks the real decoder from the stream's first bytes, falling back on the suffix's kind."""

    def __init__(self, announced_kind, limits):
        self.announced_kind = announced_kind
        self.kind = None
        self._limits = limits
        self._head = b""
        self._inner = None

    def decode(self, data, budget=None):
        """16 kHz mono float32 for `data`; raises UndecodableAudio and keeps state on bad input."""
        if self._inner is not None:
            return self._inner.decode(data, budget)
        head = self._head + data
        if len(head) < SNIFF_BYTES:
            if not could_start_stream(head, self._limits.header_bytes):
                raise UndecodableAudio("these bytes cannot start a stream of any supported format")
            self._head = head
            return np.zeros(0, np.float32)
        kind = sniff(head) or self.announced_kind
        inner = _decoder_for(kind, self._limits)
        samples = inner.decode(head, budget)
        self._inner, self.kind, self._head = inner, kind, b""
        return samples

    def flush(self, budget=None):
        """End of stream: whatever the decoder still holds."""
        if self._inner is None:
            if self._head:
                raise UndecodableAudio("the stream ended before its format could be recognised")
            return np.zeros(0, np.float32)
        return self._inner.flush(budget)


def _decoder_for(kind, limits):
    if kind == WAV:
        return WavDecoder(limits)
    from . import container
    return container.open_container_decoder(kind, limits)

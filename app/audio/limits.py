"""What one decode call may cost: a budget of decoded seconds and codec frames, and byte caps.

The caps keep a decoder's work linear in what it is sent and bounded per chunk: a decode
bomb (a small chunk that expands to hours of audio) is stopped at the budget, before the
audio past it is decoded or resampled.
"""
import math
from dataclasses import dataclass

from .errors import DecodeLimitExceeded


@dataclass(frozen=True)
class DecodeLimits:
    """Byte caps on what a decoder holds between chunks; defaults admit every real stream."""

    header_bytes: int = 1024 * 1024  # container header / FLAC metadata / ID3 tag / WAV header
    unit_bytes: int = 16 * 1024 * 1024  # one unfinished unit: Ogg packet, WebM element, MP4 box


class Budget:
    """Counts decoded seconds and frames of one call; raises DecodeLimitExceeded past either."""

    def __init__(self, seconds=math.inf, frames=math.inf):
        self.max_seconds, self.max_frames = seconds, frames
        self.seconds, self.frames = 0.0, 0

    def frame(self):
        """One more unit of framing work: a container element walked, or a packet about to be decoded.

        Both count, so a chunk of empty elements (WebM Voids, MP4 `free` boxes, empty Ogg
        pages) is bounded like a chunk of tiny packets.
        """
        self.frames += 1
        if self.frames > self.max_frames:
            raise DecodeLimitExceeded("frames", self.max_frames)

    def audio(self, samples, rate_hz):
        """`samples` at `rate_hz` were decoded and are about to be resampled and kept."""
        self.seconds += samples / rate_hz
        if self.seconds > self.max_seconds + 1e-6:
            raise DecodeLimitExceeded("seconds", self.max_seconds)


UNLIMITED = Budget()

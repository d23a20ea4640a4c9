"""How fast a recording's bytes play, found without decoding it, so uploads can be paced like a microphone.

- WAV: the `fmt ` chunk's byte rate; the header before the `data` chunk plays in no time.
- Headerless raw PCM (`.pcm`, `.raw`, s16le): `sample_rate_hz * channels * 2`, from the
  same parameters the session was started with (server defaults 16000 Hz, mono).
- Anything compressed (Opus, MP3, AAC, …): the size over its duration — `duration_s`
  when the caller knows it, else the duration read from the file's own header by
  tinytag when it is installed (`pip install 'harken[tags]'`); failing both, a nominal
  speech bitrate of 64 kbit/s, which is only an estimate and is logged as one.
"""
import logging
import os
import struct
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger(__name__)

RAW_PCM_SUFFIXES = (".pcm", ".raw")
DEFAULT_PCM_RATE_HZ = 16000
DEFAULT_PCM_CHANNELS = 1
PCM_SAMPLE_BYTES = 2
NOMINAL_BITRATE_BPS = 64_000


@dataclass(frozen=True)
class Pacing:
    """`bytes_per_second` of audio after the first `header_bytes` (which take no time to play)."""

    bytes_per_second: float
    header_bytes: int = 0
    estimated: bool = False

    def seconds_at(self, byte_offset):
        """Seconds of audio held in the file's first `byte_offset` bytes."""
        return max(0, byte_offset - self.header_bytes) / self.bytes_per_second


def wav_pacing(path):
    """The `Pacing` read from a RIFF/WAVE header, or None when `path` is not a WAV file."""
    with open(path, "rb") as f:
        riff = f.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            return None
        byte_rate = None
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None
            chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk_id == b"fmt ":
                byte_rate = struct.unpack("<HHII", f.read(12))[3]
                f.seek(size - 12 + size % 2, os.SEEK_CUR)
            elif chunk_id == b"data":
                return Pacing(byte_rate, f.tell()) if byte_rate else None
            else:
                f.seek(size + size % 2, os.SEEK_CUR)


def file_duration_s(path) -> Optional[float]:
    """The duration tinytag reads from a compressed file's header, or None (no tinytag, or no duration in it)."""
    try:
        from tinytag import TinyTag
    except ImportError:
        return None
    try:
        duration = TinyTag.get(path).duration
    except Exception as exc:  # tinytag raises its own errors and plain ones on a file it misreads
        log.info("tinytag could not read %s: %s", path, exc)
        return None
    return duration if duration and duration > 0 else None


def pacing(path, suffix, *, sample_rate=None, channels=None, duration_s=None, total_bytes=None):
    """How fast the audio plays: see the module docstring for each kind of source.

    `path` is None for a source that is not a file on disk; raw PCM, or `duration_s` with a
    known `total_bytes`, can still be paced; anything else raises ValueError.
    """
    if (suffix or "").lower() in RAW_PCM_SUFFIXES:
        rate = (sample_rate or DEFAULT_PCM_RATE_HZ) * (channels or DEFAULT_PCM_CHANNELS)
        return Pacing(rate * PCM_SAMPLE_BYTES)
    if path is None:
        if duration_s and total_bytes:
            return Pacing(total_bytes / duration_s)
        raise ValueError("real-time pacing of a stream needs raw PCM (suffix .pcm) or duration_s "
                         "with a known size; a live source already arrives at its own speed")
    found = wav_pacing(path)
    if found is not None:
        return found
    size = os.path.getsize(path)
    duration_s = duration_s or file_duration_s(path)
    if duration_s:
        return Pacing(size / duration_s)
    log.warning("pacing %s at an estimated %d kbit/s: its duration could not be read (install "
                "tinytag, or give it: --duration SECONDS on the command line, duration_s= in Python)",
                path, NOMINAL_BITRATE_BPS // 1000)
    return Pacing(NOMINAL_BITRATE_BPS / 8, estimated=True)

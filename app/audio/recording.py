"""Whole recorded files on disk (any container FFmpeg reads) to 16 kHz mono float32, a block at a time.

Live chunks need incremental framers; a recorded file is all there, so FFmpeg's demuxers read
it directly, including containers that are not fragmented (an MP4 with its index at the end).
"""
import contextlib
import struct
from dataclasses import dataclass

import av
import numpy as np

from .errors import UndecodableAudio
from .resample import TARGET_RATE_HZ, mono_resampler

# Decoded audio handed out per block: big enough to amortise the calls, small enough that
# one block is a short step of work.
BLOCK_S = 60.0
# A file counts as cut short when it decodes to this much less than its header announces.
TRUNCATION_TOLERANCE_S = 1.0


class AudioTooLong(UndecodableAudio):
    """The file announces more audio than one analysis may take."""


@dataclass(frozen=True)
class RecordingInfo:
    """What a recording announces about itself before it is decoded."""

    container: str
    codec: str
    duration_s: float  # None when the container does not say


def probe(path, max_audio_s):
    """Open `path`, check it holds decodable audio within `max_audio_s`, and say what it is.

    Raises UndecodableAudio for anything FFmpeg cannot read as audio, AudioTooLong beyond the cap.
    """
    with _read_by_ffmpeg(), av.open(str(path)) as container:
        stream = _audio_stream(container)
        duration_s = _duration_s(container, stream)
        if duration_s is not None and duration_s > max_audio_s:
            raise AudioTooLong(f"the file holds {duration_s:.0f} s of audio; at most "
                               f"{max_audio_s:.0f} s may be analysed")
        for _ in container.decode(stream):
            break
        else:
            raise UndecodableAudio("the file's audio stream holds no decodable frame")
        return RecordingInfo(container.format.name, stream.codec_context.name, duration_s)


@contextlib.contextmanager
def _read_by_ffmpeg():
    """What FFmpeg or the file system raise while a file is read, as UndecodableAudio; an
    UndecodableAudio (a ValueError itself) passes through as it is."""
    try:
        yield
    except UndecodableAudio:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UndecodableAudio(f"not a recording FFmpeg can read: {exc}") from None


class RecordingReader:
    """Decodes a file to 16 kHz mono float32 in blocks; stops early, and says so, on damage."""

    def __init__(self, path, max_audio_s):
        self.path = str(path)
        self.max_audio_s = max_audio_s
        self.decoded_s = 0.0
        self.announced_s = None
        self.truncation = None

    @property
    def truncated(self):
        """True when the file ended before its announced end or in damaged data."""
        return self.truncation is not None

    def progress(self):
        """The share of the announced audio decoded so far (0 when the file does not say)."""
        return min(1.0, self.decoded_s / self.announced_s) if self.announced_s else 0.0

    def blocks(self):
        """Every BLOCK_S of audio in order, then the rest."""
        resampler = mono_resampler()
        limit_n = int(self.max_audio_s * TARGET_RATE_HZ)
        pending, decoded_n, block_start_n = [], 0, 0

        def take(frames):
            nonlocal decoded_n
            for out in frames:
                samples = out.to_ndarray().reshape(-1)[:max(0, limit_n - decoded_n)]
                pending.append(samples.astype(np.float32, copy=False))
                decoded_n += len(samples)
            self.decoded_s = decoded_n / TARGET_RATE_HZ

        with _read_by_ffmpeg(), av.open(self.path) as container:
            stream = _audio_stream(container)
            self.announced_s = _wav_announced_s(self.path) or _duration_s(container, stream)
            for frame in self._frames(container, stream):
                take(resampler.resample(frame))
                if decoded_n >= limit_n:
                    self.truncation = f"stopped at the {self.max_audio_s:.0f} s analysis limit"
                    break
                if decoded_n - block_start_n >= BLOCK_S * TARGET_RATE_HZ:
                    block_start_n = decoded_n
                    yield _take(pending)
            else:
                take(resampler.resample(None))
        if (self.truncation is None and self.announced_s is not None
                and self.decoded_s < self.announced_s - TRUNCATION_TOLERANCE_S):
            self.truncation = (f"{self.decoded_s:.1f} s decoded of the "
                               f"{self.announced_s:.1f} s its header announces")
        if pending:
            yield _take(pending)

    def _frames(self, container, stream):
        """Decoded frames until the end or the first damaged packet."""
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                self.truncation = f"damaged data after {self.decoded_s:.1f} s ({exc})"
                return


def _audio_stream(container):
    stream = next((s for s in container.streams if s.type == "audio"), None)
    if stream is None:
        raise UndecodableAudio("the file has no audio stream")
    return stream


def _duration_s(container, stream):
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _wav_announced_s(path):
    """The seconds a WAV header's `data` chunk announces (FFmpeg guesses from the file size
    instead, so a cut WAV would look whole); None for other files or unsized streams."""
    with open(path, "rb") as source:
        head = source.read(4096)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, None
    while offset + 8 <= len(head):
        chunk_id, size = head[offset:offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk_id == b"fmt " and offset + 16 <= len(head):
            byte_rate = struct.unpack_from("<I", head, offset + 16)[0]
        elif chunk_id == b"data":
            unsized = size in (0, 0xFFFFFFFF)
            return None if unsized or not byte_rate else size / byte_rate
        offset += 8 + size + (size & 1)
    return None


def _take(pending):
    samples = np.concatenate(pending).astype(np.float32, copy=False)
    pending.clear()
    return samples

"""Where a stream's audio comes from: a path, bytes, a file-like object or an iterable of byte chunks.

Whatever the source, it is read once, in order, as chunks of at most `chunk_bytes`
(never empty: the server refuses an empty chunk). A file-like object is read with
blocking `read(chunk_bytes)` calls, so a pipe or a microphone delivers a chunk each
time `chunk_bytes` of audio have arrived; an iterable's items are sent as they come
(split when larger than `chunk_bytes`), so their size sets the latency.
"""
import io
import os
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Optional, Union

AudioInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO, Iterable[bytes]]


class AudioSource:
    """One audio source, normalised.

    Attributes:
        chunks: the iterator of byte chunks (read lazily, from whichever thread iterates it).
        path: the file's path when the source is a file on disk (real-time pacing reads it).
        name: a file name whose extension hints the format, or None.
        total_bytes: the size when it is known up front (a path, bytes, a seekable file), else None.
    """

    def __init__(self, chunks: Iterator[bytes], *, path: Optional[str] = None,
                 name: Optional[str] = None, total_bytes: Optional[int] = None):
        self.chunks = chunks
        self.path = path
        self.name = name
        self.total_bytes = total_bytes

    @property
    def suffix(self) -> Optional[str]:
        """The extension of `name` (``.wav``), lower case, or None."""
        return os.path.splitext(self.name or "")[1].lower() or None


def audio_source(source: AudioInput, chunk_bytes: int) -> AudioSource:
    """Normalise `source` (see the module docstring) into an `AudioSource` of `chunk_bytes` chunks."""
    if chunk_bytes <= 0:
        raise ValueError("chunk_bytes must be positive")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        return AudioSource(_file_chunks(path, chunk_bytes), path=path, name=os.path.basename(path),
                           total_bytes=os.path.getsize(path))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return AudioSource(split(iter([source]), chunk_bytes), total_bytes=memoryview(source).nbytes)
    if isinstance(source, io.TextIOBase):
        raise TypeError(_TEXT)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = os.path.basename(name) if isinstance(name, str) and not name.startswith("<") else None
        return AudioSource(read_chunks(source.read, chunk_bytes), name=name,
                           total_bytes=_remaining(source))
    if hasattr(source, "recv"):  # a connected socket
        return AudioSource(read_chunks(source.recv, chunk_bytes))
    if isinstance(source, Iterable):
        return AudioSource(split(iter(source), chunk_bytes))
    raise TypeError(f"cannot stream audio from {type(source).__name__}: give a path, bytes, a binary "
                    "file-like object or an iterable of bytes")


def _file_chunks(path: str, chunk_bytes: int) -> Iterator[bytes]:
    with open(path, "rb") as audio:
        yield from read_chunks(audio.read, chunk_bytes)


def read_chunks(read: Callable[[int], bytes], chunk_bytes: int) -> Iterator[bytes]:
    """`read(chunk_bytes)` until it returns nothing (end of file, or a closed pipe or socket)."""
    while True:
        data = read(chunk_bytes)
        if not data:
            return
        yield _binary(data)


def split(items: Iterator[Any], chunk_bytes: int) -> Iterator[bytes]:
    """Each item's bytes as they come, cut into pieces of at most `chunk_bytes`; empty items skipped."""
    for item in items:
        yield from pieces(item, chunk_bytes)


def pieces(item, chunk_bytes: int) -> Iterator[bytes]:
    """One item (any bytes-like object) cut into pieces of at most `chunk_bytes`."""
    view = memoryview(_binary(item)).cast("B")
    for start in range(0, view.nbytes, chunk_bytes):
        yield bytes(view[start:start + chunk_bytes])


_TEXT = ("the audio source gives text, not bytes: open it in binary mode "
         "(e.g. sys.stdin.buffer, open(path, 'rb'))")


def _binary(data):
    if isinstance(data, str):
        raise TypeError(_TEXT)
    return data


def _remaining(stream) -> Optional[int]:
    """Bytes left in a seekable file-like object; None for a pipe, a socket or a terminal."""
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return end - here

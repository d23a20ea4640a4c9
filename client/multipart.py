"""A recorded file's upload to `POST /analyze`: a multipart/form-data body streamed from its source, never held whole.

requests and httpx build multipart bodies in memory; a recording may be hundreds of
megabytes, so the body here is an iterable of bytes instead: the form fields, the file
part's header, the file itself in `PART_BYTES` pieces as they are read, the closing
boundary. When the file's size is known (a path, bytes, a seekable file) the body's length
is too, and the request carries a ``Content-Length``, so the server can refuse an oversized
upload before reading it; otherwise it goes out with chunked transfer encoding.
"""
import io
import os
import secrets
from typing import Dict, Iterator, Optional, Tuple, Type, Union

from .errors import APIError
from .sources import AudioInput, audio_source

# What one read of the file sends: large enough that the per-piece overhead vanishes.
PART_BYTES = 64 * 1024
# The file part's name when the source has none (bytes, a pipe); the server reads the format from the bytes.
DEFAULT_FILENAME = "recording"


class MultipartBody:
    """One attempt's body: iterate it once for its bytes.

    `length` is its size in bytes, or None when unknown; `headers` are the request's
    ``Content-Type`` (with the boundary) and, when the length is known, ``Content-Length``.
    """

    def __init__(self, boundary: str, head: bytes, pieces: Iterator[bytes], file_bytes: Optional[int]):
        self.head, self.pieces = head, pieces
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.length = None if file_bytes is None else len(head) + file_bytes + len(self.tail)
        self.headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self.length is not None:
            self.headers["Content-Length"] = str(self.length)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        yield from self.pieces
        yield self.tail

    def __len__(self) -> int:
        """The body's size, for requests' ``Content-Length`` (only called when `length` is known)."""
        if self.length is None:
            raise TypeError("the body's length is not known")
        return self.length

    def close(self) -> None:
        """Close the source file opened for this body (a generator: closing it closes the file)."""
        close = getattr(self.pieces, "close", None)
        if close is not None:
            close()


class FileUpload:
    """A recording and its form fields, as one or more `MultipartBody` attempts.

    Args:
        source: a path, bytes, or a binary file-like object (an open file, a pipe).
        fields: the form's other fields, name to text.

    A path or bytes can be sent again after a refusal, and so can a seekable file (it is
    rewound to where it stood); a pipe only once (`retry_on` is then empty).
    """

    def __init__(self, source: AudioInput, fields: Dict[str, str]):
        if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) \
                and not hasattr(source, "read"):
            raise TypeError(f"cannot upload a recording from {type(source).__name__}: give a path, "
                            "bytes or a binary file-like object")
        if isinstance(source, io.TextIOBase):
            raise TypeError("the recording gives text, not bytes: open it in binary mode")
        self.source = source
        self.fields = fields
        self._rewind_to = _position(source)
        self._repeatable = not hasattr(source, "read") or self._rewind_to is not None
        self._attempts = 0

    @property
    def retry_on(self) -> Union[Type[APIError], Tuple[()]]:
        """What a retry may follow: the server's refusals, when the source can be read again; else nothing."""
        return APIError if self._repeatable else ()

    def body(self) -> MultipartBody:
        """A new body for the next attempt, read from the start of the recording."""
        if self._attempts and not self._repeatable:
            raise RuntimeError("this recording's source cannot be read twice")
        if self._attempts and self._rewind_to is not None:
            self.source.seek(self._rewind_to)
        self._attempts += 1
        audio = audio_source(self.source, PART_BYTES)
        boundary = "harken-" + secrets.token_hex(16)
        head = b"".join(_field(boundary, name, value) for name, value in self.fields.items())
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"{_quoted(audio.name or DEFAULT_FILENAME)}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        return MultipartBody(boundary, head, audio.chunks, audio.total_bytes)


def _field(boundary: str, name: str, value: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            f"{value}\r\n").encode()


def _quoted(name: str) -> str:
    """A file name safe inside the quoted ``filename=""`` (as browsers escape it)."""
    return name.replace("\\", "%5C").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _position(source) -> Optional[int]:
    """Where a seekable file-like object stands now; None for anything else."""
    if not hasattr(source, "read"):
        return None
    try:
        return source.tell() if source.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None

"""The messages between the server and its speech workers, and their frames on the pipes.

One frozen dataclass per message; each crosses as a frame: a 4-byte big-endian length, then
a pickle. Pickle because both ends are this same code base on one machine and the payloads
are numpy arrays and `client.events` dataclasses; the pipes are private to the parent and its
child. Either end dispatches on the message's type; a frame it cannot read or a message it
does not know is logged and skipped, so neither kills a worker.
"""
import logging
import os
import pickle
import select
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SessionContext:
    """What analysis may know about the session (or file job) it serves.

    Declared here, beside the messages that carry it, so that a worker unpickling one loads
    nothing of the hub (app.pipeline hands it on to sessions and files).
    """

    session_id: str
    conversation_id: str
    language: str = "en"
    goal: Optional[str] = None
    metadata: dict = field(default_factory=dict)


# -- the server to a worker (its first frame is the worker's app.speech.settings.WorkerSettings) ---

@dataclass(frozen=True)
class OpenSession:
    """Start a live session's recognizer and analytics.

    `checkpoints`: send each final with its analytics and a checkpoint in one `Events` (a shared
    store keeps them); `resume`: such a checkpoint, to carry the session on after it
    (app.speech.checkpoint).
    """

    session_id: str
    context: SessionContext
    checkpoints: bool = False
    resume: Optional[dict] = None


@dataclass(frozen=True)
class OpenJob:
    """Analyse the recorded file at `path` (on this machine) as one offline job, known by `session_id`."""

    session_id: str
    context: SessionContext
    path: str


@dataclass(frozen=True)
class Feed:
    """The session's next samples: 16 kHz mono float32 (numpy)."""

    session_id: str
    samples: Any


@dataclass(frozen=True)
class Finish:
    """No more audio for the session: flush it, then answer `Completed`."""

    session_id: str


@dataclass(frozen=True)
class Cancel:
    """Drop the session's (or job's) work; nothing more is sent for it."""

    session_id: str


@dataclass(frozen=True)
class Stop:
    """The worker exits."""


# -- a worker to the server -----------------------------------------------------------------------

@dataclass(frozen=True)
class Ready:
    """The models are loaded; `info` says which (shown in /healthz)."""

    info: dict


@dataclass(frozen=True)
class LoadFailed:
    """The models could not load; the worker exits and is not restarted."""

    error: str


@dataclass(frozen=True)
class Events:
    """Events of a session or job, in order, and how far its audio is analysed.

    `analysed_s` is None when a final's analytics are still to come in the next message: the
    server reports no progress between a final and its analytics (the catalog's order). A
    `checkpoint` (sessions opened with `checkpoints`) says the batch holds finals with all their
    analytics, to be published with it in one step. `catch_up_decodes`: decodes meant for a
    final that the worker made as cheaply as a partial since its last message for the session,
    because other sessions were waiting (the server counts them in its metrics).
    """

    session_id: str
    events: list
    analysed_s: Optional[float]
    checkpoint: Optional[dict] = None
    catch_up_decodes: int = 0


@dataclass(frozen=True)
class Completed:
    """The session or job is done: its closing events (the final summary), then the end."""

    session_id: str
    events: list
    analysed_s: float


@dataclass(frozen=True)
class Failed:
    """The session's or job's analysis broke; `message` is for the client's fatal error."""

    session_id: str
    message: str


# -- frames ---------------------------------------------------------------------------------------

def pack(message):
    """The bytes of one frame carrying `message`."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class FrameBuffer:
    """Reassembles frames from bytes that arrive in pieces of any size."""

    def __init__(self):
        self._buf = bytearray()

    def extend(self, data):
        self._buf += data

    def pop(self):
        """The next whole message, or None until more bytes arrive.

        A frame whose pickle cannot be loaded is logged and skipped: its length is known, so
        the frames after it are read as usual.
        """
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > MAX_FRAME_BYTES:
                raise ValueError(f"speech worker frame of {size} bytes is over the limit")
            if len(self._buf) < _HEADER.size + size:
                return None
            body = bytes(self._buf[_HEADER.size:_HEADER.size + size])
            del self._buf[:_HEADER.size + size]
            try:
                return pickle.loads(body)
            except Exception as exc:  # any class, module or byte of a pickle may be wrong
                log.error("skipped a speech frame of %d bytes that could not be read: %s: %s",
                          size, type(exc).__name__, exc)
        return None


class BlockingChannel:
    """The worker's end: plain blocking reads and writes on two file descriptors."""

    def __init__(self, read_fd, write_fd):
        self._read_fd, self._write_fd = read_fd, write_fd
        self._frames = FrameBuffer()
        self._ready = []

    def send(self, message):
        data = memoryview(pack(message))
        while data:
            written = os.write(self._write_fd, data)
            data = data[written:]

    def receive(self, block=True):
        """The next message; None if `block` is False and none has fully arrived; EOFError at the end."""
        while not self._ready:
            if not block and not select.select([self._read_fd], [], [], 0)[0]:
                return None
            data = os.read(self._read_fd, 1 << 20)
            if not data:
                raise EOFError("the server closed the pipe")
            self._frames.extend(data)
            while (message := self._frames.pop()) is not None:
                self._ready.append(message)
        return self._ready.pop(0)

    def pending(self):
        """True when a message is waiting, so optional work (partials) should yield to it."""
        if self._ready:
            return True
        return bool(select.select([self._read_fd], [], [], 0)[0])

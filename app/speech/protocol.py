"""Frames between the server and its speech workers: a 4-byte big-endian length, then a pickle.

Pickle because both ends are this same code base on one machine and the payloads are numpy
arrays and `client.events` dataclasses; the pipes are private to the parent and its child.
"""
import os
import pickle
import select
import struct

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024


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
        """The next whole message, or None until more bytes arrive."""
        if len(self._buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buf)
        if size > MAX_FRAME_BYTES:
            raise ValueError(f"speech worker frame of {size} bytes is over the limit")
        if len(self._buf) < _HEADER.size + size:
            return None
        body = bytes(self._buf[_HEADER.size:_HEADER.size + size])
        del self._buf[:_HEADER.size + size]
        return pickle.loads(body)


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

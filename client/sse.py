"""Server-Sent Events framing over any iterable of bytes: sseclient-py, plus the two things it leaves out.

sseclient-py splits the byte stream into messages, drops comments (`: keepalive`) and
decodes each line as UTF-8 only once the message is complete, so a character split
across network reads arrives whole. It does not open connections; neither does this.
What it leaves out, and this layer adds:
- a `retry:` field sent on its own (Harken sends `retry: 2000` when the stream opens)
  is kept in `retry_ms`, because a reconnecting caller must honour it;
- a message cut off by a dropped connection (no blank line after it) is discarded,
  as the SSE standard says, instead of being dispatched half-read.
"""
import sseclient

_MESSAGE_ENDS = (b"\r\r", b"\n\n", b"\r\n\r\n")


class SSEParser(sseclient.SSEClient):
    """Messages (`.event`, `.data`, `.id`) from `chunks`, an iterable of bytes; `retry_ms` and `last_event_id` as seen so far."""

    def __init__(self, chunks):
        super().__init__(chunks)
        self.retry_ms = None
        self.last_event_id = None

    def _read(self):
        for block in super()._read():
            if not block.endswith(_MESSAGE_ENDS):
                return
            if b"retry:" in block:
                self._note_retry(block)
            yield block

    def _note_retry(self, block):
        for line in block.splitlines():
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"retry" and value.isdigit():
                self.retry_ms = int(value)

    def events(self):
        """Complete messages, in order; `last_event_id` follows each one that carries an `id:`."""
        for message in super().events():
            if message.id is not None:
                self.last_event_id = message.id
            yield message

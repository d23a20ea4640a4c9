"""Native FLAC framing, linear in its input: where each frame of a growing stream ends.

A FLAC frame does not state its length: it ends where the next frame starts, and its last
two bytes are the CRC-16 of the rest. The sync code `FF F8` can occur inside audio data (or
be sent on purpose: issue 14's `FF F8` flood once cost a CRC over the rest of the buffer at
every candidate, quadratic, and froze the server). So a boundary is searched with bounded
work per byte:

- the frame at the start must have a valid header (its CRC-8), which gives the frame's
  largest possible size (block size x channels x bits, stored verbatim): no boundary is
  looked for past it, and a frame that does not end by then is refused;
- a later `FF F8`/`FF F9` is a candidate only if the CRC-16 of the bytes before it is right
  (checked against a running CRC, each byte fed once, and kept across chunks) and a valid
  frame header follows it.
"""
import av

from .errors import UndecodableAudio


def _crc_table(poly, width):
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
        table.append(crc)
    return table


_CRC8 = _crc_table(0x07, 8)
_CRC16 = _crc_table(0x8005, 16)


def crc16(data, crc=0):
    """FLAC's CRC-16 (polynomial 0x8005, MSB first) of `data`, continuing from `crc`."""
    table = _CRC16
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def _crc8(data):
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


_INVALID = "invalid"
# Block size codes 1-5 and 8-15 (6 and 7: read from the header's end; 0 is reserved).
_BLOCK_SIZES = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608, **{c: 256 << (c - 8) for c in range(8, 16)}}
_SAMPLE_BITS = {0: None, 1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}  # None: from STREAMINFO
_HEADER_MAX_BYTES = 16


def frame_header(buf, pos, streaminfo_bits):
    """(header length, largest frame size) of the frame header at `pos`; None if incomplete, else _INVALID."""
    if len(buf) - pos < 4:
        return None
    if buf[pos] != 0xFF or buf[pos + 1] & 0xFE != 0xF8:
        return _INVALID
    block_code, rate_code = buf[pos + 2] >> 4, buf[pos + 2] & 0x0F
    channel_code, bits_code, reserved = buf[pos + 3] >> 4, (buf[pos + 3] >> 1) & 7, buf[pos + 3] & 1
    if block_code == 0 or rate_code == 15 or channel_code > 10 or bits_code == 3 or reserved:
        return _INVALID
    end = pos + 4
    if end >= len(buf):
        return None
    first = buf[end]
    extra = 0 if first < 0x80 else next((n for n, mask in ((1, 0xE0), (2, 0xF0), (3, 0xF8), (4, 0xFC),
                                                          (5, 0xFE), (6, 0xFF)) if first & mask == (mask << 1) & 0xFF), None)
    if extra is None:
        return _INVALID
    if end + 1 + extra > len(buf):
        return None
    if any(byte & 0xC0 != 0x80 for byte in buf[end + 1:end + 1 + extra]):
        return _INVALID
    end += 1 + extra
    block_bytes = {6: 1, 7: 2}.get(block_code, 0)
    rate_bytes = {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if end + block_bytes + rate_bytes + 1 > len(buf):
        return None
    block_size = int.from_bytes(buf[end:end + block_bytes], "big") + 1 if block_bytes else _BLOCK_SIZES[block_code]
    end += block_bytes + rate_bytes
    if _crc8(buf[pos:end]) != buf[end]:
        return _INVALID
    bits = _SAMPLE_BITS[bits_code] or streaminfo_bits
    channels = channel_code + 1 if channel_code < 8 else 2
    # Verbatim subframes are the largest an encoder writes: header, wasted-bits run, then
    # block_size samples of bits (+1 for a stereo side channel); one more bit each of slack.
    subframe = 2 + (bits + 8) // 8 + (block_size * (bits + 2) + 7) // 8
    return end + 1 - pos, end + 1 - pos + channels * subframe + 2


class FlacFramer:
    """`fLaC` and metadata blocks (only STREAMINFO is kept), then frames; see the module docstring."""

    kind = "flac"

    def __init__(self, limits):
        self._limits = limits
        self._magic = False
        self._metadata_bytes = 0
        self._streaminfo = None
        self._in_frames = False
        self._crc_fed = 0  # bytes of the pending frame already fed to the running CRC
        self._crc = 0

    @property
    def streaminfo(self):
        return self._streaminfo

    def parse(self, buf, budget, at_end=False):
        """(complete frames, bytes consumed) of `buf`, which starts where the last call stopped."""
        pos = 0
        if not self._in_frames:
            pos = self._parse_metadata(buf, budget)
            if not self._in_frames:
                return [], pos
        units = []
        while pos < len(buf):
            budget.frame()
            end = self._frame_end(buf, pos, at_end)
            if end is None:
                break
            units.append(buf[pos:end])
            pos = end
        return units, pos

    def _parse_metadata(self, buf, budget):
        """Consume whole metadata blocks; sets _in_frames after the last one."""
        pos = 0
        if not self._magic:
            if len(buf) < 4:
                return 0
            if buf[:4] != b"fLaC":
                raise UndecodableAudio("not a FLAC stream")
            self._magic, pos = True, 4
        while len(buf) - pos >= 4:
            budget.frame()
            last, kind = buf[pos] & 0x80, buf[pos] & 0x7F
            size = int.from_bytes(buf[pos + 1:pos + 4], "big")
            if self._metadata_bytes + 4 + size > self._limits.header_bytes:
                raise UndecodableAudio(f"FLAC metadata is larger than {self._limits.header_bytes} bytes")
            if len(buf) - pos - 4 < size:
                break
            if kind == 0:
                if size < 34:
                    raise UndecodableAudio("FLAC STREAMINFO is truncated")
                self._streaminfo = buf[pos + 4:pos + 4 + size]
            self._metadata_bytes += 4 + size
            pos += 4 + size
            if last:
                if self._streaminfo is None:
                    raise UndecodableAudio("FLAC stream without STREAMINFO")
                self._in_frames = True
                break
        return pos

    def _streaminfo_bits(self):
        info = self._streaminfo
        return ((info[12] & 1) << 4 | info[13] >> 4) + 1

    def _frame_end(self, buf, start, at_end):
        """End of the frame at `start` (the next frame's start), or None until more bytes come."""
        header = frame_header(buf, start, self._streaminfo_bits())
        if header is _INVALID:
            raise UndecodableAudio("lost FLAC frame sync")
        if header is None:
            if at_end:
                raise UndecodableAudio("the FLAC stream ends inside a frame header")
            return None
        header_len, max_len = header
        limit = start + max_len  # the latest a successor can start
        pos, crc = start + self._crc_fed, self._crc  # crc is the CRC-16 of buf[start:pos]
        search = max(pos, start + header_len + 3)
        while True:
            stop = min(len(buf), limit + 1)
            candidate = buf.find(b"\xff", search, stop)
            if candidate < 0:
                crc, pos = crc16(buf[pos:stop], crc), stop
                if at_end and len(buf) <= limit and crc == 0:
                    return self._found(len(buf))
                if len(buf) > limit:
                    raise UndecodableAudio(f"a FLAC frame runs past the {max_len} bytes its header allows")
                self._crc_fed, self._crc = pos - start, crc
                return None
            crc, pos = crc16(buf[pos:candidate], crc), candidate
            if crc == 0 and candidate + 1 < len(buf) and buf[candidate + 1] & 0xFE == 0xF8:
                successor = frame_header(buf, candidate, self._streaminfo_bits())
                if successor is None and not at_end:
                    self._crc_fed, self._crc = pos - start, crc
                    return None
                if successor not in (None, _INVALID):
                    return self._found(candidate)
            elif candidate + 1 == len(buf) and not at_end:
                self._crc_fed, self._crc = pos - start, crc  # its second byte is still to come
                return None
            search = candidate + 1

    def _found(self, end):
        self._crc_fed, self._crc = 0, 0
        return end

    def finish(self, rest, budget):
        if rest and not self._in_frames:
            raise UndecodableAudio("the stream ended inside the FLAC header")
        return self.parse(rest, budget, at_end=True)[0] if rest else []

    def packets(self, units):
        return (av.Packet(unit) for unit in units)

    def codec(self):
        ctx = av.CodecContext.create("flac", "r")
        ctx.extradata = self._streaminfo
        return ctx

"""Compressed containers (Ogg/Opus, WebM/Opus, fragmented MP4/AAC, MP3, FLAC) decoded as they arrive.

A demuxer pulls bytes and stops at the end of what it has, so it cannot sit on a stream that
grows one HTTP chunk at a time. Instead each container's own framing is read here (Ogg pages,
Matroska elements, MP4 boxes, MP3 frame headers, FLAC frame CRCs): it says where the header
ends and where each self-contained unit of media (a packet-complete group of Ogg pages, one
Matroska block, one moof+mdat fragment, one MP3 or FLAC frame) ends. Complete units are
demuxed once with PyAV behind a copy of the header, their packets go to one long-lived
decoder (codec state carries across chunks), and their bytes are dropped; only the header
and one unfinished unit are ever held, so memory stays bounded on hour-long sessions and no
byte is decoded twice.

Bytes that break the framing (a page without its `OggS`, an unknown box, a lost sync) are
refused before anything changes: the framer parses a copy of its state and commits only when
the whole chunk parsed. Bytes inside an unfinished unit cannot be judged until it completes,
so they are accepted.
"""
import copy
import io
import struct

import av
import numpy as np

from .errors import DecodeLimitExceeded, UndecodableAudio
from .flac import FlacFramer
from .limits import Budget, DecodeLimits
from .resample import join_frames, mono_resampler
from .sniff import FLAC, MP3, MP4, MP4_BOXES, OGG, WEBM


def open_container_decoder(kind, limits=DecodeLimits()):
    """An incremental decoder for container `kind` (ogg, webm, mp4, mp3, flac)."""
    framers = {OGG: OggFramer, WEBM: MatroskaFramer, MP4: Mp4Framer, MP3: Mp3Framer, FLAC: FlacFramer}
    if kind not in framers:
        raise UndecodableAudio(f"audio in {kind or 'this'} format is not supported: send WAV, "
                               "raw PCM, Ogg/Opus, WebM/Opus, MP4/AAC, MP3 or FLAC")
    return ContainerDecoder(framers[kind](limits), limits)


class ContainerDecoder:
    """Framing first, then PyAV for the complete units; see the module docstring."""

    def __init__(self, framer, limits):
        self._framer = framer
        self._limits = limits
        self._pending = b""
        self._codec = None
        self._resampler = mono_resampler()

    @property
    def buffered_bytes(self):
        """Bytes held for a unit still arriving: at most one unit, however long the stream."""
        return len(self._pending)

    def decode(self, data, budget=None):
        """16 kHz mono float32 for the units `data` completes; state is unchanged if it raises.

        `budget` bounds the decoded seconds and codec frames (DecodeLimitExceeded past it).
        """
        framer = copy.deepcopy(self._framer)
        buf = self._pending + data
        budget = budget or Budget()
        units, consumed = framer.parse(buf, budget)
        if len(buf) - consumed > self._limits.unit_bytes:
            raise UndecodableAudio(f"a {framer.kind} unit is larger than {self._limits.unit_bytes} bytes")
        samples = self._decode_units(framer, units, budget)
        self._framer, self._pending = framer, buf[consumed:]
        return samples

    def flush(self, budget=None):
        """End of stream: the last unit (if whole) and whatever the codec and resampler hold."""
        budget = budget or Budget()
        units = self._framer.finish(self._pending, budget)
        self._pending = b""
        parts = [self._decode_units(self._framer, units, budget)] if units else []
        if self._codec is not None:
            parts.append(self._resample(self._codec.decode(None), budget))
        parts.append(join_frames(self._resampler.resample(None)))
        return np.concatenate(parts)

    def _decode_units(self, framer, units, budget):
        """Decode packet by packet, checking the budget before each packet and each resample."""
        if not units:
            return np.zeros(0, np.float32)
        out = _Samples()
        try:
            for packet in framer.packets(units):
                budget.frame()
                if self._codec is None:
                    self._codec = framer.codec()
                out.add(self._resample(self._codec.decode(packet), budget))
        except (av.FFmpegError, ValueError) as exc:
            # Part of the chunk went through the codec before it was refused: start the codec
            # afresh, so a refused chunk leaves no half-decoded state behind it.
            self._codec, self._resampler = None, mono_resampler()
            if isinstance(exc, DecodeLimitExceeded):
                raise
            raise UndecodableAudio(f"{framer.kind} audio could not be decoded: {exc}") from None
        return out.joined()

    def _resample(self, frames, budget):
        out = []
        for frame in frames:
            budget.audio(frame.samples, frame.sample_rate)
            frame.pts = None  # timing comes from the sample count, not from the container
            out += self._resampler.resample(frame)
        return join_frames(out)


class _Samples:
    """Per-packet outputs joined in batches: numpy holds the GIL while it joins, and one join of
    tens of thousands of small arrays at the end held it (and so the hub) for over half a second."""

    _BATCH = 256

    def __init__(self):
        self._joined, self._batch = [], []

    def add(self, samples):
        self._batch.append(samples)
        if len(self._batch) >= self._BATCH:
            self._joined.append(np.concatenate(self._batch))
            self._batch = []

    def joined(self):
        return np.concatenate(self._joined + self._batch) if self._joined or self._batch else np.zeros(0, np.float32)


class _DemuxedFramer:
    """Shared by the framers whose units need the container's header to be demuxed."""

    kind = "container"
    av_format = None

    def __init__(self, limits):
        self.header = None
        self._limits = limits
        self._head = bytearray()  # grows in amortised O(1): many small header elements stay linear
        self._stream_params = None

    def _add_header(self, data):
        self._head += data
        if len(self._head) > self._limits.header_bytes:
            raise UndecodableAudio(f"the {self.kind} header is larger than {self._limits.header_bytes} bytes")

    def packets(self, units):
        """The audio packets in `units`, demuxed behind the header with PyAV, one at a time."""
        blob = self.header + self.wrap(units)
        with av.open(io.BytesIO(blob), format=self.av_format) as container:
            if not container.streams.audio:
                raise ValueError("no audio track")
            stream = container.streams.audio[0]
            first = self._stream_params is None
            if first:
                ctx = stream.codec_context
                if ctx is None or ctx.layout is None:  # a codec id libavcodec does not know
                    raise ValueError("the audio track's codec is not supported")
                self._stream_params = (ctx.name, ctx.extradata, ctx.sample_rate, ctx.layout.name)
            for packet in container.demux(stream):
                if packet.size:
                    # Every demux marks its first packet to skip the codec's start-up delay (Opus
                    # pre-skip); only the stream's true first packet may carry that, so later
                    # packets go to the decoder as bare payloads.
                    yield packet if first else av.Packet(bytes(packet))

    def codec(self):
        name, extradata, rate, layout = self._stream_params
        ctx = av.CodecContext.create(name, "r")
        if extradata:
            ctx.extradata = extradata
        ctx.sample_rate = rate
        ctx.layout = layout
        return ctx

    def wrap(self, units):
        return b"".join(units)

    def finish(self, rest, budget):
        """At the end of the stream: any last unit that needs no successor to be known complete."""
        if rest and self.header is None:
            raise UndecodableAudio(f"the stream ended inside the {self.kind} header")
        return []

    def __deepcopy__(self, memo):
        clone = copy.copy(self)
        clone.__dict__ = {k: copy.copy(v) for k, v in self.__dict__.items()}
        return clone


class OggFramer(_DemuxedFramer):
    """Ogg pages; header pages have granule position 0; a unit ends where a packet ends."""

    kind, av_format = "ogg", "ogg"

    def parse(self, buf, budget):
        units, pos, unit_start = [], 0, 0
        while len(buf) - pos >= 27:
            budget.frame()
            if buf[pos:pos + 4] != b"OggS" or buf[pos + 4] != 0:
                raise UndecodableAudio("not an Ogg page where one should start")
            segments = buf[pos + 26]
            if len(buf) - pos < 27 + segments:
                break
            lacing = buf[pos + 27:pos + 27 + segments]
            end = pos + 27 + segments + sum(lacing)
            if end > len(buf):
                break
            granule = struct.unpack_from("<q", buf, pos + 6)[0]
            if self.header is None and granule == 0:
                self._add_header(buf[pos:end])
                pos = unit_start = end
                continue
            if self.header is None:
                if not self._head:
                    raise UndecodableAudio("Ogg stream without its header pages")
                self.header = bytes(self._head)
            pos = end
            # A last lacing value of 255 means the packet goes on in the next page.
            if not segments or lacing[-1] != 255:
                units.append(buf[unit_start:pos])
                unit_start = pos
        return units, unit_start


class MatroskaFramer(_DemuxedFramer):
    """WebM as MediaRecorder writes it: EBML header, Segment, then Clusters of SimpleBlocks.

    Each block is a unit; a demux sees the header and a synthetic Cluster (unknown size,
    timecode 0) holding the new blocks, because audio decoding does not need timestamps.
    """

    kind, av_format = "webm", "matroska"
    _EBML, _SEGMENT, _CLUSTER = 0x1A45DFA3, 0x18538067, 0x1F43B675
    _BLOCKS = (0xA3, 0xA0)  # SimpleBlock, BlockGroup
    _CLUSTER_CHILDREN = (0xE7, 0xA7, 0xAB, 0xA3, 0xA0, 0xAF, 0x5854)
    _SYNTHETIC_CLUSTER = bytes.fromhex("1f43b675" "01ffffffffffffff" "e78100")
    _UNKNOWN = -1

    def __init__(self, limits):
        super().__init__(limits)
        self._in_segment = False
        self._in_cluster = False

    def parse(self, buf, budget):
        units, pos = [], 0
        while True:
            element = _ebml_element(buf, pos)
            if element is None:
                break
            budget.frame()
            element_id, size, body = element
            if not self._in_segment:
                if element_id == self._EBML and size != self._UNKNOWN:
                    if body + size > len(buf):
                        break
                    self._add_header(buf[pos:body + size])
                    pos = body + size
                    continue
                if element_id != self._SEGMENT or not self._head:
                    raise UndecodableAudio("not a WebM/Matroska stream")
                # Keep the Segment open-ended: the demuxer then reads on to whatever follows.
                self._add_header(_ebml_id_bytes(element_id) + b"\x01\xff\xff\xff\xff\xff\xff\xff")
                self._in_segment, pos = True, body
                continue
            if element_id == self._CLUSTER:
                if self.header is None:
                    self.header = bytes(self._head)
                self._in_cluster, pos = True, body
                continue
            if size == self._UNKNOWN:
                raise UndecodableAudio("a WebM element of unknown size where none may be")
            allowed = _LEVEL1 + _ANYWHERE + (self._CLUSTER_CHILDREN if self._in_cluster else ())
            if element_id not in allowed:
                raise UndecodableAudio(f"unexpected WebM element 0x{element_id:X}")
            if body + size > len(buf):
                break
            if element_id in _LEVEL1:
                self._in_cluster = False
            if self.header is None:
                self._add_header(buf[pos:body + size])
            elif element_id in self._BLOCKS and self._in_cluster:
                units.append(buf[pos:body + size])
            pos = body + size
        return units, pos

    def wrap(self, units):
        return self._SYNTHETIC_CLUSTER + b"".join(units)


# Level-1 children of a Matroska Segment other than Cluster: SeekHead, Info, Tracks, Cues,
# Attachments, Chapters, Tags; and Void and CRC-32, which may appear anywhere.
_LEVEL1 = (0x114D9B74, 0x1549A966, 0x1654AE6B, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367)
_ANYWHERE = (0xEC, 0xBF)


def _ebml_vint(buf, pos, keep_marker):
    """(value, length) of the EBML variable-length integer at `pos`, None if incomplete."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first == 0:
        raise UndecodableAudio("invalid EBML number")
    length = 9 - first.bit_length()
    if pos + length > len(buf):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    for byte in buf[pos + 1:pos + length]:
        value = (value << 8) | byte
    return value, length


def _ebml_element(buf, pos):
    """(id, size or -1 for unknown, body offset) of the element at `pos`, None if incomplete."""
    head = _ebml_vint(buf, pos, keep_marker=True)
    if head is None:
        return None
    element_id, id_len = head
    if id_len > 4:
        raise UndecodableAudio("invalid EBML element id")
    sized = _ebml_vint(buf, pos + id_len, keep_marker=False)
    if sized is None:
        return None
    size, size_len = sized
    if size == (1 << (7 * size_len)) - 1:
        size = MatroskaFramer._UNKNOWN
    return element_id, size, pos + id_len + size_len


def _ebml_id_bytes(element_id):
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


class Mp4Framer(_DemuxedFramer):
    """ISO BMFF boxes: ftyp+moov is the header, each moof+mdat fragment a unit.

    A progressive (unfragmented) MP4 has absolute offsets into one mdat, so it is kept whole
    (up to the unit limit) and decoded when the stream ends; live clients send fragments.
    """

    kind, av_format = "mp4", "mp4"
    _KNOWN = MP4_BOXES

    def __init__(self, limits):
        super().__init__(limits)
        self._moof = None
        self._whole = None  # the parts of an unfragmented file, joined when it ends
        self._whole_bytes = 0

    def parse(self, buf, budget):
        units, pos = [], 0
        while len(buf) - pos >= 8:
            budget.frame()
            size, box = struct.unpack_from(">I4s", buf, pos)
            header_len = 8
            if box not in self._KNOWN:
                raise UndecodableAudio("not an MP4 box where one should start")
            if size == 1:
                if len(buf) - pos < 16:
                    break
                size, header_len = struct.unpack_from(">Q", buf, pos + 8)[0], 16
            elif size == 0:
                break  # "to the end of the file": complete only when the stream ends
            if size < header_len:
                raise UndecodableAudio("an MP4 box with an impossible size")
            if pos + size > len(buf):
                break
            data = buf[pos:pos + size]
            pos += size
            if self._whole is not None:
                self._add_whole(data)
            elif box == b"moof":
                self._moof = data
            elif box == b"mdat" and self._moof is not None:
                if self.header is None:
                    raise UndecodableAudio("an MP4 fragment before the moov header")
                units.append(self._moof + data)
                self._moof = None
            elif box == b"mdat":
                self._whole = [bytes(self._head)]
                self._whole_bytes = len(self._head)
                self._add_whole(data)
            elif self.header is None:
                self._add_header(data)
                if box == b"moov":
                    self.header = bytes(self._head)
        return units, pos

    def _add_whole(self, data):
        self._whole.append(data)
        self._whole_bytes += len(data)
        if self._whole_bytes > self._limits.unit_bytes:
            raise UndecodableAudio(f"an unfragmented MP4 over {self._limits.unit_bytes} bytes: "
                                   "send fragmented MP4")

    def finish(self, rest, budget):
        if self._whole is not None:
            whole, self._whole, self.header = b"".join(self._whole) + rest, None, b""
            return [whole]
        return super().finish(rest, budget)


class Mp3Framer:
    """MPEG audio frames, found by their headers; an ID3v2 tag up front is skipped."""

    kind = "mp3"
    _MPEG1_L3 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    _MPEG1_L2 = (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384)
    _MPEG2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
    _RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
    _LAYER_III, _LAYER_II = 1, 2  # values of the header's two layer bits

    def __init__(self, limits):
        self._limits = limits
        self._started = False

    def parse(self, buf, budget):
        units, pos = [], 0
        if not self._started:
            if len(buf) < 10:
                return [], 0
            if buf[:3] == b"ID3":
                size = 10 + ((buf[6] & 0x7F) << 21 | (buf[7] & 0x7F) << 14 | (buf[8] & 0x7F) << 7 | buf[9] & 0x7F)
                if size > self._limits.header_bytes:
                    raise UndecodableAudio(f"the ID3 tag is larger than {self._limits.header_bytes} bytes")
                if len(buf) < size:
                    return [], 0
                pos = size
            self._started = True
        while len(buf) - pos >= 4:
            budget.frame()
            if buf[pos:pos + 3] == b"TAG":  # an ID3v1 tag closes the file
                if len(buf) - pos < 128:
                    break
                pos += 128
                continue
            length = self._frame_length(buf[pos:pos + 4])
            if pos + length > len(buf):
                break
            units.append(buf[pos:pos + length])
            pos += length
        return units, pos

    def _frame_length(self, head):
        """Bytes in the frame whose 4-byte header is `head` (MPEG-1/2/2.5, Layer II or III)."""
        b1, b2 = head[1], head[2]
        if head[0] != 0xFF or b1 & 0xE0 != 0xE0:
            raise UndecodableAudio("lost MPEG audio frame sync")
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
        if version == 1 or layer not in (self._LAYER_III, self._LAYER_II) or bitrate_index in (0, 15) \
                or rate_index == 3:
            raise UndecodableAudio("not an MPEG audio (Layer II/III) frame header")
        mpeg1 = version == 3
        if mpeg1:
            kbps = (self._MPEG1_L3 if layer == self._LAYER_III else self._MPEG1_L2)[bitrate_index]
        else:
            kbps = self._MPEG2[bitrate_index]
        rate = self._RATES[version][rate_index]
        samples_per_frame = 576 if (layer == self._LAYER_III and not mpeg1) else 1152
        return samples_per_frame // 8 * kbps * 1000 // rate + padding

    def packets(self, units):
        return (av.Packet(unit) for unit in units)

    def codec(self):
        return av.CodecContext.create("mp3", "r")

    def finish(self, rest, budget):
        return []

"""Audio for the decoder tests and benches: short tones, long silence, and framing floods.

Silence is what a codec packs tightest, so a small chunk of it decodes to the most audio:
the worst input per byte a real encoder writes. Files are built with PyAV block by block
(an hour of silence never exists whole as samples) and cached in tests/.cache/audio.
"""
import hashlib
import json

import numpy as np

import live
import speechgen

_VERSION = 1
# Per format: (container format, codec, codec rate, muxer options, bit rate) of the densest
# real encoding: Opus at its 6 kbit/s floor, MP3 at MPEG-2.5's 8 kbit/s, AAC at 8 kbit/s.
DENSEST = {
    "ogg": ("ogg", "libopus", 48000, {}, 6000),
    "webm": ("webm", "libopus", 48000, {"live": "1"}, 6000),
    "mp4": ("mp4", "aac", 8000, {"movflags": "frag_keyframe+empty_moov+default_base_moof",
                                 "frag_duration": "5000000"}, 8000),
    "mp3": ("mp3", "libmp3lame", 8000, {}, 8000),
    "flac": ("flac", "flac", 8000, {}, None),
}
FORMATS = tuple(DENSEST)


def silence(fmt, seconds, rate=8000):
    """`seconds` of digital silence encoded as densely as format `fmt` allows, cached."""
    recipe = {"v": _VERSION, "fmt": fmt, "seconds": seconds, "rate": rate}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]
    speechgen.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = speechgen.CACHE_DIR / f"silence-{digest}.{fmt}"
    if not path.exists():
        container_format, codec, codec_rate, options, bit_rate = DENSEST[fmt]
        block = np.zeros(rate * 10, np.int16)
        blocks = (block for _ in range(int(seconds) // 10))
        data = speechgen.encode_blocks(blocks, rate, container_format, codec, codec_rate, options,
                                       bit_rate=bit_rate)
        staged = path.with_suffix(".tmp")
        staged.write_bytes(data)
        staged.replace(path)
    return path.read_bytes()


def worst_chunk(fmt, max_bytes=1024 * 1024):
    """The most audio a chunk of `max_bytes` (HARKEN_MAX_CHUNK_BYTES) of format `fmt` can carry."""
    return silence(fmt, 3600)[:max_bytes]


def tone(fmt, seconds=2.0, rate=16000):
    """A 440 Hz tone of `seconds` in format `fmt` (one of FORMATS or "wav"), as bytes a client sends."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype(np.int16)
    if fmt == "wav":
        return live.tone_wav(seconds, rate)
    container_format, codec, codec_rate, options = speechgen.FORMATS[fmt]
    return speechgen.encode_blocks([samples], rate, container_format, codec, codec_rate, options)


def flac_metadata(data):
    """`fLaC` and the metadata blocks of the FLAC stream `data`: everything before its first frame."""
    pos = 4
    while True:
        last, size = data[pos] & 0x80, int.from_bytes(data[pos + 1:pos + 4], "big")
        pos += 4 + size
        if last:
            return data[:pos]


def flac_sync_flood(size):
    """Defect 1 of issue 14: a valid FLAC header, then `size` bytes of FLAC frame sync codes."""
    return flac_metadata(silence("flac", 10)) + b"\xff\xf8" * (size // 2)


def _ogg_page(granule, payload, serial=1, seq=2):
    """One Ogg page (CRC left zero: the framer does not check it, libavformat may refuse it)."""
    lacing = bytes([255] * (len(payload) // 255) + [len(payload) % 255])
    return (b"OggS\x00\x00" + granule.to_bytes(8, "little") + serial.to_bytes(4, "little")
            + seq.to_bytes(4, "little") + b"\x00" * 4 + bytes([len(lacing)]) + lacing + payload)


def framing_floods(size=1024 * 1024):
    """Per format, a valid header then `size` bytes of the smallest units its framing allows.

    Each is a worst case for the framer's work per byte (many tiny units) rather than for
    the codec; bench/decode_hub.py and the fuzz smoke test run them.
    """
    ogg, webm = silence("ogg", 10), silence("webm", 10)
    ogg_header_end = ogg.index(b"OggS", ogg.index(b"OpusTags"))
    webm_cluster = webm.index(bytes.fromhex("1f43b675"))
    return {
        "flac": flac_sync_flood(size),
        "ogg": ogg[:ogg_header_end] + _ogg_page(960, b"\xf8") * (size // 29),
        "webm": webm[:webm_cluster] + bytes.fromhex("1f43b67501ffffffffffffff") + b"\xec\x80" * (size // 2),
        "mp4": b"\x00\x00\x00\x10ftypiso6\x00\x00\x00\x00" + b"\x00\x00\x00\x08free" * (size // 8),
        "mp3": b"\xff\xf3\x14\xc4" + b"\x00" * 20 + (b"\xff\xf3\x14\xc4" + b"\x00" * 20) * (size // 24),
    }

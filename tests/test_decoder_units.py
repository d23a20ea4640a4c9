"""The decoders' limits and linearity, in process: each bound is generous, a hang catcher only."""
import time

import numpy as np
import pytest

import audiofiles
import live
from app.audio import Budget, DecodeLimitExceeded, DecodeLimits, UndecodableAudio, open_decoder
from app.audio.pcm import PcmDecoder, WavDecoder
from app.audio.sniff import could_start_stream


def _timed(func, *args):
    began = time.perf_counter()
    try:
        func(*args)
    except (UndecodableAudio, DecodeLimitExceeded) as exc:
        return time.perf_counter() - began, exc
    return time.perf_counter() - began, None


@pytest.mark.parametrize("fmt", audiofiles.FORMATS)
def test_framing_flood_is_handled_in_linear_time(fmt):
    """1 MiB of the container's smallest units: refused or decoded within seconds, never a freeze."""
    flood = audiofiles.framing_floods()[fmt]
    elapsed, _ = _timed(open_decoder(f".{fmt}").decode, flood, Budget(1800, 200_000))
    assert elapsed < 30


def test_flac_sync_flood_is_refused_at_once():
    """Defect 1 in process: FF F8 after a valid header is not a frame header (its CRC-8 fails)."""
    elapsed, refusal = _timed(open_decoder(".flac").decode, audiofiles.flac_sync_flood(1 << 20))
    assert isinstance(refusal, UndecodableAudio) and elapsed < 1


def test_decode_bomb_stops_at_the_budget_before_resampling():
    """1 MiB of PCM at 1 Hz would be 6 days of audio at 16 kHz: refused before any resampling."""
    elapsed, refusal = _timed(PcmDecoder(1, 1).decode, bytes(1 << 20), Budget(seconds=1800))
    assert isinstance(refusal, DecodeLimitExceeded) and refusal.kind == "seconds" and elapsed < 1


def test_refused_chunk_leaves_the_decoder_as_it_was():
    """Past the budget nothing is consumed: the same bytes decode whole under a larger budget."""
    data = audiofiles.silence("flac", 120)
    decoder = open_decoder(".flac")
    with pytest.raises(DecodeLimitExceeded):
        decoder.decode(data, Budget(seconds=60))
    samples = np.concatenate([decoder.decode(data, Budget(seconds=200)), decoder.flush()])
    assert abs(len(samples) / 16000 - 120) < 0.5


def test_wav_header_in_one_byte_chunks_is_linear():
    """A 256 KiB header of skipped chunks, one byte per call, then the data: work linear in bytes."""
    wav = live.tone_wav(1.0)
    junk = b"junk" + (256 * 1024).to_bytes(4, "little") + bytes(256 * 1024)
    data = wav[:12] + junk + wav[12:]
    decoder = WavDecoder(DecodeLimits())
    began = time.perf_counter()
    out = [decoder.decode(data[i:i + 1]) for i in range(len(junk) + 100)] + [decoder.decode(data[len(junk) + 100:])]
    assert time.perf_counter() - began < 30
    assert len(np.concatenate(out)) == 16000


def test_wav_header_past_the_limit_is_refused():
    header = b"RIFF\x00\x00\x00\x00WAVE" + b"junk" + (2 << 20).to_bytes(4, "little")
    with pytest.raises(UndecodableAudio, match="no WAV data chunk"):
        WavDecoder(DecodeLimits(header_bytes=1 << 20)).decode(header)


@pytest.mark.parametrize("head, possible", [
    (b"Ogg", True), (b"OggS\x00\x02", True), (b"fL", True), (b"RIFF\x10\x00", True),
    (b"RIFF\x10\x00\x00\x00WA", True), (b"\x1a\x45", True), (b"ID3\x04", True), (b"\xff\xfb", True),
    (b"\x00\x00\x00\x18ftyp", True), (b"\x00\x00\x00\x08fr", True),
    (b"garbage", False), (b"\x01\x02\x03", False), (b"RIFX", False), (b"OggX", False),
    (b"\xff\x00", False), (b"\x00\x00\x00\x18abcd", False), (b"hello world", False),
])
def test_what_may_start_a_stream(head, possible):
    """Short first chunks are held only when more bytes could still make a stream of them."""
    assert could_start_stream(head, 1 << 20) is possible

"""The incremental container decoders: the same samples whatever the chunking, garbage refused harmlessly."""
import numpy as np
import pytest
import soundfile

import speechgen
from app.audio import UndecodableAudio, container, open_decoder

CONTAINERS = ["ogg", "webm", "mp4", "mp3", "flac"]
# Codec delay and frame padding differ per format: AAC and MP3 pad whole frames (1024 and
# 1152 samples at 44.1 kHz) at each end.
LENGTH_SLACK_S = 0.08
GARBAGE = b"this is not audio at all, just text in a chunk " * 40


@pytest.fixture(scope="module")
def fox():
    """A spoken sentence as 16 kHz samples and its WAV path."""
    path = speechgen.speak("The quick brown fox jumps over the lazy dog near the river bank.")
    return path, soundfile.read(path, dtype="float32")[0]


def _decode_all(decoder, chunks):
    return np.concatenate([decoder.decode(chunk) for chunk in chunks] + [decoder.flush()])


def _envelope(samples, frame=320):
    usable = len(samples) - len(samples) % frame
    return np.sqrt(np.mean(samples[:usable].reshape(-1, frame) ** 2, axis=1))


def _similarity(a, b):
    """Correlation of 20 ms loudness envelopes at the best small lag (lossy codecs keep the envelope)."""
    ea, eb = _envelope(a), _envelope(b)
    n = min(len(ea), len(eb)) - 10
    return max(np.corrcoef(ea[5:5 + n], eb[5 + lag:5 + lag + n])[0, 1] for lag in range(-5, 5))


@pytest.mark.parametrize("fmt", CONTAINERS)
@pytest.mark.parametrize("sizes", [[1 << 20], [1000, 7, 333, 4096], [97]], ids=["whole", "mixed", "tiny"])
def test_chunking_does_not_change_the_audio(fox, fmt, sizes):
    """Cut anywhere, each container decodes to the speech that was encoded."""
    path, reference = fox
    data = speechgen.encode(path, fmt).read_bytes()
    samples = _decode_all(open_decoder(f".{fmt}"), speechgen.split_chunks(data, sizes))
    assert abs(len(samples) - len(reference)) / 16000 < LENGTH_SLACK_S
    assert _similarity(reference, samples) > 0.9


@pytest.mark.parametrize("fmt", CONTAINERS)
def test_output_starts_before_the_stream_ends(fox, fmt):
    """Audio comes out while the stream is still arriving, not only at flush."""
    path, _ = fox
    data = speechgen.encode(path, fmt).read_bytes()
    decoder = open_decoder(f".{fmt}")
    early = sum(len(decoder.decode(chunk)) for chunk in speechgen.split_chunks(data[:len(data) // 2], [2000]))
    assert early > 16000 * 0.5


@pytest.mark.parametrize("fmt", CONTAINERS)
def test_wrong_suffix_is_sniffed(fox, fmt):
    """A stream announced as the default .mp4 is still read by what its bytes say."""
    path, reference = fox
    data = speechgen.encode(path, fmt).read_bytes()
    samples = _decode_all(open_decoder(".mp4"), speechgen.split_chunks(data, [4096]))
    assert _similarity(reference, samples) > 0.9


@pytest.mark.parametrize("fmt", CONTAINERS)
def test_garbage_first_chunk_is_refused(fmt):
    """Bytes that are not the announced container raise and leave the decoder fresh."""
    decoder = open_decoder(f".{fmt}")
    with pytest.raises(UndecodableAudio):
        decoder.decode(GARBAGE)


@pytest.mark.parametrize("fmt", [f for f in CONTAINERS if f != "flac"])
def test_garbage_between_units_is_refused_and_harmless(fox, fmt):
    """Garbage after whole units is refused; the stream then goes on as if it never came."""
    path, reference = fox
    data = speechgen.encode(path, fmt).read_bytes()
    half = len(data) // 2
    decoder = container.open_container_decoder(fmt)
    parts = [decoder.decode(data[:half])]
    pending = half
    # Feed on until the decoder holds no partial unit, so the garbage lands on a boundary.
    for cut in range(half + 1, len(data)):
        parts.append(decoder.decode(data[pending:cut]))
        pending = cut
        if not decoder.buffered_bytes:
            break
    with pytest.raises(UndecodableAudio):
        decoder.decode(GARBAGE)
    parts += [decoder.decode(data[pending:]), decoder.flush()]
    samples = np.concatenate(parts)
    assert abs(len(samples) - len(reference)) / 16000 < LENGTH_SLACK_S
    assert _similarity(reference, samples) > 0.9


def test_flac_garbage_where_a_frame_must_start_is_refused(fox):
    """A FLAC frame ends only where the next begins, so garbage is provable right after the header."""
    path, reference = fox
    data = speechgen.encode(path, "flac").read_bytes()
    first_frame = data.index(b"\xff\xf8", 4)
    decoder = container.open_container_decoder("flac")
    parts = [decoder.decode(data[:first_frame])]
    with pytest.raises(UndecodableAudio):
        decoder.decode(GARBAGE)
    parts += [decoder.decode(chunk) for chunk in speechgen.split_chunks(data[first_frame:], [5000])]
    samples = np.concatenate(parts + [decoder.flush()])
    assert abs(len(samples) - len(reference)) / 16000 < LENGTH_SLACK_S
    assert _similarity(reference, samples) > 0.9


@pytest.mark.parametrize("fmt", CONTAINERS)
def test_memory_stays_bounded_on_a_long_stream(fmt):
    """Two minutes of speech in small chunks: the decoder never holds more than one unit."""
    sentence = speechgen.speak("Memory must stay bounded however long the session runs.")
    long_wav = speechgen.CACHE_DIR / "long-two-minutes.wav"
    if not long_wav.exists():
        samples = soundfile.read(sentence, dtype="int16")[0]
        soundfile.write(long_wav, np.tile(samples, int(120 * 16000 / len(samples)) + 1), 16000,
                        subtype="PCM_16")
    data = speechgen.encode(long_wav, fmt).read_bytes()
    decoder = container.open_container_decoder(fmt)
    most, total = 0, 0
    for chunk in speechgen.split_chunks(data, [3000]):
        total += len(decoder.decode(chunk))
        most = max(most, decoder.buffered_bytes)
    assert total / 16000 > 110
    assert most < 64 * 1024


def test_truncated_header_at_the_end_is_refused():
    """A stream that ends inside its header cannot be decoded and says so."""
    decoder = open_decoder(".ogg")
    decoder.decode(b"OggS\x00\x02" + bytes(10))
    with pytest.raises(UndecodableAudio):
        decoder.flush()

"""How the client paces a file in real time without decoding it: exact byte rates from headers and start options."""
import struct
import wave
from pathlib import Path

import pytest

from client.audio import NOMINAL_BITRATE_BPS, Pacing, file_duration_s, pacing, wav_pacing

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sales-call.ogg"


def write_wav(path, rate_hz, channels, seconds, extra_chunk=b""):
    """A 16-bit WAV; `extra_chunk` (a whole RIFF chunk) goes between `fmt ` and `data`."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(bytes(int(rate_hz * channels * 2 * seconds)))
    if extra_chunk:
        data = path.read_bytes()
        at = data.index(b"data")
        body = data[12:at] + extra_chunk + data[at:]
        path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return path


def test_wav_header_gives_byte_rate_and_header_size(tmp_path):
    """A 48 kHz stereo WAV plays 192000 bytes a second after its 44-byte header."""
    path = write_wav(tmp_path / "a.wav", 48000, 2, 1.0)
    assert wav_pacing(path) == Pacing(192000, 44)
    assert pacing(path, ".wav").seconds_at(44 + 96000) == 0.5
    assert pacing(path, ".wav").seconds_at(20) == 0.0


def test_wav_chunks_before_data_are_skipped(tmp_path):
    """A LIST chunk (odd-sized, so padded) between fmt and data moves the header end, not the rate."""
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    path = write_wav(tmp_path / "b.wav", 16000, 1, 0.5, extra_chunk=listing)
    assert wav_pacing(path) == Pacing(32000, 44 + len(listing))


def test_not_a_wav(tmp_path):
    """Anything without a RIFF/WAVE header is not paced as WAV."""
    path = tmp_path / "c.wav"
    path.write_bytes(b"OggS" + bytes(100))
    assert wav_pacing(path) is None


@pytest.mark.parametrize("suffix, options, rate", [
    (".pcm", {}, 32000),
    (".raw", {"sample_rate": 8000, "channels": 2}, 32000),
    (".PCM", {"sample_rate": 48000}, 96000),
])
def test_raw_pcm_rate_comes_from_the_start_options(tmp_path, suffix, options, rate):
    """Headerless s16le plays sample_rate × channels × 2 bytes a second (server defaults 16 kHz mono)."""
    path = tmp_path / f"d{suffix}"
    path.write_bytes(bytes(1000))
    assert pacing(path, suffix, **options) == Pacing(rate)


def test_compressed_audio_uses_the_duration_or_a_nominal_bitrate(tmp_path):
    """Opus, MP3, AAC: size over the given duration; without one, 64 kbit/s."""
    path = tmp_path / "e.webm"
    path.write_bytes(bytes(40000))
    assert pacing(path, ".webm", duration_s=10.0) == Pacing(4000)
    assert pacing(path, ".webm") == Pacing(NOMINAL_BITRATE_BPS / 8, estimated=True)


def test_compressed_file_duration_is_read_from_its_header():
    """The bundled Ogg/Opus sample's duration comes from its own header (tinytag), so it is paced exactly."""
    duration_s = file_duration_s(SAMPLE)
    assert duration_s == pytest.approx(30.447, abs=0.01)
    pace = pacing(SAMPLE, ".ogg")
    assert not pace.estimated
    assert pace.seconds_at(SAMPLE.stat().st_size) == pytest.approx(duration_s)


def test_streams_without_a_path_are_paced_only_when_their_rate_is_known():
    """Raw PCM from a pipe is paced by its rate; a compressed stream needs its size and duration."""
    assert pacing(None, ".pcm", sample_rate=8000) == Pacing(16000)
    assert pacing(None, ".ogg", duration_s=4.0, total_bytes=8000) == Pacing(2000)
    with pytest.raises(ValueError, match="live source"):
        pacing(None, ".ogg")

"""Coverage-guided fuzzing of every decoder entry point with atheris (libFuzzer for Python).

    .venv/bin/python tests/fuzzdecoders.py CORPUS_DIR [libFuzzer flags, e.g. -max_total_time=60]
    .venv/bin/python tests/fuzzdecoders.py --seeds DIR   # write the seed corpus and stop

An input is one byte choosing the entry point (the sniffing decoder behind each suffix, each
container decoder on its own, the WAV decoder, headerless PCM), one byte choosing how the
rest is cut into chunks, then the stream. Each chunk is decoded as a session would, within a
small budget, then the stream is flushed. Refusals (UndecodableAudio, DecodeLimitExceeded)
are the decoders' contract; any other exception, or an input that takes longer than
SLOW_S, is a finding: libFuzzer writes it to its artifact prefix, and it is kept under
tests/fuzz_corpus/decoders/ as a case test_decoder_fuzz.py replays.

Seeds are real files of every format, made with PyAV (tests/audiofiles.py) when the run
starts, so no binary seed is checked in.
"""
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # run as the fuzzer: instrument the decoders for coverage first
    import atheris
    with atheris.instrument_imports(include=["app.audio"]):
        import app.audio  # noqa: F401

from app.audio import Budget, DecodeLimitExceeded, UndecodableAudio, open_decoder  # noqa: E402
from app.audio.container import open_container_decoder  # noqa: E402
from app.audio.limits import DecodeLimits  # noqa: E402
from app.audio.pcm import PcmDecoder, WavDecoder  # noqa: E402

SUFFIXES = (".wav", ".ogg", ".webm", ".mp4", ".mp3", ".flac")
KINDS = ("ogg", "webm", "mp4", "mp3", "flac")
# Small limits, so that what a default limit would stop after 1 MiB is stopped after a few KiB.
LIMITS = DecodeLimits(header_bytes=64 * 1024, unit_bytes=256 * 1024)
BUDGET_SECONDS, BUDGET_FRAMES = 120.0, 20_000
CHUNKINGS = (1 << 30, 61, 509, 4096)
SLOW_S = 5.0
ENTRIES = len(SUFFIXES) + len(KINDS) + 2
KEPT = Path(__file__).resolve().parent / "fuzz_corpus" / "decoders"


class SlowInput(Exception):
    """An input the decoders took longer than SLOW_S over: work not linear in the input."""


def _decoder(entry, stream):
    if entry < len(SUFFIXES):
        return open_decoder(SUFFIXES[entry], limits=LIMITS)
    entry -= len(SUFFIXES)
    if entry < len(KINDS):
        return open_container_decoder(KINDS[entry], LIMITS)
    if entry == len(KINDS):
        return WavDecoder(LIMITS)
    rate = 8000 + 1000 * (stream[0] % 41) if stream else 16000
    channels = 1 + (stream[1] % 8) if len(stream) > 1 else 1
    return PcmDecoder(rate, channels)


def one_input(data):
    """Decode `data` as described in the module docstring; raise only on a finding."""
    if len(data) < 2:
        return
    entry, chunk = data[0] % ENTRIES, CHUNKINGS[data[1] % len(CHUNKINGS)]
    stream = data[2:]
    began = time.perf_counter()
    try:
        decoder = _decoder(entry, stream)
        for pos in range(0, len(stream), chunk):
            try:
                decoder.decode(stream[pos:pos + chunk], Budget(BUDGET_SECONDS, BUDGET_FRAMES))
            except (UndecodableAudio, DecodeLimitExceeded):
                pass  # refused; the decoder's state is as before, the stream goes on
        decoder.flush(Budget(BUDGET_SECONDS, BUDGET_FRAMES))
    except (UndecodableAudio, DecodeLimitExceeded):
        pass
    elapsed = time.perf_counter() - began
    if elapsed > SLOW_S:
        raise SlowInput(f"{len(data)} bytes took {elapsed:.1f} s (entry {entry}, chunks of {chunk})")


def write_seeds(directory):
    """Every format's real files (tones and silence), once behind each entry point that may read them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import audiofiles
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {fmt: audiofiles.tone(fmt, 0.15)[:6144] for fmt in ("wav",) + audiofiles.FORMATS}
    files.update({f"{fmt}-silence": audiofiles.silence(fmt, 10)[:6144] for fmt in audiofiles.FORMATS})
    for name, data in files.items():
        fmt = name.split("-")[0]
        entries = [SUFFIXES.index(f".{fmt}")]
        if fmt in KINDS:
            entries.append(len(SUFFIXES) + KINDS.index(fmt))
        elif fmt == "wav":
            entries.append(len(SUFFIXES) + len(KINDS))
        for entry in entries:
            for chunking in (0, 2):
                (directory / f"{name}-{entry}-{chunking}").write_bytes(bytes([entry, chunking]) + data)
    (directory / "pcm").write_bytes(bytes([ENTRIES - 1, 3]) + audiofiles.live.tone_pcm(0.1))
    return directory


def main():
    if sys.argv[1:2] == ["--seeds"]:
        write_seeds(sys.argv[2])
        return
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()  # noqa: F821 (imported above when run as a script)


if __name__ == "__main__":
    main()

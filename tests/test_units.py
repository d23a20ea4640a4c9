"""Small unit tests of the pieces under the API: event log, decoders, settings, event catalog."""
import io
import json
from pathlib import Path

import gevent
import numpy as np
import pytest
import soundfile

from app.audio import UndecodableAudio, open_decoder
from app.config import ConfigError, Settings
from app.eventlog import EventLog
from client import events


def _wav(samples, rate_hz, subtype="PCM_16"):
    out = io.BytesIO()
    soundfile.write(out, samples, rate_hz, format="WAV", subtype=subtype)
    return out.getvalue()


def test_event_log_ids_resume_and_bound():
    """Ids start at 1; `after` resumes past any id; the bound drops the oldest events."""
    log = EventLog(max_events=3)
    for n in range(5):
        log.append(events.Status(phase="ingesting", audio_seconds=float(n)))
    assert log.last_id == 5 and log.first_kept_id == 3
    assert [e.id for e in log.after(0)] == [3, 4, 5]
    assert [e.id for e in log.after(4)] == [5]
    assert log.after(5) == []
    assert json.loads(log.after(4)[0].data)["audio_seconds"] == 4.0


def test_event_log_wakes_waiters_and_refuses_after_close():
    """wait() returns at an append (or at once if one is already there); a closed log takes nothing more."""
    log = EventLog(max_events=10)
    assert log.wait(0, 0.01, []) is False
    gevent.spawn_later(0.01, log.append, events.Done(conversation_id="c", session_id="s"))
    assert log.wait(0, 5.0, []) is True
    assert log.wait(0, 5.0, []) is True and log.wait(1, 0.01, []) is False
    log.close()
    assert log.append(events.Done(conversation_id="c", session_id="s")) is None
    assert log.last_id == 1


def test_wav_decoder_gives_exact_samples_whatever_the_split():
    """One second of 16 kHz WAV cut into 1..97-byte pieces decodes to the same 16,000 samples."""
    signal = (np.sin(np.arange(16000) / 8.0) * 0.5).astype(np.float32)
    data = _wav(signal, 16000)
    whole = open_decoder(".wav").decode(data)
    assert whole.shape == (16000,)
    np.testing.assert_allclose(whole, signal, atol=1 / 32768)
    for step in (1, 7, 97):
        decoder = open_decoder(".wav")
        pieces = [decoder.decode(data[i:i + step]) for i in range(0, len(data), step)]
        np.testing.assert_array_equal(np.concatenate(pieces + [decoder.flush()]), whole)


def test_wav_sent_with_the_default_suffix_is_sniffed():
    """A WAV announced as .mp4 (the default suffix) is still read as WAV."""
    samples = open_decoder(".mp4").decode(_wav(np.zeros(8000, np.float32), 16000))
    assert samples.shape == (8000,)


def test_wav_at_44k_stereo_becomes_16k_mono():
    """Rate and channels are converted: 1 s of 44.1 kHz stereo gives about 16,000 mono samples."""
    stereo = np.zeros((44100, 2), np.float32)
    decoder = open_decoder(".wav")
    total = len(decoder.decode(_wav(stereo, 44100))) + len(decoder.flush())
    assert abs(total - 16000) <= 32


def test_bad_wav_header_raises_and_leaves_the_decoder_usable():
    """A non-RIFF start raises UndecodableAudio; the same decoder then reads a good WAV."""
    decoder = open_decoder(".wav")
    with pytest.raises(UndecodableAudio):
        decoder.decode(b"RIFX\x00\x00\x00\x00WAVEfmt junk junk")
    assert decoder.decode(_wav(np.zeros(1600, np.float32), 16000)).shape == (1600,)


def test_unsupported_wav_sample_format_is_refused():
    """A 64-bit float WAV is refused with a reason, not misread."""
    with pytest.raises(UndecodableAudio, match="unsupported WAV sample format"):
        open_decoder(".wav").decode(_wav(np.zeros(100), 16000, subtype="DOUBLE"))


def test_raw_pcm_keeps_a_split_sample_for_the_next_chunk():
    """An odd byte count keeps the half sample until the next chunk completes it."""
    pcm = (np.arange(10, dtype="<i2") * 1000).tobytes()
    decoder = open_decoder(".pcm", 16000, 1)
    first, second = decoder.decode(pcm[:5]), decoder.decode(pcm[5:])
    assert len(first) == 2 and len(second) == 8
    np.testing.assert_allclose(np.concatenate([first, second]) * 32768, np.arange(10) * 1000)


def test_settings_read_the_environment_and_reject_nonsense():
    """Settings parse types from the environment and name the variable they cannot use."""
    settings = Settings.from_env({"HARKEN_MAX_SESSIONS": "7", "HARKEN_API_KEYS": "a, b,",
                                  "ENABLE_LIVE_STREAMING": "false", "HARKEN_HEARTBEAT_S": "2.5"})
    assert settings.max_sessions == 7 and settings.api_keys == ("a", "b")
    assert settings.live_streaming_enabled is False and settings.heartbeat_s == 2.5
    with pytest.raises(ConfigError, match="HARKEN_MAX_SESSIONS"):
        Settings.from_env({"HARKEN_MAX_SESSIONS": "many"})
    assert Settings.from_env({"HARKEN_ASR_COMPUTE_TYPE": " Float32"}).asr_compute_type == "float32"
    with pytest.raises(ConfigError, match="HARKEN_ASR_COMPUTE_TYPE='int4': expected int8 or float32"):
        Settings.from_env({"HARKEN_ASR_COMPUTE_TYPE": "int4"})


def test_event_round_trip_keeps_unknown_fields():
    """An event read back from its JSON equals the original; unknown keys survive in `extra`."""
    final = events.FinalTranscript(utterance_id="utt_0001", speaker="Speaker_0", t_start=0.5, t_end=1.5,
                                   text="hello there", confidence=0.9,
                                   words=[events.Word("hello", 0.5, 0.9, 0.95)])
    data = json.loads(final.to_json())
    assert data["words"] == [{"word": "hello", "start": 0.5, "end": 0.9, "confidence": 0.95}]
    back = events.parse_event("final_transcript", json.dumps({**data, "novel": 1}), "4")
    assert back == final and back.id == 4 and back.extra == {"novel": 1}
    unknown = events.parse_event("brand_new", '{"x": 1}', "5")
    assert isinstance(unknown, events.UnknownEvent) and unknown.data == {"x": 1}


def test_readme_documents_every_setting():
    """Each environment variable Settings reads has a row in the README's settings table."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [env for env, _ in Settings.documented() if f"| `{env}` |" not in readme]
    assert missing == []


def test_wav_header_with_non_ascii_chunk_ids_is_refused():
    """Zero bytes where a RIFF chunk id belongs are refused at once, not buffered as header."""
    with pytest.raises(UndecodableAudio, match="chunk whose id"):
        open_decoder(".wav").decode(b"RIFF\0\0\0\0WAVE" + b"\0" * 5000)


def test_wav_that_ends_inside_its_header_fails_at_flush():
    """A WAV stream cut before its data chunk reports that at the end instead of passing silently."""
    decoder = open_decoder(".wav")
    decoder.decode(_wav(np.zeros(160, np.float32), 16000)[:30])
    with pytest.raises(UndecodableAudio, match="ended inside the WAV header"):
        decoder.flush()

"""The recorded-file pieces that need no model: speaker clustering, decoding from disk, the document."""
import io

import numpy as np
import pytest
import soundfile

from app.audio import TARGET_RATE_HZ as RATE_HZ, UndecodableAudio
from app.audio.recording import AudioTooLong, RecordingReader, probe
from app.files import document
from app.speech.offline import Segment, assign_speakers
from client.events import FinalTranscript, Moment


def _voice(direction, noise, rng):
    """A unit voice print near `direction`: noise 0.02 per dimension keeps cosine similarity about 0.9, as one real voice scores against itself."""
    vector = direction + noise * rng.standard_normal(len(direction))
    return vector / np.linalg.norm(vector)


def test_speakers_are_clustered_over_the_whole_call_and_numbered_by_first_speech():
    """Two voices alternating, a short turn and one with no voice print: each gets its voice's label."""
    rng = np.random.default_rng(7)
    a, b = np.eye(256)[0], np.eye(256)[1]
    plan = [(b, 2.0), (a, 3.0), (b, 1.5), (a, 0.6), (None, 0.2), (b, 2.5), (a, 4.0)]
    segments, cursor = [], 0
    for direction, seconds in plan:
        segment = Segment(cursor, cursor + int(seconds * RATE_HZ))
        segment.embedding = None if direction is None else _voice(direction, 0.02, rng)
        segments.append(segment)
        cursor = segment.end + RATE_HZ
    assign_speakers(segments, threshold=0.72)
    assert [s.speaker for s in segments] == [0, 1, 0, 1, 1, 0, 1]


def test_two_similar_voices_stay_apart_over_a_long_call():
    """Voices 0.78 alike (their centroids), turns 0.66 alike across and 0.85 within: 40 turns, two speakers.

    Centroid linkage merged them: averaged over many turns, two centroids grow more alike than
    the bar, though no two turns of different speakers are.
    """
    rng = np.random.default_rng(11)
    a = np.eye(256)[0]
    b = 0.78 * np.eye(256)[0] + np.sqrt(1 - 0.78 ** 2) * np.eye(256)[1]
    segments = []
    for turn in range(40):
        segment = Segment(turn * 4 * RATE_HZ, (turn * 4 + 3) * RATE_HZ)
        segment.embedding = _voice(a if turn % 2 == 0 else b, 0.026, rng)
        segments.append(segment)
    assign_speakers(segments, threshold=0.72)
    assert [s.speaker for s in segments] == [turn % 2 for turn in range(40)]


def test_one_voice_stays_one_speaker():
    """The same voice all along never splits, however many turns."""
    rng = np.random.default_rng(3)
    segments = [Segment(i * 3 * RATE_HZ, (i * 3 + 2) * RATE_HZ) for i in range(12)]
    for segment in segments:
        segment.embedding = _voice(np.eye(256)[5], 0.02, rng)
    assign_speakers(segments, threshold=0.72)
    assert {s.speaker for s in segments} == {0}


def _wav(seconds, path):
    t = np.arange(int(seconds * 44100)) / 44100
    soundfile.write(path, 0.2 * np.sin(2 * np.pi * 220 * t), 44100, subtype="PCM_16")
    return path


def test_a_file_decodes_to_16_khz_mono_in_blocks(tmp_path):
    """150 s at 44.1 kHz: three blocks (60, 60, 30 s), 2,400,000 samples, not truncated."""
    reader = RecordingReader(_wav(150, tmp_path / "a.wav"), max_audio_s=3600)
    blocks = list(reader.blocks())
    assert [round(len(b) / RATE_HZ) for b in blocks] == [60, 60, 30]
    assert sum(map(len, blocks)) == pytest.approx(150 * RATE_HZ, abs=64)
    assert blocks[0].dtype == np.float32 and not reader.truncated


def test_a_cut_wav_is_read_to_its_end_and_called_truncated(tmp_path):
    """A WAV whose header announces 10 s but holds 4 s: 4 s decoded, and the reason says why."""
    path = _wav(10, tmp_path / "whole.wav")
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:44 + 4 * 44100 * 2])
    reader = RecordingReader(cut, max_audio_s=3600)
    assert sum(map(len, reader.blocks())) == pytest.approx(4 * RATE_HZ, abs=64)
    assert reader.truncated and "10.0 s its header announces" in reader.truncation


def test_the_audio_limit_stops_decoding_and_probe_refuses_what_it_announces(tmp_path):
    """max_audio_s bounds both: the reader stops at it, probe refuses a file announcing more."""
    path = _wav(5, tmp_path / "five.wav")
    reader = RecordingReader(path, max_audio_s=2)
    assert sum(map(len, reader.blocks())) == 2 * RATE_HZ and reader.truncated
    with pytest.raises(AudioTooLong):
        probe(path, max_audio_s=2)
    assert probe(path, max_audio_s=60).duration_s == pytest.approx(5.0, abs=0.01)


def test_probe_refuses_what_ffmpeg_cannot_read(tmp_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"definitely not audio" * 50)
    with pytest.raises(UndecodableAudio):
        probe(junk, max_audio_s=60)


def _final(number, speaker, start, end, text="words"):
    return FinalTranscript(utterance_id=f"utt_{number:04d}", speaker=speaker, t_start=start,
                           t_end=end, text=text, confidence=0.9)


def _moment(number, category, utterance_id):
    return Moment(moment_id=f"m_{number:04d}", category=category, confidence=0.8, speaker="Speaker_0",
                  start_ms=0, end_ms=0, utterance_ids=[utterance_id], evidence="")


def test_phases_follow_the_moments_in_time_order():
    """opening, then discovery at a question, objection handling at an objection, close at a commitment."""
    finals = [_final(n, "Speaker_0", n * 2.0, n * 2.0 + 1.5) for n in range(1, 8)]
    moments = [_moment(1, "question", "utt_0002"), _moment(2, "objection", "utt_0004"),
               _moment(3, "question", "utt_0005"), _moment(4, "cta_commit", "utt_0007")]
    phases = document.phases(finals, moments)
    assert [(p["phase_name"], p["utterance_ids"]) for p in phases] == [
        ("opening", ["utt_0001"]), ("discovery", ["utt_0002", "utt_0003"]),
        ("objection_handling", ["utt_0004"]), ("discovery", ["utt_0005", "utt_0006"]),
        ("close", ["utt_0007"])]
    assert phases[1]["start_ms"] == 4000 and phases[1]["end_ms"] == 7500
    assert phases[2]["evidence_moment_ids"] == ["m_0002"]


def test_sentiment_trend_is_the_least_squares_slope_per_minute():
    """Valence rising 0.3 a minute is `rising`; flat is `steady`; mean and spread are exact."""
    timeline = [{"t_start": 60.0 * i, "emotion": {"scores": {"valence": 0.3 * i}}} for i in range(3)]
    assert document._sentiment(timeline) == {"mean": 0.3, "std": 0.245, "trend": "rising",
                                            "slope_per_min": 0.3}
    flat = [{"t_start": 10.0 * i, "emotion": {"scores": {"valence": 0.1}}} for i in range(4)]
    assert document._sentiment(flat)["trend"] == "steady"


def test_prosody_is_described_against_the_speakers_own_baseline():
    """Cues one standard deviation or more from the speaker's baseline are named; no baseline, no comparison."""
    assert "first utterance" in document.prosody_desc({"baseline_utterances": 0, "prosody_z": {}})
    louder_faster = {"baseline_utterances": 4,
                     "prosody_z": {"loudness_db": 1.4, "pitch_st": 0.3, "pitch_range_st": -0.2, "speech_rate": 1.1}}
    assert document.prosody_desc(louder_faster) == "louder, faster than the speaker's usual"
    usual = {"baseline_utterances": 4, "prosody_z": {"loudness_db": 0.2, "pitch_st": None, "speech_rate": -0.9}}
    assert document.prosody_desc(usual) == "within the speaker's usual loudness, pitch and pace"

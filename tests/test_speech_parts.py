"""The streaming recognizer's parts, each alone and without models: endpointing, decode
scheduling, the open utterance's audio, the transcript's bookkeeping, the voice log."""
import dataclasses

import numpy as np

from app.config import Settings
from app.speech.endpointing import DecodeSchedule, Endpointer, Frame
from app.speech.open_audio import OpenAudio
from app.speech.replays import VoiceLog
from app.speech.settings import endpoint_settings
from app.speech.transcript import CARRY_GAP_S, Transcript
from client.events import Word

RATE_HZ = 16000
FRAME = 512  # Silero's frame at 16 kHz


def frames(n, value=0.0):
    return [np.full(FRAME, value, np.float32) for _ in range(n)]


def test_the_endpointer_opens_on_speech_with_its_pre_roll_and_ends_after_the_silence():
    settings = dataclasses.replace(endpoint_settings(Settings(), pre_roll_s=0.1), end_silence_s=0.2)
    vad = Endpointer(settings, start_sample=RATE_HZ)  # resumed one second into the session
    kinds = [vad.take(f, 0.1)[0] for f in frames(5)]
    assert kinds == [Frame.IDLE] * 5
    kind, (start, opening) = vad.take(frames(1)[0], 0.9)
    assert kind is Frame.OPENED
    assert len(opening) == 4  # 3 frames of pre-roll (the 0.1 s they reach) and the voiced one
    assert start == RATE_HZ + 2 * FRAME
    assert vad.speech_end == RATE_HZ + 6 * FRAME
    # Hysteresis: a frame a little under the threshold is still speech once speech started.
    assert vad.take(frames(1)[0], 0.4)[0] is Frame.VOICED
    silent = [vad.take(f, 0.1)[0] for f in frames(6)]
    assert silent == [Frame.SILENT] * 6
    assert vad.pausing() and not vad.ended()
    vad.take(frames(1)[0], 0.1)
    assert vad.ended()
    assert vad.enough_speech() is False  # 2 frames of speech < 0.25 s: noise
    assert vad.position == RATE_HZ + 14 * FRAME
    assert vad.voice.voiced_samples(0, vad.position / RATE_HZ) == 2 * FRAME


def test_a_decode_is_due_after_new_speech_and_once_when_the_voice_pauses():
    schedule = DecodeSchedule(interval_s=0.1)
    schedule.opened(FRAME)
    assert not schedule.due(pausing=False)
    schedule.voiced(FRAME * 3)
    assert schedule.due(pausing=False)
    schedule.decoding()
    assert not schedule.due(pausing=False)
    assert schedule.due(pausing=True)
    schedule.hold(["a reading"])
    assert not schedule.due(pausing=True) and schedule.held == ["a reading"]
    schedule.voiced(FRAME)  # the voice resumed: the held reading is stale
    assert schedule.held is None


def test_committing_moves_the_open_audio_into_the_context():
    audio = OpenAudio(keep_context_s=0.5)
    audio.open(RATE_HZ, np.zeros(0, np.float32))
    samples = np.arange(2 * RATE_HZ, dtype=np.float32)
    for start in range(0, len(samples), FRAME):
        audio.append(samples[start:start + FRAME])
    assert audio.end == 3 * RATE_HZ
    assert audio.between(1.5, 2.0)[0] == RATE_HZ // 2
    audio.cut(2.25)
    assert audio.start == int(2.25 * RATE_HZ) and audio.samples == int(0.75 * RATE_HZ)
    assert len(audio.context) == RATE_HZ // 2  # only keep_context_s of it is kept
    assert audio.context[-1] == 1.25 * RATE_HZ - 1
    assert audio.context_from(2.0)[0] == RATE_HZ
    assert audio.audio(end=int(2.5 * RATE_HZ))[-1] == 1.5 * RATE_HZ - 1
    assert len(audio.segment_audio()) == 2 * RATE_HZ  # the speaker's audio keeps what was cut
    audio.close()
    assert audio.samples == 0 and not audio.has_segment()


def test_a_cut_past_the_buffered_audio_leaves_the_open_audio_where_the_next_frame_goes():
    audio = OpenAudio(keep_context_s=0.5)
    audio.open(RATE_HZ, np.zeros(0, np.float32))
    audio.append(np.ones(RATE_HZ // 2, np.float32))
    audio.cut(1.6)  # 0.1 s past the buffered audio
    assert audio.start == audio.end == int(1.5 * RATE_HZ) and audio.samples == 0
    audio.append(np.full(FRAME, 2.0, np.float32))
    assert audio.between(1.5, 1.5 + FRAME / RATE_HZ).tolist() == [2.0] * FRAME


def test_the_transcript_numbers_utterances_and_carries_the_last_words_to_the_next_turn():
    carry_s = 2.0
    text = Transcript(carry_s, utterances=6)  # resumed after six utterances
    assert len(text.open_turn(0.0)) == 0 and text.committed == []
    text.next_utterance()
    assert text.next_partial_id() == "utt_0007_p1"
    pause = carry_s - 1.0  # after "the", so that only the last two words start within carry_s of the end
    words = [Word("the", 0.0, 0.4, 0.9), Word("new", 0.9 + pause, 1.1 + pause, 0.9),
             Word("pricing.", 1.2 + pause, 1.8 + pause, 0.8)]
    final = text.final(words, "Speaker_0", np.ones(int((1.8 + pause) * RATE_HZ), np.float32))
    assert (final.utterance_id, final.text, final.confidence) == ("utt_0007", "the new pricing.", 0.867)
    assert final.t_end == 1.8 + pause
    assert len(text.take_audio("utt_0007")) == int((1.8 + pause) * RATE_HZ) and len(text.take_audio("utt_0007")) == 0
    assert text.history() == ["the", "new", "pricing"]
    assert text.prompt(prefix_words=1) == ["the", "new"]
    # The next turn starts at 5 s: the words that start in the last carry_s come before it, with their audio.
    context = text.open_turn(5.0)
    assert [w.word for w in text.committed] == ["new", "pricing."]
    assert text.committed[-1].end == 5.0 - CARRY_GAP_S
    assert len(context) == int(0.9 * RATE_HZ) + int(CARRY_GAP_S * RATE_HZ)
    assert [w.word for w in text.committed_since(4.0)] == ["pricing."]


def test_the_voice_log_forgets_what_is_older_than_it_keeps():
    log = VoiceLog(keep_s=1.0)
    for i in range(100):
        log.add(i * FRAME, FRAME, voiced=i % 2 == 0)
    assert log.voiced_samples(0, 100 * FRAME / RATE_HZ) == 16 * FRAME  # the last ~1 s, half voiced
    said = [Word("hello", 98 * FRAME / RATE_HZ, 100 * FRAME / RATE_HZ, 0.9)]
    assert log.spoken(said) is False  # one voiced frame (32 ms) is not a word's worth of voice

"""The analytics on real speech: Piper renders the words, Whisper supplies the word timings."""
import time

import numpy as np
import pytest
import soundfile

import speechgen
from app.analytics import ConversationAnalytics, load_models
from app.pipeline.base import SessionContext
from app.speech.analysis import Utterance
from client.events import Cognitive, Emotion, Moment, SummaryUpdate, Transition, Word

pytestmark = pytest.mark.speech

SENTENCE = "I need the updated figures on my desk before the meeting starts."
WARM_UP = ["We reviewed the quarterly report with the finance team yesterday.",
           "The numbers look similar to last year for most of the regions."]
# Each ladder goes from calm to aroused along one cue; "all" moves the three together.
LADDERS = {
    "louder": [{"gain_db": -10}, {"gain_db": -5}, {"gain_db": 0}],
    "faster": [{"tempo": 0.85}, {}, {"tempo": 1.2}],
    "higher": [{"pitch_cents": -200}, {}, {"pitch_cents": 200}],
    "all": [{"gain_db": -10, "tempo": 0.85, "pitch_cents": -200}, {"gain_db": -5},
            {"gain_db": 0, "tempo": 1.2, "pitch_cents": 200}],
}


@pytest.fixture(scope="module")
def models():
    return load_models()


@pytest.fixture(scope="module")
def asr():
    from app.config import Settings
    from app.speech.models import whisper_model
    return whisper_model(Settings.from_env())


def recognise(asr, path, uid, speaker="Speaker_0", t_start=0.0):
    """An Utterance of the WAV at `path` placed at `t_start`, with Whisper's words and times."""
    audio, _ = soundfile.read(path, dtype="float32")
    segments, _ = asr.transcribe(audio, language="en", word_timestamps=True, beam_size=1)
    words = [Word(w.word.strip(), t_start + w.start, t_start + w.end, w.probability)
             for s in segments for w in s.words]
    text = " ".join(w.word for w in words)
    return Utterance(uid, speaker, t_start, t_start + len(audio) / speechgen.RATE_HZ, text, 0.9, words, audio)


def arousal_after_warm_up(models, asr, variant):
    """Arousal of SENTENCE rendered with `variant`, after the same two plain sentences by the speaker."""
    analytics = ConversationAnalytics(SessionContext("s", "c"), models)
    t = 0.0
    for i, text in enumerate(WARM_UP, 1):
        warm = recognise(asr, speechgen.speak(text), f"utt_{i:04d}", t_start=t)
        analytics.on_final(warm)
        t = warm.t_end + 0.5
    emotion = analytics.on_final(recognise(asr, speechgen.speak(SENTENCE, **variant), "utt_0003", t_start=t))[0]
    return emotion.scores["arousal"]


@pytest.mark.parametrize("ladder", sorted(LADDERS))
def test_louder_faster_higher_scores_higher_arousal(models, asr, ladder):
    """Along each ladder every later rendering scores higher arousal than every earlier one."""
    scores = [arousal_after_warm_up(models, asr, variant) for variant in LADDERS[ladder]]
    for low in range(len(scores)):
        for high in range(low + 1, len(scores)):
            assert scores[high] > scores[low], (ladder, scores)


@pytest.fixture(scope="module")
def support_run(models, asr):
    """The support dialogue turn by turn through one ConversationAnalytics, with CPU per utterance."""
    path, spans = speechgen.dialogue(speechgen.SUPPORT_CALL, voices=speechgen.SUPPORT_VOICES)
    audio, _ = soundfile.read(path, dtype="float32")
    analytics = ConversationAnalytics(
        SessionContext("live_x", "liveconv_x", goal="Fix the connection", metadata={"ticket": "T-1"}), models)
    runs, cpu_s = [], []
    for i, span in enumerate(spans, 1):
        piece = path.parent / f"{path.stem}-turn{i}.wav"
        soundfile.write(piece, audio[int(span.start_s * 16000):int(span.end_s * 16000)], 16000)
        speaker = "Speaker_0" if span.speaker == "agent" else "Speaker_1"
        utterance = recognise(asr, piece, f"utt_{i:04d}", speaker, t_start=span.start_s)
        started = time.process_time()
        runs.append((utterance, analytics.on_final(utterance)))
        cpu_s.append(time.process_time() - started)
    return runs, analytics, cpu_s


def test_each_final_gets_emotion_then_cognitive_then_the_rest(support_run):
    """Events come in catalog order with the utterance's id and speaker."""
    runs, _, _ = support_run
    for utterance, events in runs:
        assert isinstance(events[0], Emotion) and isinstance(events[1], Cognitive)
        assert all(isinstance(e, (Transition, Moment)) for e in events[2:])
        assert {events[0].utterance_id, events[1].utterance_id} == {utterance.utterance_id}
        assert sum(events[0].emotion.values()) == pytest.approx(1.0, abs=1e-6)
        assert all(-1 <= v <= 1 for v in events[0].scores.values())
        assert all(0 <= getattr(events[1], k) <= 1 for k in ("engagement", "focus", "cognitive_load"))


def test_emotion_features_are_measured_from_the_audio(support_run):
    """Pitch, loudness and rate are real measurements: the lower-pitched customer reads lower."""
    runs, _, _ = support_run
    by_speaker = {}
    for utterance, events in runs:  # every turn of each speaker, not one sentence's intonation
        by_speaker.setdefault(utterance.speaker, []).append(events[0].features["prosody"]["pitch_median_hz"])
    pitch = {speaker: float(np.median(values)) for speaker, values in by_speaker.items()}
    assert pitch["Speaker_1"] < pitch["Speaker_0"] * 2 ** (-200 / 1200)
    for _, events in runs:
        prosody = events[0].features["prosody"]
        assert -40 < prosody["loudness_db"] < 0 and 2 < prosody["speech_rate_syl_s"] < 9


def test_moments_of_the_support_call(support_run):
    """Question, escalation, commitment and resolution land on the turns that carry them."""
    runs, _, _ = support_run
    found = [(u.utterance_id, e.category) for u, events in runs for e in events if isinstance(e, Moment)]
    assert found == [("utt_0001", "question"), ("utt_0004", "escalation"), ("utt_0005", "cta_commit"),
                     ("utt_0006", "resolution")]
    escalation = next(e for _, events in runs for e in events if isinstance(e, Moment) and e.category == "escalation")
    # The evidence is what Whisper heard in that turn (it may hear "third" as "first").
    assert escalation.evidence and escalation.evidence in runs[3][0].text
    assert "time" in escalation.evidence and escalation.speaker == "Speaker_1"
    assert escalation.start_ms == int(round(runs[3][0].t_start * 1000))


def test_summary_is_written_from_the_measurements(support_run):
    """Goal and metadata are echoed; insights cite times; talk ratios sum to one."""
    runs, analytics, _ = support_run
    summary = analytics.summary(final=True)
    assert isinstance(summary, SummaryUpdate) and summary.is_final
    assert (summary.goal, summary.metadata) == ("Fix the connection", {"ticket": "T-1"})
    assert summary.moments_by_category == {"question": 1, "escalation": 1, "cta_commit": 1, "resolution": 1}
    assert all(insight[0] == "[" and insight[6] == "]" for insight in summary.key_insights)
    assert sum(d["talk_ratio"] for d in summary.speaker_dynamics.values()) == pytest.approx(1.0, abs=0.002)
    assert {d["turns"] for d in summary.speaker_dynamics.values()} == {3}
    assert summary.duration_s == pytest.approx(runs[-1][0].t_end, abs=0.01)
    assert summary.conversation_quality in ("excellent", "good", "fair", "poor")
    assert summary.to_json().count("\n") == 0


def test_live_api_carries_the_analytics(speech_server):
    """Through gunicorn and the speech pipeline: each final is followed by its emotion and cognitive,
    moments name real finals, and the summary echoes goal and metadata before `done`."""
    from client import LiveClient
    path, _ = speechgen.dialogue(speechgen.SUPPORT_CALL, voices=speechgen.SUPPORT_VOICES)
    with LiveClient(speech_server.url, timeout=(5, 120)) as client:
        received = list(client.stream_file(path, goal="Fix the connection", metadata={"ticket": "T-1"}))
    events = [e for e in received if e.name != "status"]  # progress reports may come at any point
    names = [e.name for e in events]
    finals = [e for e in events if e.name == "final_transcript"]
    assert finals and names[-1] == "done"
    for final in finals:
        at = events.index(final)
        assert (names[at + 1], names[at + 2]) == ("emotion", "cognitive")
        assert events[at + 1].utterance_id == events[at + 2].utterance_id == final.utterance_id
    ids = {f.utterance_id for f in finals}
    moments = [e for e in events if e.name == "moment"]
    assert {m.category for m in moments} >= {"question", "escalation", "cta_commit"}
    assert all(m.utterance_ids[0] in ids and m.evidence for m in moments)
    summary = next(e for e in events if e.name == "summary_update")
    assert names.index("summary_update") < names.index("done")
    assert (summary.goal, summary.metadata) == ("Fix the connection", {"ticket": "T-1"})
    assert sum(summary.moments_by_category.values()) == len(moments)

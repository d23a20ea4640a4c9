"""One well-formed event of every kind in the catalog, as the pipeline would emit it."""
from client import events


def one_of_each():
    """A list holding one event per `client.events.CATALOG` entry, every field filled in."""
    return [
        events.PartialTranscript(partial_id="p_1", utterance_id="utt_0001", text="hello the",
                                 t_start=0.4),
        events.FinalTranscript(utterance_id="utt_0001", speaker="Speaker_0", t_start=0.4, t_end=1.9,
                               text="Hello there.", confidence=0.91,
                               words=[events.Word("Hello", 0.4, 0.8, 0.95),
                                      events.Word("there.", 0.9, 1.9, 0.88)]),
        events.Emotion(utterance_id="utt_0001", speaker="Speaker_0",
                       emotion={"anger": 0.05, "disgust": 0.02, "fear": 0.03, "joy": 0.5,
                                "neutral": 0.3, "sadness": 0.05, "surprise": 0.05},
                       label="joy", scores={"valence": 0.6, "arousal": 0.2, "dominance": 0.1},
                       confidence=0.7, features={"pitch_hz": 180.0}),
        events.Cognitive(utterance_id="utt_0001", speaker="Speaker_0", engagement=0.8, focus=0.7,
                         cognitive_load=0.3, signals={"fillers": 0}, rationale="Fluent and direct."),
        events.Transition(transition_id="tr_1", at_ms=1900,
                          from_state={"label": "neutral", "valence": 0.0, "arousal": 0.0},
                          to_state={"label": "joy", "valence": 0.6, "arousal": 0.2},
                          speaker="Speaker_0", evidence_utterance_ids=["utt_0001"],
                          drivers=["lexical valence rose"], confidence=0.6),
        events.Moment(moment_id="m_1", category="question", confidence=0.9, speaker="Speaker_1",
                      start_ms=2000, end_ms=3500, utterance_ids=["utt_0002"], evidence="how much"),
        events.SummaryUpdate(overview="Two speakers agreed on a price.",
                             key_insights=["[00:02] A price question."], goal="close the deal"),
        events.Status(phase="ingesting", progress=0.5, audio_seconds=2.0, lag_seconds=1.0,
                      detail="analysing live audio"),
        events.Error(code="cancelled", message="user left"),
        events.Done(conversation_id="liveconv_1", session_id="live_1", metadata={"a": 1}),
    ]

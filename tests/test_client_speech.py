"""A whole conversation through `LiveClient.stream_file` against the server with the real speech models."""
import pytest

import speechgen
from client import (Cognitive, ConversationResult, Done, Emotion, FinalTranscript, LiveClient,
                    PartialTranscript, Status, SummaryUpdate)

pytestmark = pytest.mark.speech

TURNS = [("agent", "Good morning, thank you for calling. How can I help you today?"),
         ("caller", "Hello. My internet has been down since yesterday and I work from home."),
         ("agent", "I am sorry to hear that. Let me check the line for you right now."),
         ("caller", "Thank you. Please hurry, I have an important meeting this afternoon.")]


def test_stream_file_full_session_with_real_speech(speech_server, tmp_path):
    """Paced like a microphone and read live: partials, real finals in the catalog's order, then summary, completed, done."""
    path, _ = speechgen.dialogue(TURNS, tmp_path / "call.wav",
                                 voices={"agent": {"voice": "joe"},
                                         "caller": {"voice": "joe", "pitch_cents": 400}})
    result = ConversationResult()
    with LiveClient(speech_server.url, events_read_timeout_s=30.0) as client:
        stream = client.stream_file(path, chunk_bytes=16000, realtime=True, goal="fix the caller's internet",
                                    metadata={"ticket": "T-1"})
        events = []
        for event in stream:
            events.append(event)
            result.add(event)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert isinstance(events[0], Status)
    assert isinstance(events[-1], Done) and events[-1].metadata == {"ticket": "T-1"}
    assert isinstance(events[-2], Status) and events[-2].phase == "completed"
    summaries = [i for i, e in enumerate(events) if isinstance(e, SummaryUpdate)]
    assert summaries and summaries[-1] < len(events) - 2
    assert events[summaries[-1]].goal == "fix the caller's internet"

    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert finals and any(isinstance(e, PartialTranscript) for e in events)
    hypothesis = " ".join(f.text for f in finals)
    assert speechgen.wer(" ".join(text for _, text in TURNS), hypothesis) < 0.3, hypothesis
    analysis = [e for e in events if not isinstance(e, (Status, PartialTranscript))]
    for final in finals:
        after = analysis[analysis.index(final) + 1:analysis.index(final) + 3]
        assert [type(e) for e in after] == [Emotion, Cognitive], [e.name for e in analysis]
        assert all(e.utterance_id == final.utterance_id for e in after)
        assert final.speaker.startswith("Speaker_") and final.t_end > final.t_start
    assert result.complete and len(result.utterances) == len(finals)
    assert all(u["emotion"] and u["cognitive"] for u in result.utterances)
    assert stream.bytes_sent == stream.total_bytes

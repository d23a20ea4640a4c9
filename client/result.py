"""`ConversationResult`: what a session produced, gathered from its events, for callers that want one document at the end."""
from typing import Any, Dict, List, Optional

from .events import (Cognitive, Done, Emotion, Error, Event, FinalTranscript, Moment, Status,
                     SummaryUpdate, Transition)


class ConversationResult:
    """Feed it every event with `add()`; read the transcript, utterances, moments and summary so far."""

    def __init__(self) -> None:
        self.utterances: List[Dict[str, Any]] = []
        self.moments: List[Dict[str, Any]] = []
        self.transitions: List[Dict[str, Any]] = []
        self.summary: Optional[SummaryUpdate] = None
        self.done: Optional[Done] = None
        self.error: Optional[Error] = None
        self.audio_seconds = 0.0
        self.last_event_id: Optional[int] = None

    def add(self, event: Event) -> None:
        """Take one event into the result."""
        if event.id is not None:
            self.last_event_id = event.id
        if isinstance(event, FinalTranscript):
            self.utterances.append({
                "utterance_id": event.utterance_id, "speaker": event.speaker,
                "t_start": event.t_start, "t_end": event.t_end, "text": event.text,
                "confidence": event.confidence, "emotion": None, "cognitive": None})
        elif isinstance(event, Emotion):
            utterance = self._utterance(event.utterance_id)
            if utterance is not None:
                utterance["emotion"] = {"label": event.label, "confidence": event.confidence,
                                        "scores": event.scores}
        elif isinstance(event, Cognitive):
            utterance = self._utterance(event.utterance_id)
            if utterance is not None:
                utterance["cognitive"] = {"engagement": event.engagement, "focus": event.focus,
                                          "cognitive_load": event.cognitive_load}
        elif isinstance(event, Moment):
            self.moments.append(event.to_dict())
        elif isinstance(event, Transition):
            self.transitions.append(event.to_dict())
        elif isinstance(event, SummaryUpdate):
            self.summary = event
        elif isinstance(event, Status):
            self.audio_seconds = max(self.audio_seconds, event.audio_seconds or 0.0)
        elif isinstance(event, Done):
            self.done = event
        elif isinstance(event, Error) and event.fatal:
            self.error = event

    def _utterance(self, utterance_id):
        """The latest final with this id (a long utterance may be settled in several finals)."""
        return next((u for u in reversed(self.utterances) if u["utterance_id"] == utterance_id), None)

    @property
    def complete(self) -> bool:
        """True once `done` arrived."""
        return self.done is not None

    @property
    def transcript(self) -> str:
        """The final texts in order, one line per final, led by the speaker."""
        return "\n".join(f"{u['speaker']}: {u['text']}" for u in self.utterances)

    def to_dict(self) -> Dict[str, Any]:
        """The whole result as a JSON-ready document."""
        return {
            "complete": self.complete,
            "session_id": self.done.session_id if self.done else None,
            "conversation_id": self.done.conversation_id if self.done else None,
            "transcript": self.transcript,
            "utterances": self.utterances,
            "moments": self.moments,
            "transitions": self.transitions,
            "summary": self.summary.to_dict() if self.summary else None,
            "audio_seconds": self.audio_seconds,
            "last_event_id": self.last_event_id,
            "error": ({"code": self.error.code, "message": self.error.message}
                      if self.error else None),
        }

"""`ConversationResult`: what a session produced, gathered from its events; `AnalysisResult`: the same view of a recorded file's whole document."""
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
            self.utterances.append(_utterance(vars(event), event.confidence))
        elif isinstance(event, Emotion):
            utterance = self._utterance(event.utterance_id)
            if utterance is not None:
                utterance["emotion"] = _emotion(vars(event))
        elif isinstance(event, Cognitive):
            utterance = self._utterance(event.utterance_id)
            if utterance is not None:
                utterance["cognitive"] = _cognitive(vars(event))
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

    @property
    def conversation_id(self) -> Optional[str]:
        """The conversation's id, once known."""
        return self.done.conversation_id if self.done else None

    def to_dict(self) -> Dict[str, Any]:
        """The whole result as a JSON-ready document."""
        return {
            "complete": self.complete,
            "session_id": self.done.session_id if self.done else None,
            "conversation_id": self.conversation_id,
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


class AnalysisResult(ConversationResult):
    """A recorded file's analysis (`POST /analyze`): the server's whole ``AnalysisDocument``, and `ConversationResult`'s view of it.

    `document` is the server's JSON untouched (timeline with words and per-utterance
    analytics, insights, segmentation, …); `utterances`, `moments`, `transitions`, `summary`
    (a `SummaryUpdate`), `transcript` and `to_dict()` read as they do for a live session,
    so code written for one serves both. It is complete from the start: the server answers
    only once the analysis is finished (see `truncated` for a file that did not decode to its end).
    """

    def __init__(self, document: Dict[str, Any]) -> None:
        super().__init__()
        self.document = document
        self.utterances = [_utterance(item, item.get("asr_confidence"), item)
                           for item in document.get("timeline") or []]
        self.moments = list(document.get("moments") or [])
        self.transitions = list(document.get("transitions") or [])
        summary = document.get("summary")
        self.summary = SummaryUpdate.from_dict(summary) if summary else None
        self.audio_seconds = document.get("duration_s") or 0.0

    @property
    def complete(self) -> bool:
        """Always true: the document is the finished analysis."""
        return True

    @property
    def conversation_id(self) -> Optional[str]:
        """``analysis_`` and hex, as the server named this analysis."""
        return self.document.get("conversation_id")

    @property
    def phases(self) -> List[Dict[str, Any]]:
        """The conversation's phases in order (``segmentation.phases``)."""
        return list((self.document.get("segmentation") or {}).get("phases") or [])

    @property
    def insights(self) -> Dict[str, Any]:
        """Conversation-level figures: sentiment, dominant emotions, engagement, key moments, speakers, …"""
        return dict(self.document.get("insights") or {})

    @property
    def truncated(self) -> bool:
        """True when the file stopped decoding before its announced end (``warnings`` says where)."""
        return bool(self.document.get("truncated"))

    def to_dict(self) -> Dict[str, Any]:
        """`ConversationResult.to_dict()`, plus the server's whole document under ``document``."""
        return {**super().to_dict(), "document": self.document}


def _utterance(final: Dict[str, Any], confidence, analysed: Optional[Dict[str, Any]] = None):
    """One utterance as `ConversationResult.utterances` holds it, from a final (and its analytics, when at hand)."""
    analysed = analysed or {}
    return {"utterance_id": final["utterance_id"], "speaker": final["speaker"],
            "t_start": final["t_start"], "t_end": final["t_end"], "text": final["text"],
            "confidence": confidence,
            "emotion": _emotion(analysed["emotion"]) if analysed.get("emotion") else None,
            "cognitive": _cognitive(analysed["cognitive"]) if analysed.get("cognitive") else None}


def _emotion(emotion: Dict[str, Any]) -> Dict[str, Any]:
    return {"label": emotion["label"], "confidence": emotion["confidence"], "scores": emotion["scores"]}


def _cognitive(cognitive: Dict[str, Any]) -> Dict[str, Any]:
    return {name: cognitive[name] for name in ("engagement", "focus", "cognitive_load")}

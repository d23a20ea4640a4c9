"""The SSE event catalog, one dataclass per event, shared by the server, the client and the tests.

It lives in the client package because the client must not import the server; the
server imports it from here. Times are seconds from the start of the session's audio
unless the field name ends in `_ms`.
"""
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional


@dataclass
class Event:
    """Base of every event: `name` is the SSE `event:` field; `id` is set once logged."""

    name: ClassVar[str] = "message"
    id: Optional[int] = field(default=None, repr=False, compare=False, kw_only=True)
    extra: dict = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    def to_dict(self) -> Dict[str, Any]:
        """The event's `data:` document (without id and with any unknown extra keys)."""
        data = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("id", "extra")}
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        """One-line JSON for the `data:` field."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], event_id: Optional[int] = None) -> "Event":
        """Build the event from its `data:` document; unknown keys go to `extra`."""
        known = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("id", "extra")}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "words" in kwargs and cls is FinalTranscript:
            kwargs["words"] = [Word.from_dict(w) for w in kwargs["words"]]
        extra = {k: v for k, v in data.items() if k not in known}
        for name, spec in known.items():
            if name not in kwargs and spec.default is dataclasses.MISSING \
                    and spec.default_factory is dataclasses.MISSING:
                kwargs[name] = None
        return cls(**kwargs, id=event_id, extra=extra)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass
class Word:
    """One recognised word with its times in seconds."""

    word: str
    start: float
    end: float
    confidence: float

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(data["word"], data["start"], data["end"], data.get("confidence"))


@dataclass
class Status(Event):
    """Session phase and how far analysis has caught up with the received audio."""

    name: ClassVar[str] = "status"
    phase: str
    progress: float = 0.0
    audio_seconds: float = 0.0
    lag_seconds: float = 0.0
    detail: str = ""


@dataclass
class PartialTranscript(Event):
    """An unstable hypothesis for the utterance being spoken."""

    name: ClassVar[str] = "partial_transcript"
    partial_id: str
    utterance_id: str
    text: str
    t_start: float
    speaker: Optional[str] = None
    is_final: bool = False


@dataclass
class FinalTranscript(Event):
    """The settled text of one utterance (or of a committed stable prefix of it)."""

    name: ClassVar[str] = "final_transcript"
    utterance_id: str
    speaker: str
    t_start: float
    t_end: float
    text: str
    confidence: float
    words: list = field(default_factory=list)


@dataclass
class Emotion(Event):
    """The affect measured in one final utterance, with the cues that support it."""

    name: ClassVar[str] = "emotion"
    utterance_id: str
    speaker: str
    emotion: dict
    label: str
    scores: dict
    confidence: float
    stability: str = "final"
    features: dict = field(default_factory=dict)


@dataclass
class Cognitive(Event):
    """Engagement, focus and load measured in one final utterance."""

    name: ClassVar[str] = "cognitive"
    utterance_id: str
    speaker: str
    engagement: float
    focus: float
    cognitive_load: float
    signals: dict = field(default_factory=dict)
    rationale: str = ""


@dataclass
class Transition(Event):
    """A speaker's affective state changed."""

    name: ClassVar[str] = "transition"
    transition_id: str
    at_ms: int
    from_state: dict
    to_state: dict
    speaker: str
    evidence_utterance_ids: list = field(default_factory=list)
    drivers: list = field(default_factory=list)
    confidence: float = 0.0


@dataclass
class Moment(Event):
    """A notable point in the conversation: a question, objection, commitment, …"""

    name: ClassVar[str] = "moment"
    moment_id: str
    category: str
    confidence: float
    speaker: str
    start_ms: int
    end_ms: int
    utterance_ids: list = field(default_factory=list)
    evidence: str = ""


@dataclass
class SummaryUpdate(Event):
    """The ConversationSummary, written from the measured analytics."""

    name: ClassVar[str] = "summary_update"
    overview: str
    key_insights: list = field(default_factory=list)
    notable_patterns: list = field(default_factory=list)
    recommendations: list = field(default_factory=list)
    what_went_well: list = field(default_factory=list)
    what_went_wrong: list = field(default_factory=list)
    speaker_dynamics: dict = field(default_factory=dict)
    conversation_quality: str = ""
    duration_s: float = 0.0
    emotional_arc: list = field(default_factory=list)
    moments_by_category: dict = field(default_factory=dict)
    key_phrases: list = field(default_factory=list)
    goal: Optional[str] = None
    metadata: dict = field(default_factory=dict)
    is_final: bool = True


@dataclass
class Error(Event):
    """Something went wrong; a fatal error ends the stream."""

    name: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = True


@dataclass
class Done(Event):
    """The session is complete; the stream ends after this event."""

    name: ClassVar[str] = "done"
    conversation_id: str
    session_id: str
    metadata: dict = field(default_factory=dict)


@dataclass
class UnknownEvent(Event):
    """An event this client version does not know, passed through untouched."""

    event_name: str = "message"
    data: dict = field(default_factory=dict)

    def to_dict(self):
        return dict(self.data)


CATALOG = {cls.name: cls for cls in (Status, PartialTranscript, FinalTranscript, Emotion,
                                     Cognitive, Transition, Moment, SummaryUpdate, Error, Done)}


def parse_event(name: Optional[str], data_text: Optional[str], event_id: Optional[str] = None) -> Event:
    """Turn an SSE message (`event:` name, `data:` text, `id:`) into a typed event."""
    data = json.loads(data_text) if data_text else {}
    ident = int(event_id) if event_id not in (None, "") else None
    name = name or "message"  # the SSE default for a message without `event:`
    kind = CATALOG.get(name)
    if kind is None:
        return UnknownEvent(event_name=name, data=data, id=ident)
    return kind.from_dict(data, event_id=ident)


def is_terminal(event: Event) -> bool:
    """True for the event after which the server closes the stream."""
    return isinstance(event, Done) or (isinstance(event, Error) and event.fatal)

"""Harken's client: start a live session, stream audio from any source, read its typed events.

The package loads lazily: `import client.events` (the event catalog, which the server
imports too) loads nothing outside the standard library, and `requests`/`sseclient-py`
are imported only when a name that needs them (`LiveClient`, …) is first used; `httpx`
only for `AsyncLiveClient` (the ``async`` extra). Every name in `__all__` is reachable
as ``client.NAME``:

- clients: `LiveClient` (sync, requests), `AsyncLiveClient` (asyncio, httpx): live
  sessions, and recorded files (`analyze_file` -> `AnalysisResult`, `stream_file_analysis`);
  `LiveSession`, `ChunkReceipt`, `LiveStream`, `AsyncLiveStream`, `RetryPolicy`;
- events (`client.events`): `Event` and one class per SSE event, `UnknownEvent`,
  `parse_event`, `is_terminal`; `ConversationResult` gathers them into one document;
- errors (`client.errors`): `HarkenError` and its subclasses, one per server error code.
"""
import importlib
import logging
from typing import TYPE_CHECKING, Any, List

_EXPORTS = {
    "errors": ("APIError", "AnalysisFailed", "AnalysisQueueFull", "AudioTooLong", "Backpressure",
               "BadRequest", "ChunkConflict", "ChunkOutOfOrder", "Conflict", "ConnectionFailed",
               "ConsumerAttached", "DecodedAudioTooLong", "EmptyChunk", "EmptyFile", "HarkenError",
               "InvalidChunk",
               "InvalidJson", "LiveStreamingDisabled", "MethodNotAllowed", "NotFound",
               "PayloadTooLarge", "PipelineUnavailable", "ReconnectFailed", "RequestTimeout",
               "ServerError", "ServerFull", "ServiceUnavailable", "SessionClosed",
               "SessionExpired", "SessionNotFound", "StoreUnavailable", "StreamError", "TooManyAudioFrames",
               "TransportError", "Unauthorized", "UnreadableRecording", "UnsupportedMediaType",
               "UploadFailed", "ValidationFailed"),
    "events": ("Cognitive", "Done", "Emotion", "Error", "Event", "FinalTranscript", "Moment",
               "PartialTranscript", "Status", "SummaryUpdate", "Transition", "UnknownEvent",
               "is_terminal", "parse_event"),
    "protocol": ("ChunkReceipt", "LiveSession"),
    "result": ("AnalysisResult", "ConversationResult"),
    "retry": ("RetryPolicy",),
    "live": ("LiveClient",),
    "streaming": ("LiveStream",),
    "aio": ("AsyncLiveClient", "AsyncLiveStream"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on first use
    from .aio import AsyncLiveClient, AsyncLiveStream
    from .errors import (APIError, AnalysisFailed, AnalysisQueueFull, AudioTooLong,
                         Backpressure, BadRequest, ChunkConflict, ChunkOutOfOrder, Conflict,
                         ConnectionFailed, ConsumerAttached, DecodedAudioTooLong, EmptyChunk,
                         EmptyFile, HarkenError,
                         InvalidChunk, InvalidJson, LiveStreamingDisabled, MethodNotAllowed,
                         NotFound, PayloadTooLarge, PipelineUnavailable, ReconnectFailed,
                         RequestTimeout, ServerError, ServerFull, ServiceUnavailable,
                         SessionClosed, SessionExpired, SessionNotFound, StoreUnavailable, StreamError,
                         TooManyAudioFrames, TransportError, Unauthorized, UnreadableRecording,
                         UnsupportedMediaType, UploadFailed, ValidationFailed)
    from .events import (Cognitive, Done, Emotion, Error, Event, FinalTranscript, Moment,
                         PartialTranscript, Status, SummaryUpdate, Transition, UnknownEvent,
                         is_terminal, parse_event)
    from .live import LiveClient
    from .protocol import ChunkReceipt, LiveSession
    from .result import AnalysisResult, ConversationResult
    from .retry import RetryPolicy
    from .streaming import LiveStream


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))


logging.getLogger(__name__).addHandler(logging.NullHandler())

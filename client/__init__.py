"""Harken's synchronous client: start a live session, upload audio chunks, read its events.

Needs only `requests` and `sseclient-py`; imports nothing from the server.
"""
import logging

from .errors import (APIError, Backpressure, BadRequest, ChunkConflict, ChunkOutOfOrder, Conflict,
                     ConnectionFailed, ConsumerAttached, EmptyChunk, HarkenError, InvalidChunk,
                     InvalidJson, LiveStreamingDisabled, MethodNotAllowed, NotFound,
                     PayloadTooLarge, PipelineUnavailable, ReconnectFailed, RequestTimeout,
                     ServerError, ServerFull, ServiceUnavailable, SessionClosed, SessionExpired,
                     SessionNotFound, StreamError, TransportError, Unauthorized,
                     UnsupportedMediaType, UploadFailed, ValidationFailed)
from .events import (Cognitive, Done, Emotion, Error, Event, FinalTranscript, Moment,
                     PartialTranscript, Status, SummaryUpdate, Transition, UnknownEvent,
                     is_terminal, parse_event)
from .live import LiveClient
from .protocol import ChunkReceipt, LiveSession
from .result import ConversationResult
from .retry import RetryPolicy
from .streaming import LiveStream

logging.getLogger(__name__).addHandler(logging.NullHandler())

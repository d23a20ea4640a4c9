"""Interfaces between a live session (in the gevent hub) and the analysis that runs off it.

`SessionContext`, what analysis may know of a session, is declared with the speech workers'
messages, which carry it, and handed on from here to the sessions and file jobs.
"""
from typing import Protocol

from ..speech.protocol import SessionContext

__all__ = ["SessionContext", "AnalysisSink", "AnalysisStream", "Pipeline"]


class AnalysisSink(Protocol):
    """The session's side: every method is called from the gevent hub, never from another thread."""

    #: True where the session lives in a shared store that keeps checkpoints (docs/scaleout.md):
    #: the pipeline then hands each final over with its analytics and a checkpoint, in `commit`.
    #: False (the embedded session): each final is published the moment it is decoded.
    keeps_checkpoints: bool

    def publish(self, event):
        """Append a `client.events.Event` to the session's event log."""

    def commit(self, events, checkpoint):
        """Publish `events` (finals, each with its analytics, in catalog order) together with
        `checkpoint`, a JSON-able dict from which a new stream resumes after them (`Pipeline.open`).

        Only called when `keeps_checkpoints`; the store writes both in one atomic step, so a
        failover never publishes them twice nor loses them.
        """

    def analysed(self, audio_seconds):
        """Analysis has consumed the session's audio up to `audio_seconds` from its start."""

    def completed(self):
        """After `finish()`: every event, the closing summary included, has been published."""

    def failed(self, message):
        """Analysis broke; the session reports a fatal `error` and ends."""


class AnalysisStream(Protocol):
    """One session's analysis, fed in order from the hub; it must never block the hub."""

    def feed(self, samples):
        """Take the next 16 kHz mono float32 samples (a numpy array, possibly empty)."""

    def finish(self):
        """No more audio: flush everything, publish the closing events, then call `sink.completed()`."""

    def cancel(self):
        """Drop the session's work; publish nothing more."""

    def backlog_seconds(self):
        """Audio fed but not yet analysed, in seconds (drives back-pressure)."""

    #: The session sample (16 kHz, from its start) of the first audio this stream wants: 0 for a
    #: new stream, a checkpoint's `samples` for a resumed one. The caller feeds from there on.
    resume_samples: int


class Pipeline(Protocol):
    """Owns the models and the worker processes shared by every session of one server process."""

    name: str

    def start(self):
        """Begin loading models (off the hub); return at once."""

    def open(self, context, sink, resume=None):
        """An AnalysisStream for a new session; with `resume` (a checkpoint a sink was given in
        `commit`), one that carries that session on after it: the same speaker labels, utterance
        numbering, analytics state and summary. `resume["samples"]` is the only key callers read."""

    def analyze_file(self, context, path, sink):
        """Analyse the recorded file at `path` as one offline job; returns a handle with `cancel()`.

        The sink receives the job's events (status progress, each final then its analytics, the
        closing summary) and then `completed()` or `failed()`, as a session's sink does.
        """

    def health(self):
        """A JSON-able dict: `ready` (bool) plus what is loaded."""

    def stop(self):
        """Stop the worker processes."""

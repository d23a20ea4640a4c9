"""Recorded-file analyses on the hub: each one's event log and end, and the limit on how many run at once."""
import logging
import secrets

import gevent
import gevent.event

from client import events

from .. import errors
from ..audio import UndecodableAudio
from ..audio.recording import AudioTooLong, probe
from ..eventlog import EventLog
from ..pipeline import SessionContext

log = logging.getLogger(__name__)


class FileAnalysis:
    """One file's analysis: the sink its pipeline job publishes into, and what it produced.

    Every method runs in the gevent hub. `events` is an EventLog, so the SSE endpoint streams
    it as it streams a live session's; `collected` keeps the typed events for the document.
    """

    def __init__(self, analysis_id, upload, max_events):
        self.analysis_id = analysis_id
        self.upload = upload
        self.events = EventLog(max_events)
        self.collected = []
        self.finished = gevent.event.Event()
        self.failure = None
        self._job = None

    def run(self, pipeline, context):
        self._job = pipeline.analyze_file(context, self.upload.path, self)
        self.publish(events.Status(phase="starting", progress=0.0,
                                   detail=f"analysing {self.upload.filename or 'the file'}"))

    # -- the AnalysisSink side: the pipeline job reports here ----------------------------------
    def publish(self, event):
        self.collected.append(event)
        self.events.append(event)

    def analysed(self, audio_seconds):
        """Progress reaches the client as the job's own `status` events."""

    def completed(self):
        try:
            audio_s = max((e.audio_seconds for e in self.collected if isinstance(e, events.Status)),
                          default=0.0)
            self.publish(events.Status(phase="completed", progress=1.0, audio_seconds=audio_s,
                                       detail="analysis complete"))
            self.publish(events.Done(conversation_id=self.analysis_id, session_id=self.analysis_id,
                                     metadata=self.upload.metadata))
        finally:
            self._end()

    def failed(self, message):
        self.failure = message
        log.error("[%s] file analysis failed: %s", self.analysis_id, message)
        self.publish(events.Error(code=errors.AnalysisFailed.code, message=message, fatal=True))
        self._end()

    def cancel(self):
        """The client went away: stop the job and free the worker."""
        if self.finished.is_set():
            return
        if self._job is not None:
            self._job.cancel()
        log.info("[%s] file analysis cancelled: the client hung up", self.analysis_id)
        self._end()

    def _end(self):
        self.events.close()
        self.upload.close()
        self.finished.set()


class FileAnalyses:
    """The app's running file analyses, at most HARKEN_MAX_FILE_JOBS at once."""

    def __init__(self, settings, pipeline):
        self.settings = settings
        self.pipeline = pipeline
        self._running = {}

    def start(self, upload):
        """Check the file, then queue its analysis; 415, 413 or 503 when it cannot be taken."""
        retry = {"Retry-After": str(self.settings.retry_after_s)}
        if not self.pipeline.health().get("ready"):
            raise errors.PipelineUnavailable("The speech models are not loaded (yet): see /healthz.",
                                             headers=retry)
        if len(self._running) >= self.settings.max_file_jobs:
            raise errors.AnalysisQueueFull(headers=retry, max_file_jobs=self.settings.max_file_jobs)
        info = self._probe(upload)
        analysis = FileAnalysis("analysis_" + secrets.token_hex(12), upload, self.settings.event_log_max)
        context = SessionContext(analysis.analysis_id, analysis.analysis_id, upload.language,
                                 upload.goal, upload.metadata)
        try:
            analysis.run(self.pipeline, context)
        except Exception:
            upload.close()
            raise
        self._running[analysis.analysis_id] = analysis
        analysis.finished.rawlink(lambda _: self._running.pop(analysis.analysis_id, None))
        log.info("[%s] file analysis queued: %s, %s bytes, %s s announced", analysis.analysis_id,
                 info.container, upload.size, info.duration_s)
        return analysis

    def _probe(self, upload):
        """What the file is, read in a native thread so a slow demuxer never holds the hub."""
        try:
            return gevent.get_hub().threadpool.apply(probe, (upload.path, self.settings.max_file_audio_s))
        except AudioTooLong as exc:
            upload.close()
            raise errors.AudioTooLong(str(exc), max_audio_s=self.settings.max_file_audio_s) from None
        except UndecodableAudio as exc:
            upload.close()
            raise errors.UnreadableRecording(str(exc)) from None

    def shutdown(self):
        """Stop every running analysis (the server is going down)."""
        for analysis in list(self._running.values()):
            analysis.cancel()

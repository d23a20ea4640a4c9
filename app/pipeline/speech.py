"""The speech pipeline (HARKEN_PIPELINE=speech): sessions' audio goes to worker processes, events come back.

The hub side is thin on purpose: a stream forwards samples to the worker its session is
pinned to and publishes whatever comes back, in order, from the hub. Recognition, speakers
and analytics all run in the worker (app.speech.worker), so the hub never waits on a model.
"""
from ..audio import TARGET_RATE_HZ
from ..speech.pool import WorkerPool
from ..speech.settings import WorkerSettings


class SpeechPipeline:
    """Owns the worker pool; one `SpeechStream` per session."""

    name = "speech"

    def __init__(self, settings):
        self._settings = settings
        self._pool = WorkerPool(settings.pool_size, WorkerSettings.from_settings(settings))

    def start(self):
        self._pool.start()

    def open(self, context, sink, resume=None):
        checkpoints = getattr(sink, "keeps_checkpoints", False)
        return SpeechStream(context, sink, lambda stream: self._pool.open(
            context.session_id, context, stream, checkpoints, resume), resume)

    def analyze_file(self, context, path, sink):
        """A recorded file's offline job; the sink receives its events like a session's."""
        return SpeechStream(context, sink, lambda stream: self._pool.open_job(
            context.session_id, context, path, stream))

    def health(self):
        workers = self._pool.health()
        return {"ready": self._pool.ready, "pipeline": self.name,
                "models": ["whisper:" + self._settings.asr_model, "silero-vad", "resemblyzer"],
                "workers": workers}

    def stop(self):
        self._pool.stop()


class SpeechStream:
    """One session's (or file job's) handle on its worker; every method runs in the hub and returns at once."""

    def __init__(self, context, sink, connect, resume=None):
        """`connect(stream)` opens the session in a worker and returns its PinnedSession; with
        `resume` (a checkpoint), the stream wants the session's audio from `resume_samples` on."""
        self._sink = sink
        self.resume_samples = resume["samples"] if resume else 0
        self._fed_samples = self.resume_samples
        self._analysed_s = self.resume_samples / TARGET_RATE_HZ  # what came before was analysed elsewhere
        self._closed = False
        self._pinned = connect(self)

    def feed(self, samples):
        if self._closed or not len(samples):
            return
        self._fed_samples += len(samples)
        self._pinned.feed(samples)

    def finish(self):
        if not self._closed:
            self._pinned.finish()

    def cancel(self):
        if not self._closed:
            self._closed = True
            self._pinned.cancel()

    def backlog_seconds(self):
        return max(0.0, self._fed_samples / TARGET_RATE_HZ - self._analysed_s)

    # -- replies from the worker, dispatched in the hub by the pool's reader greenlet ---------

    def on_events(self, events, analysed_s, checkpoint=None):
        """Publish `events` (with their `checkpoint`, in one step, when there is one); then the
        progress, unless `analysed_s` is None (a final's analytics follow)."""
        if self._closed:
            return
        if checkpoint is not None:
            self._sink.commit(events, checkpoint)
        else:
            for event in events:
                self._sink.publish(event)
        if analysed_s is not None:
            self._progress(analysed_s)

    def on_completed(self, events, analysed_s):
        if self._closed:
            return
        self.on_events(events, analysed_s)
        self._closed = True
        self._sink.completed()

    def on_failed(self, message):
        if not self._closed:
            self._closed = True
            self._sink.failed(message)

    def _progress(self, analysed_s):
        self._analysed_s = max(self._analysed_s, analysed_s)
        self._sink.analysed(self._analysed_s)

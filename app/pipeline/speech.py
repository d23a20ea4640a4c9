"""The speech pipeline (HARKEN_PIPELINE=speech): sessions' audio goes to worker processes, events come back.

The hub side is thin on purpose: a stream forwards samples to the worker its session is
pinned to and publishes whatever comes back, in order, from the hub. Recognition, speakers
and analytics all run in the worker (app.speech.worker), so the hub never waits on a model.
"""
from dataclasses import asdict

from client.events import FinalTranscript

from ..audio import TARGET_RATE_HZ
from ..speech.pool import WorkerPool
from ..speech.streaming import EndpointSettings


class SpeechPipeline:
    """Owns the worker pool; one `SpeechStream` per session."""

    name = "speech"

    def __init__(self, settings):
        self._settings = settings
        endpointing = EndpointSettings(
            vad_threshold=settings.vad_threshold, end_silence_s=settings.vad_end_silence_s,
            sentence_end_silence_s=settings.vad_sentence_end_silence_s,
            min_speech_s=settings.vad_min_speech_s, max_utterance_s=settings.max_utterance_s,
            partial_interval_s=settings.partial_interval_s, final_beam_size=settings.asr_final_beam_size,
            final_window_s=settings.asr_final_window_s, final_context_s=settings.asr_final_context_s)
        self._pool = WorkerPool(settings.pool_size, {
            "asr_model": settings.asr_model, "model_cache_dir": settings.model_cache_dir,
            "asr_threads": settings.asr_threads, "speaker_similarity": settings.speaker_similarity,
            "endpointing": asdict(endpointing), "log_level": settings.log_level,
            "summary_every_s": settings.summary_every_s})

    def start(self):
        self._pool.start()

    def open(self, context, sink):
        return SpeechStream(context, sink, lambda stream: self._pool.open(context.session_id, context, stream))

    def analyze_file(self, context, path, sink):
        """A recorded file's offline job; the sink receives its events like a session's."""
        return SpeechStream(context, sink, lambda stream: self._pool.open_job(
            context.session_id, context, path, self._settings.max_file_audio_s, stream))

    def health(self):
        workers = self._pool.health()
        return {"ready": self._pool.ready, "pipeline": self.name,
                "models": ["whisper:" + self._settings.asr_model, "silero-vad", "resemblyzer"],
                "workers": workers}

    def stop(self):
        self._pool.stop()


class SpeechStream:
    """One session's (or file job's) handle on its worker; every method runs in the hub and returns at once."""

    def __init__(self, context, sink, connect):
        self._sink = sink
        self._session_id = context.session_id
        self._fed_samples = 0
        self._analysed_s = 0.0
        self._closed = False
        self._worker = connect(self)

    def feed(self, samples):
        if self._closed or not len(samples):
            return
        self._fed_samples += len(samples)
        self._worker.send(("feed", self._session_id, samples))

    def finish(self):
        if not self._closed:
            self._worker.send(("finish", self._session_id))

    def cancel(self):
        if not self._closed:
            self._closed = True
            self._worker.forget(self._session_id)
            self._worker.send(("cancel", self._session_id))

    def backlog_seconds(self):
        return max(0.0, self._fed_samples / TARGET_RATE_HZ - self._analysed_s)

    # -- replies from the worker, dispatched in the hub by the pool's reader greenlet ---------

    def on_events(self, events, analysed_s):
        if self._closed:
            return
        for event in events:
            self._sink.publish(event)
        # A batch ending in a final is followed at once by that final's analytics: a status
        # between them would break the catalog's order (final, emotion, cognitive, ...).
        if not (events and isinstance(events[-1], FinalTranscript)):
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

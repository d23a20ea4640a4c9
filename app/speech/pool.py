"""The server's side of the speech workers: spawn them, pin sessions to them, talk without blocking the hub.

Each worker is a child process started with `gevent.subprocess` (a fresh interpreter, not a
fork of the gevent worker, so no hub, lock or model state leaks into it). Every pipe read
and write is gevent-cooperative: one writer greenlet per worker drains a queue, so a
session's `feed` never waits, and one reader greenlet dispatches the replies in the hub,
where the session's sink may be called.
"""
import logging
import os
import sys
from pathlib import Path

import gevent
from gevent import subprocess
from gevent.queue import Queue

from .protocol import (Cancel, Completed, Events, Failed, Feed, Finish, FrameBuffer, LoadFailed, OpenJob,
                       OpenSession, Ready, Stop, pack)

log = logging.getLogger(__name__)

# Threads every worker may use per library: one, so N workers on N cores never oversubscribe.
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_ROOT = Path(__file__).resolve().parents[2]
_RESTART_DELAY_S = 1.0
# A recorded file's job keeps a worker busy like this many live sessions, so new live
# sessions are pinned elsewhere while another worker is free of files.
_JOB_WEIGHT = 4


def worker_environment():
    """A worker process's environment: this one's, every math library held to one thread, and this
    checkout importable. The variables must be set before the worker's numpy loads OpenBLAS,
    which reads OPENBLAS_NUM_THREADS once, at load."""
    return {**os.environ, **{name: "1" for name in _THREAD_ENV},
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}


class WorkerPool:
    """`size` worker processes; sessions are pinned to the least busy one for their whole life."""

    def __init__(self, size, settings):
        """`settings`: the WorkerSettings every worker gets (app.speech.settings)."""
        self._workers = [_Worker(index, settings) for index in range(size)]

    def start(self):
        """Spawn every worker; returns at once, the models load in the children."""
        for worker in self._workers:
            worker.start()

    @property
    def ready(self):
        return all(worker.info is not None for worker in self._workers)

    def health(self):
        """Per-worker readiness and what each loaded."""
        return [{"pid": w.pid, "ready": w.info is not None, "sessions": len(w.sessions) - len(w.jobs),
                 "jobs": len(w.jobs), "catch_up_decodes": w.catch_up_decodes, "error": w.error, **(w.info or {})}
                for w in self._workers]

    def open(self, session_id, context, handler, checkpoints=False, resume=None):
        """Pin a session to a worker and open it there; `handler` receives its replies.

        The handler's `on_events(events, analysed_s, checkpoint)`, `on_completed(events,
        analysed_s)` and `on_failed(message)` are called in the hub; `analysed_s` is None where
        a final's analytics follow in the next call. `checkpoints` and `resume`: see
        `OpenSession`. Returns the session's `PinnedSession`.
        """
        worker = min(self._workers, key=lambda w: (w.info is None, w.load))
        worker.sessions[session_id] = handler
        worker.send(OpenSession(session_id, context, checkpoints, resume))
        return PinnedSession(worker, session_id)

    def open_job(self, job_id, context, path, handler):
        """Give a recorded file's analysis to the worker with the fewest jobs, then sessions."""
        worker = min(self._workers, key=lambda w: (w.info is None, len(w.jobs), w.load))
        worker.sessions[job_id] = handler
        worker.jobs.add(job_id)
        worker.send(OpenJob(job_id, context, str(path)))
        return PinnedSession(worker, job_id)

    def stop(self):
        """Ask every worker to stop, then make sure it did."""
        for worker in self._workers:
            worker.stop()


class PinnedSession:
    """A session's (or file job's) line to the worker it is pinned to: each call queues one message."""

    def __init__(self, worker, session_id):
        self._worker = worker
        self._session_id = session_id

    def feed(self, samples):
        self._worker.send(Feed(self._session_id, samples))

    def finish(self):
        self._worker.send(Finish(self._session_id))

    def cancel(self):
        """Route no more replies to the session's handler and drop its work in the worker."""
        self._worker.forget(self._session_id)
        self._worker.send(Cancel(self._session_id))


class _Worker:
    """One child process and its two greenlets."""

    def __init__(self, index, settings):
        self.index = index
        self._settings = settings
        self.sessions = {}  # live sessions and file jobs, by id: the handlers of their replies
        self.jobs = set()
        # Finals decoded cheaply because the worker was crowded (`Events.catch_up_decodes`), over
        # the life of this slot, restarts included: a sign that it serves more than it should.
        self.catch_up_decodes = 0
        self.info = None
        self.error = None
        self.pid = None
        self._proc = None
        self._outbox = None
        self._greenlets = []
        self._stopping = False

    def start(self):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "app.speech.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(_ROOT), env=worker_environment())
        self.pid = self._proc.pid
        self._outbox = Queue()
        self._outbox.put(pack(self._settings))  # the worker's first frame
        self._greenlets = [gevent.spawn(self._write, self._proc, self._outbox),
                           gevent.spawn(self._read, self._proc)]
        log.info("speech worker %d started (pid %d)", self.index, self.pid)

    @property
    def load(self):
        """Live sessions, plus each file job weighted as several."""
        return len(self.sessions) + (_JOB_WEIGHT - 1) * len(self.jobs)

    def forget(self, session_id):
        """Stop routing replies for `session_id` (a cancelled session or job)."""
        self.sessions.pop(session_id, None)
        self.jobs.discard(session_id)

    def send(self, message):
        """Queue `message` for the worker; never blocks the caller."""
        self._outbox.put(pack(message))

    def stop(self):
        self._stopping = True
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.send(Stop())
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        gevent.killall(self._greenlets, block=False)

    def _write(self, proc, outbox):
        try:
            for data in outbox:
                proc.stdin.write(data)
                proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the reader sees the worker's end and reports it

    def _read(self, proc):
        frames = FrameBuffer()
        try:
            while True:
                data = proc.stdout.read1(1 << 20) if hasattr(proc.stdout, "read1") else proc.stdout.read(1 << 16)
                if not data:
                    break
                frames.extend(data)
                while (message := frames.pop()) is not None:
                    self._dispatch_guarded(message)
        finally:
            self._exited(proc)

    def _dispatch_guarded(self, message):
        """Dispatch one reply; a handler that breaks fails its own session, not this reader."""
        session_id = getattr(message, "session_id", None)
        handler = self.sessions.get(session_id)
        try:
            self._dispatch(message)
        except Exception:
            log.exception("speech worker %d: handling %s for %s failed", self.index, type(message).__name__,
                          session_id)
            self.forget(session_id)
            if handler is not None:
                handler.on_failed("the server could not handle the speech worker's reply")

    def _dispatch(self, message):
        if isinstance(message, Events):
            self.catch_up_decodes += message.catch_up_decodes
        match message:
            case Ready():
                self.info, self.error = message.info, None
                log.info("speech worker %d ready: %s", self.index, message.info)
            case LoadFailed():
                self.error = message.error
                log.error("speech worker %d could not load its models: %s", self.index, message.error)
            case Events() if message.session_id in self.sessions:
                self.sessions[message.session_id].on_events(message.events, message.analysed_s, message.checkpoint)
            case Completed() if message.session_id in self.sessions:
                handler = self.sessions[message.session_id]
                self.forget(message.session_id)
                handler.on_completed(message.events, message.analysed_s)
            case Failed() if message.session_id in self.sessions:
                handler = self.sessions[message.session_id]
                self.forget(message.session_id)
                handler.on_failed(message.message)
            case Events() | Completed() | Failed():
                pass  # a cancelled session's or job's late reply
            case _:
                log.error("speech worker %d sent a message the server does not know: %.200r", self.index, message)

    def _exited(self, proc):
        """The worker's pipe closed: fail its sessions, and start a fresh worker unless stopping."""
        code = proc.wait()
        self.info = None
        orphans, self.sessions, self.jobs = self.sessions, {}, set()
        for handler in orphans.values():
            handler.on_failed(f"the speech worker exited (code {code})")
        self._greenlets[0].kill(block=False)
        if self._stopping:
            return
        if self.error is not None:
            return  # its models could not load: restarting would fail the same way
        self.error = f"exited with code {code}"
        log.error("speech worker %d exited with code %s; restarting", self.index, code)
        gevent.spawn_later(_RESTART_DELAY_S, self._restart)

    def _restart(self):
        if not self._stopping:
            self.error = None
            self.start()

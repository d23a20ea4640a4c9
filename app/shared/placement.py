"""Where a new session's analysis runs: on the live worker with the most free model capacity.

Each worker advertises its load (sessions it holds per model process) in a ZSET and a short
`alive` key, refreshed at every reaper pass. The worker that creates a session picks the
least loaded live worker; if that is another one, it asks it through the worker's own
request list to take the lease and waits briefly for its yes. A worker that does not
answer in time (dying, busy) is skipped: the creator takes the session itself, so a
session never waits for a placement.
"""
import json
import logging
import secrets

from .store import OUTAGES

log = logging.getLogger(__name__)
WORKERS_KEY = "harken:workers"  # ZSET: worker id -> load (held sessions per model process)
CANDIDATES = 4  # the least loaded workers looked at for a placement
ANSWER_S = 1  # how long the creator waits for the chosen worker's yes


def _alive_key(worker_id):
    return f"harken:worker:{worker_id}:alive"


def _requests_key(worker_id):
    return f"harken:worker:{worker_id}:requests"


class Placement:
    """This worker's entry in the load table, its request list, and the choice for new sessions."""

    def __init__(self, store, worker_id, model_processes, alive_ms):
        self._store = store
        self.worker_id = worker_id
        self._per_process = 1.0 / max(1, model_processes)
        self._alive_ms = alive_ms

    def advertise(self, held):
        """Publish this worker's load; called at every reaper pass."""
        with self._store.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(WORKERS_KEY, {self.worker_id: held * self._per_process})
            pipe.pexpire(WORKERS_KEY, self._alive_ms * 10)
            pipe.set(_alive_key(self.worker_id), 1, px=self._alive_ms)
            pipe.execute()

    def withdraw(self):
        """Leave the table (shutdown): no new session is placed here."""
        try:
            self._store.redis.zrem(WORKERS_KEY, self.worker_id)
            self._store.redis.delete(_alive_key(self.worker_id))
        except OUTAGES:
            pass

    def least_loaded(self):
        """The live worker with the lowest load (this one on a tie or when the table is empty)."""
        own = self._store.redis.zscore(WORKERS_KEY, self.worker_id)
        for raw, load in self._store.redis.zrange(WORKERS_KEY, 0, CANDIDATES - 1, withscores=True):
            worker_id = raw.decode()
            if own is not None and load >= own:
                break
            if worker_id == self.worker_id:
                break
            if self._store.redis.exists(_alive_key(worker_id)):
                return worker_id
            self._store.redis.zrem(WORKERS_KEY, worker_id)  # it stopped advertising: gone
        return self.worker_id

    def place_elsewhere(self, worker_id, session_id):
        """Ask `worker_id` to take the session's lease; whether it said yes within ANSWER_S."""
        answer = f"harken:{{{session_id}}}:placed:{secrets.token_hex(6)}"
        with self._store.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(_requests_key(worker_id), json.dumps({"session_id": session_id, "answer": answer}))
            pipe.pexpire(_requests_key(worker_id), self._alive_ms)
            pipe.execute()
        reply = self._store.blocking.blpop([answer], timeout=ANSWER_S)
        return reply is not None and reply[1] == b"1"

    def serve(self, adopt, stopped):
        """Answer placement requests (in a greenlet) until `stopped` is set."""
        while not stopped.is_set():
            try:
                item = self._store.blocking.blpop([_requests_key(self.worker_id)], timeout=self._store.BLOCK_S)
                if item is None:
                    continue
                request = json.loads(item[1])
                try:
                    taken = adopt(request["session_id"]) is not None
                except Exception:  # a broken session must not stop this worker's placements
                    log.exception("[%s] placement failed", request["session_id"])
                    taken = False
                with self._store.redis.pipeline(transaction=True) as pipe:
                    pipe.rpush(request["answer"], b"1" if taken else b"0")
                    pipe.pexpire(request["answer"], ANSWER_S * 10 * 1000)
                    pipe.execute()
            except OUTAGES:
                stopped.wait(0.5)

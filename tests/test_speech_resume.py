"""A live session checkpointed in one speech worker and carried on by another (the failover of
docs/scaleout.md), through the worker's own loop and real models: nothing lost, nothing said
twice, the same speaker labels, and a closing summary of the whole call."""
import json
from collections import deque

import pytest
import soundfile

import speechgen
from app.config import Settings
from app.pipeline import SessionContext
from app.speech.protocol import Events, Feed, Finish, OpenSession
from app.speech.settings import WorkerSettings
from app.speech.worker import LoadedModels, serve
from client.events import FinalTranscript, SummaryUpdate

pytestmark = pytest.mark.speech

RATE_HZ = speechgen.RATE_HZ
PIECE = RATE_HZ // 2  # half a second per chunk, as a browser sends


class ScriptedServer:
    """The worker's channel: the server sends `messages` in turn, as in real time (nothing waits
    while the worker decodes partials), and every reply is kept."""

    def __init__(self, messages):
        self._inbox = deque(messages)
        self.replies = []

    def receive(self, block=True):
        if not self._inbox:
            raise EOFError
        return self._inbox.popleft()

    def pending(self):
        return False

    def send(self, message):
        self.replies.append(message)


@pytest.fixture(scope="module")
def worker():
    settings = WorkerSettings.from_settings(Settings())
    return settings, LoadedModels(settings)


@pytest.fixture(scope="module")
def call():
    path, _ = speechgen.dialogue(speechgen.SUPPORT_CALL, voices=speechgen.SUPPORT_VOICES, gap_s=0.8)
    audio, _ = soundfile.read(path, dtype="float32")
    return audio


def run(worker, audio, start=0, resume=None):
    """The replies of one worker serving a session with checkpoints, fed `audio[start:]`, then finished."""
    settings, models = worker
    messages = [OpenSession("live_r", SessionContext("live_r", "liveconv_r"), checkpoints=True, resume=resume)]
    messages += [Feed("live_r", audio[at:at + PIECE]) for at in range(start, len(audio), PIECE)]
    channel = ScriptedServer(messages + [Finish("live_r")])
    serve(channel, models, settings)
    return channel.replies


def events_of(replies):
    return [event for reply in replies for event in reply.events]


def finals(events):
    return [event for event in events if isinstance(event, FinalTranscript)]


@pytest.fixture(scope="module")
def failover(worker, call):
    """(the uninterrupted run's events, what the first worker published before it died, the second's events)."""
    whole = run(worker, call)
    # The first worker dies right after publishing its third final's commit.
    commits = [i for i, reply in enumerate(whole) if isinstance(reply, Events) and reply.checkpoint]
    assert len(commits) >= 4, "the call should give several finals"
    died_after = commits[2]
    checkpoint = whole[died_after].checkpoint
    json.dumps(checkpoint)  # a store keeps it as JSON
    resumed = run(worker, call, start=checkpoint["samples"], resume=checkpoint)
    return events_of(whole), events_of(whole[:died_after + 1]), events_of(resumed)


def test_every_commit_carries_its_finals_analytics_and_a_checkpoint(worker, call):
    for reply in run(worker, call[:6 * RATE_HZ]):
        if isinstance(reply, Events) and any(isinstance(e, FinalTranscript) for e in reply.events):
            assert reply.checkpoint is not None and reply.checkpoint["samples"] > 0
            ids = {e.utterance_id for e in reply.events if isinstance(e, FinalTranscript)}
            assert {e.utterance_id for e in reply.events if e.name == "emotion"} == ids


def test_the_resumed_session_loses_nothing_and_says_nothing_twice(failover):
    whole, before, after = failover
    joined = finals(before) + finals(after)
    ids = [f.utterance_id for f in joined]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(b.t_start >= a.t_end - 0.05 for a, b in zip(joined, joined[1:]))
    analysed = {e.utterance_id for e in after if e.name in ("emotion", "cognitive")}
    assert analysed == {f.utterance_id for f in finals(after)}  # no analytics for a final said before
    reference = " ".join(text for _, text in speechgen.SUPPORT_CALL)
    uninterrupted = speechgen.wer(reference, " ".join(f.text for f in finals(whole)))
    resumed = speechgen.wer(reference, " ".join(f.text for f in joined))
    assert resumed <= uninterrupted + 0.05, (resumed, uninterrupted, [f.text for f in joined])


def test_the_resumed_session_keeps_its_speakers_and_sums_up_the_whole_call(failover):
    whole, before, after = failover

    def speaker_at(t):
        return next(f.speaker for f in finals(whole) if f.t_start - 0.3 <= t <= f.t_end + 0.3)

    assert [f.speaker for f in finals(after)] == [speaker_at((f.t_start + f.t_end) / 2) for f in finals(after)]
    closing = [e for e in after if isinstance(e, SummaryUpdate) and e.is_final]
    uninterrupted = [e for e in whole if isinstance(e, SummaryUpdate) and e.is_final]
    assert len(closing) == 1 and len(uninterrupted) == 1
    assert set(closing[0].speaker_dynamics) == set(uninterrupted[0].speaker_dynamics)
    assert closing[0].duration_s == pytest.approx(uninterrupted[0].duration_s, abs=1.0)

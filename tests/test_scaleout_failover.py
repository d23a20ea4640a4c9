"""Failover with the speech pipeline: kill -9 of the worker holding a session's analysis, mid-utterance.

Two hosts × one gunicorn worker (each with one model process, HARKEN_WORKERS=1) on one
Redis; the Python client streams a two-voice dialogue at real time through the balancer
with no special code. After the first final, the worker holding the session's lease is
killed with SIGKILL. The session must complete on the other worker with the transcript of
an uninterrupted run (within WER noise), every event id once and in order, and no final,
emotion, cognitive, moment or summary published twice.

The new holder resumes analysis from the session's last checkpoint (`Pipeline.open(…, resume=)`,
written with each final by `AnalysisSink.commit`; docs/scaleout.md).
"""
import os
import signal
import time
from collections import Counter

import pytest

import speechgen
from client import LiveClient
from deployment import Deployment

# Two live runs of the same audio differ by a word or two (utterances cut at other points
# after a failover); a lost or repeated clause is several.
MAX_WER_BETWEEN_RUNS = 0.15


pytestmark = pytest.mark.speech


@pytest.fixture(scope="module")
def speech_deployment(redis_server, tmp_path_factory):
    deployment = Deployment(redis_server.db_url(5), tmp_path_factory.mktemp("scaleout-speech"), hosts=2,
                            workers=1, events_workers=0, HARKEN_PIPELINE="speech", HARKEN_WORKERS="1",
                            HARKEN_LEASE_TTL_S="2", HARKEN_HEARTBEAT_S="2")
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def dialogue_wav(tmp_path_factory):
    path, _ = speechgen.dialogue(speechgen.INVOICE_CALL, tmp_path_factory.mktemp("failover") / "dialogue.wav",
                                voices=speechgen.INVOICE_VOICES)
    return path


def _run(url, wav_path, on_event=lambda stream, event: None):
    """Stream the file at real time with the plain client; every event until done."""
    seen = []
    with LiveClient(url) as client:
        stream = client.stream(str(wav_path), chunk_bytes=8000, realtime=True)
        for event in stream:
            seen.append(event)
            on_event(stream, event)
    return seen


def _text(events):
    return " ".join(e.text for e in events if e.name == "final_transcript")


def test_killed_lease_holder_mid_utterance_loses_and_repeats_nothing(speech_deployment, redis_server, dialogue_wav):
    """kill -9 of the analysing worker after the first final: same transcript, ids in order, nothing twice."""
    reference = _run(speech_deployment.url, dialogue_wav)
    store = redis_server.client(db=5)
    killed = {}

    def kill_after_first_final(stream, event):
        if event.name == "final_transcript" and not killed:
            holder = store.get(f"harken:{{{stream.session.session_id}}}:lease").decode()
            os.kill(int(holder.split(":")[1]), signal.SIGKILL)
            killed.update(pid=int(holder.split(":")[1]), at=time.monotonic(), after_id=event.id)

    interrupted = _run(speech_deployment.url, dialogue_wav, kill_after_first_final)
    store.close()
    assert killed, "no final arrived before the end"
    assert interrupted[-1].name == "done"
    ids = [e.id for e in interrupted]
    assert ids == sorted(set(ids)), "an event id repeated or out of order"
    finals = [e.utterance_id for e in interrupted if e.name == "final_transcript"]
    assert len(finals) == len(set(finals)), f"a final published twice: {finals}"
    for name in ("emotion", "cognitive"):
        keyed = Counter(e.utterance_id for e in interrupted if e.name == name)
        assert all(count == 1 for count in keyed.values()), f"{name} published twice: {keyed}"
    moments = Counter(e.moment_id for e in interrupted if e.name == "moment")
    assert all(count == 1 for count in moments.values()), moments
    assert sum(1 for e in interrupted if e.name == "summary_update") == \
        sum(1 for e in reference if e.name == "summary_update")
    assert any(e.name == "final_transcript" and e.id > killed["after_id"] for e in interrupted)
    assert speechgen.wer(_text(reference), _text(interrupted)) <= MAX_WER_BETWEEN_RUNS
    # The voice prints travel in the checkpoint: the same voices keep the same labels.
    speakers = [[e.speaker for e in run if e.name == "final_transcript"] for run in (reference, interrupted)]
    assert speakers[0][0] == speakers[1][0] and set(speakers[0]) == set(speakers[1])

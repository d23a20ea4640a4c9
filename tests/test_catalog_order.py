"""The bundled demo sample through the real pipeline: recognised, and every event in catalog order."""
import re
from pathlib import Path

import pytest

import speechgen
from live import collect, control, split, start, upload

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sales-call.ogg"
ANALYSIS = ("emotion", "cognitive")


def _reference_text():
    lines = SAMPLE.with_suffix(".txt").read_text().splitlines()
    return " ".join(re.sub(r"^\[[^\]]*\] \w+: ", "", line) for line in lines)


@pytest.fixture(scope="module")
def sample_run(speech_server):
    """The demo sample streamed in 16 kB chunks with a goal and metadata, read to `done`."""
    session = start(speech_server.url, suffix=".ogg", goal="renew the contract", metadata={"demo": True})
    for seq, piece in enumerate(split(SAMPLE.read_bytes(), 16 * 1024)):
        assert upload(speech_server.url, session, seq, piece).status_code == 200
    assert control(speech_server.url, session, "finalize").status_code == 200
    return collect(speech_server.url, session, read_timeout=120)


@pytest.mark.speech
def test_demo_sample_is_heard(sample_run):
    """The bundled sample's finals read as its reference text (WER < 0.2, as the format tests)."""
    finals = [e.data["text"] for e in sample_run if e.name == "final_transcript"]
    assert speechgen.wer(_reference_text(), " ".join(finals)) < 0.2


@pytest.mark.speech
def test_each_final_is_followed_by_its_emotion_then_cognitive(sample_run):
    """final_transcript, emotion, cognitive come back to back for the same utterance, nothing between."""
    names = [e.name for e in sample_run]
    finals = [i for i, name in enumerate(names) if name == "final_transcript"]
    assert finals
    for i in finals:
        utterance = sample_run[i].data["utterance_id"]
        assert names[i + 1:i + 3] == list(ANALYSIS)
        assert {sample_run[i + 1].data["utterance_id"], sample_run[i + 2].data["utterance_id"]} == {utterance}


@pytest.mark.speech
def test_stream_opens_with_status_and_closes_with_summary_status_done(sample_run):
    """status first; at the end summary_update (echoing goal), status completed, done with metadata."""
    assert sample_run[0].name == "status"
    assert [e.name for e in sample_run[-3:]] == ["summary_update", "status", "done"]
    assert sample_run[-3].data["goal"] == "renew the contract"
    assert sample_run[-2].data["phase"] == "completed"
    assert sample_run[-1].data["metadata"] == {"demo": True}
    analysed = [e for e in sample_run if e.name in ("transition", "moment")]
    first_final = next(i for i, e in enumerate(sample_run) if e.name == "final_transcript")
    assert all(sample_run.index(e) > first_final for e in analysed)

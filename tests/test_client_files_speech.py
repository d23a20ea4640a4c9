"""`analyze_file` and `stream_file_analysis` of the bundled two-speaker sales call, against the server with the real speech models."""
import asyncio
import contextlib
import io
import logging
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

import live
import speechgen
from client import (AnalysisResult, AsyncLiveClient, Cognitive, ConversationResult, Done, Emotion,
                    FinalTranscript, LiveClient, RetryPolicy, Status, SummaryUpdate)

pytestmark = pytest.mark.speech

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sales-call.ogg"
MAX_WER = 0.15
HUNG_UP = "file analysis cancelled: the client hung up"


def reference_turns():
    """[(start_s, end_s, speaker, text)] from `samples/sales-call.txt` ("[  0.00-  4.35] rep: Hi Dana, …")."""
    turns = []
    for line in (ROOT / "samples" / "sales-call.txt").read_text().splitlines():
        span, _, said = line.partition("] ")
        start_s, end_s = span.strip("[ ").split("-")
        speaker, _, text = said.partition(": ")
        turns.append((float(start_s), float(end_s), speaker, text))
    return turns


def assert_the_call_was_heard(utterances):
    """The sample's words (WER within MAX_WER), and its two speakers told apart as the script has them."""
    turns = reference_turns()
    heard = " ".join(u["text"] for u in utterances)
    assert speechgen.wer(" ".join(t[3] for t in turns), heard) <= MAX_WER, heard
    labels = {}
    for u in utterances:
        overlap = [(min(u["t_end"], end) - max(u["t_start"], start), speaker)
                   for start, end, speaker, _ in turns]
        labels.setdefault(max(overlap)[1], set()).add(u["speaker"])
    assert set(labels) == {"rep", "buyer"}, labels
    assert all(len(found) == 1 for found in labels.values()), labels
    assert labels["rep"] != labels["buyer"]


def assert_catalog_order(events):
    """Ids 1…n; status first; each final followed by its emotion and cognitive; summary, completed, done last."""
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert isinstance(events[0], Status) and isinstance(events[-1], Done)
    assert isinstance(events[-2], Status) and events[-2].phase == "completed"
    assert any(isinstance(e, SummaryUpdate) for e in events)
    analysis = [e for e in events if not isinstance(e, Status)]
    for index, event in enumerate(analysis):
        if isinstance(event, FinalTranscript):
            assert [type(e) for e in analysis[index + 1:index + 3]] == [Emotion, Cognitive]


def test_analyze_file_returns_the_whole_document(speech_server):
    """One POST /analyze: the call's words and speakers, the document whole, ConversationResult's view of it."""
    with LiveClient(speech_server.url) as client:
        result = client.analyze_file(SAMPLE, goal="close the deal", metadata={"crm_id": "42"})
    assert isinstance(result, AnalysisResult) and result.complete
    assert_the_call_was_heard(result.utterances)
    document = result.document
    assert result.conversation_id == document["conversation_id"] and result.conversation_id.startswith("analysis_")
    assert document["utterances"] == len(result.utterances) == len(document["timeline"])
    assert document["goal"] == "close the deal" and document["metadata"] == {"crm_id": "42"}
    assert result.summary.goal == "close the deal" and result.summary.overview
    assert all(u["emotion"]["label"] and 0 <= u["cognitive"]["engagement"] <= 1 for u in result.utterances)
    assert result.phases and result.phases[0]["phase_name"] == "opening"
    assert {"question", "objection"} <= {m["category"] for m in result.moments}
    assert result.insights["overall_sentiment"]["mean"] is not None
    assert result.audio_seconds == pytest.approx(30.4, abs=0.5) and not result.truncated
    saved = result.to_dict()
    assert saved["complete"] and saved["document"] == document
    assert saved["transcript"].count("\n") == len(result.utterances) - 1


def test_stream_file_analysis_yields_the_live_catalog(speech_server):
    """POST /analyze/stream: typed events in the live catalog's order, the same words and speakers."""
    result = ConversationResult()
    with LiveClient(speech_server.url) as client:
        events = list(client.stream_file_analysis(SAMPLE.read_bytes(), metadata={"crm_id": "7"}))
    for event in events:
        result.add(event)
    assert_catalog_order(events)
    assert events[-1].metadata == {"crm_id": "7"} and events[-1].conversation_id.startswith("analysis_")
    assert result.complete
    assert_the_call_was_heard(result.utterances)


def test_closing_the_stream_stops_the_analysis(speech_server, tmp_path):
    """Closing the iterator (sync or async) after the first event hangs up, and the server cancels the job and frees its worker."""
    with av.open(str(SAMPLE)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        samples = np.concatenate([f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                                  for f in resampler.resample(frame)])
    long_call = tmp_path / "long.wav"
    soundfile.write(long_call, np.tile(samples, 12), 16000, subtype="PCM_16")  # six minutes
    hangups = speech_server.log().count(HUNG_UP)
    with LiveClient(speech_server.url) as client:
        events = client.stream_file_analysis(long_call)
        assert isinstance(next(events), Status)
        events.close()
    assert live.wait_for(lambda: speech_server.log().count(HUNG_UP) == hangups + 1, 60), "no hang-up noticed"
    assert live.wait_for(lambda: live.worker_jobs(speech_server.url) == 0, 60), "the worker kept the job"

    async def first_event_then_close():
        async with AsyncLiveClient(speech_server.url) as client:
            async with contextlib.aclosing(client.stream_file_analysis(long_call)) as events:
                return await events.__anext__()

    assert isinstance(asyncio.run(asyncio.wait_for(first_event_then_close(), 120)), Status)
    assert live.wait_for(lambda: speech_server.log().count(HUNG_UP) == hangups + 2, 60), "no async hang-up noticed"
    assert live.wait_for(lambda: live.worker_jobs(speech_server.url) == 0, 60), "the worker kept the job"


def test_async_client_analyses_the_call_both_ways(speech_server):
    """AsyncLiveClient: analyze_file from an open file, and stream_file_analysis, both hear the call."""
    async def scenario():
        async with AsyncLiveClient(speech_server.url) as client:
            with open(SAMPLE, "rb") as audio:
                result = await client.analyze_file(audio, goal="close the deal")
            async with contextlib.aclosing(client.stream_file_analysis(io.BytesIO(SAMPLE.read_bytes()))) as stream:
                events = [event async for event in stream]
        return result, events

    result, events = asyncio.run(asyncio.wait_for(scenario(), 600))
    assert result.document["goal"] == "close the deal"
    assert_the_call_was_heard(result.utterances)
    assert_catalog_order(events)
    streamed = ConversationResult()
    for event in events:
        streamed.add(event)
    assert_the_call_was_heard(streamed.utterances)


@pytest.fixture(scope="module")
def one_file_server(start_server):
    """The speech pipeline analysing one file at a time, asking a refused client to come back after 1 s."""
    return start_server(HARKEN_PIPELINE="speech", HARKEN_WORKERS="1", HARKEN_MAX_FILE_JOBS="1",
                        HARKEN_RETRY_AFTER_S="1")


def test_a_full_queue_is_waited_out(one_file_server, caplog):
    """While one file is analysed, another's analyze_file is refused (analysis_queue_full), waits its Retry-After and is taken once the slot frees."""
    caplog.set_level(logging.INFO, logger="client")
    answers = {}
    with LiveClient(one_file_server.url, retry=RetryPolicy(tries=120)) as client:
        busy = client.stream_file_analysis(SAMPLE)
        assert isinstance(next(busy), Status)  # the server's one file slot is taken now
        waiting = threading.Thread(target=lambda: answers.update(result=client.twin().analyze_file(SAMPLE)))
        waiting.start()
        assert live.wait_for(lambda: "analysis_queue_full" in caplog.text, 60), "the second file was not refused"
        assert isinstance(list(busy)[-1], Done)
        waiting.join(300)
    assert_the_call_was_heard(answers["result"].utterances)

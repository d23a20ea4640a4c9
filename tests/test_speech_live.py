"""The speech pipeline end to end: real gunicorn, real models, generated speech in every format."""
import os
import signal
import threading
import time

import numpy as np
import pytest
import requests
import soundfile

import live
import speechgen

pytestmark = pytest.mark.speech

PASSAGE = ("Thank you for joining the call today. I would like to review the project plan "
           "and agree on the next steps before the end of the week.")
# Whisper base reads Piper's voice at about 7 % WER offline. Streaming (utterances cut by the
# VAD, prefixes committed early) and lossy codecs at 32-64 kbit/s may each cost a word or two
# on this 26-word passage; 20 % allows five errors yet fails on a lost or repeated clause.
FORMAT_MAX_WER = 0.2
FORMATS = ["wav", "pcm", "ogg", "webm", "mp4", "mp3", "flac"]


def run_session(url, data, suffix, sizes=(8000, 3001, 12000), bytes_per_s=None, **fields):
    """Stream `data` in chunks from a thread, finalize, and return every event until `done`.

    With `bytes_per_s` the chunks go out no faster than a live microphone would send them.
    """
    session = live.start(url, suffix=suffix, **fields)
    response = live.open_events(url, session, read_timeout=120)
    assert response.status_code == 200
    failures = []

    def upload():
        began, sent = time.monotonic(), 0
        for seq, chunk in enumerate(speechgen.split_chunks(data, list(sizes))):
            if bytes_per_s:
                time.sleep(max(0.0, began + sent / bytes_per_s - time.monotonic()))
            sent += len(chunk)
            reply = live.upload(url, session, seq, chunk)
            if reply.status_code != 200:
                failures.append(reply.text)
                return
        live.control(url, session, "finalize")

    uploader = threading.Thread(target=upload)
    uploader.start()
    events = []
    for event in live.iter_events(response):
        events.append(event)
        if event.name in ("done", "error"):
            break
    uploader.join()
    assert not failures, failures
    return events


def finals(events):
    return [e.data for e in events if e.name == "final_transcript"]


def transcript(events):
    return " ".join(f["text"] for f in finals(events))


@pytest.fixture(scope="module")
def passage_wav():
    return speechgen.speak(PASSAGE)


@pytest.fixture(scope="module")
def wav_events(speech_server, passage_wav):
    """One WAV session, sent at real time, shared by the tests that only read its events."""
    return run_session(speech_server.url, passage_wav.read_bytes(), ".wav", sizes=(6400,),
                       bytes_per_s=32000)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_gives_the_same_words(speech_server, passage_wav, fmt, wav_events):
    """Every container a client may send is recognised to the same words."""
    data = speechgen.encode(passage_wav, fmt).read_bytes()
    suffix = ".pcm" if fmt == "pcm" else f".{fmt}"
    events = wav_events if fmt == "wav" else run_session(speech_server.url, data, suffix)
    assert events[-1].name == "done"
    assert speechgen.wer(PASSAGE, transcript(events)) <= FORMAT_MAX_WER, transcript(events)


def test_finals_carry_words_times_and_speaker(wav_events):
    """Each final has ordered word timings inside its span, a confidence and a speaker."""
    results = finals(wav_events)
    assert results
    for final in results:
        assert final["speaker"].startswith("Speaker_")
        assert 0.0 < final["confidence"] <= 1.0
        starts = [w["start"] for w in final["words"]]
        assert starts == sorted(starts)
        assert final["t_start"] <= final["words"][0]["start"] and final["words"][-1]["end"] <= final["t_end"]
        assert " ".join(w["word"] for w in final["words"]) == final["text"]
    assert [f["utterance_id"] for f in results] == sorted({f["utterance_id"] for f in results})


def test_partials_precede_their_final(wav_events):
    """Partials arrive while speech goes on, each before the final of its utterance, none after."""
    partial_ids = [e.data["utterance_id"] for e in wav_events if e.name == "partial_transcript"]
    assert partial_ids, "no partial transcripts at all"
    final_at = {e.data["utterance_id"]: i for i, e in enumerate(wav_events) if e.name == "final_transcript"}
    for i, event in enumerate(wav_events):
        if event.name == "partial_transcript":
            assert event.data["is_final"] is False
            assert event.data["utterance_id"] not in final_at or i < final_at[event.data["utterance_id"]]


def test_dialogue_gets_two_speakers_with_the_right_words(speech_server):
    """Two voices become Speaker_0 and Speaker_1 and at least 90 % of words go to the right one."""
    path, spans = speechgen.dialogue(speechgen.INVOICE_CALL, voices=speechgen.INVOICE_VOICES)
    events = run_session(speech_server.url, path.read_bytes(), ".wav")
    words = [(w, f["speaker"]) for f in finals(events) for w in f["words"]]
    assert {speaker for _, speaker in words} == {"Speaker_0", "Speaker_1"}
    votes = {}
    for word, speaker in words:
        middle = (word["start"] + word["end"]) / 2
        truth = min(spans, key=lambda s: 0 if s.start_s <= middle <= s.end_s else
                    min(abs(middle - s.start_s), abs(middle - s.end_s))).speaker
        votes.setdefault(truth, []).append(speaker)
    mapping = {truth: max(set(labels), key=labels.count) for truth, labels in votes.items()}
    assert len(set(mapping.values())) == 2
    correct = sum(labels.count(mapping[truth]) for truth, labels in votes.items())
    assert correct / len(words) >= 0.9


def test_finalize_flushes_the_last_utterance(speech_server):
    """Speech cut off with no trailing silence still ends as a final once the client finalizes."""
    text = "Please send the signed contract back to me by Friday."
    samples, rate = soundfile.read(speechgen.speak(text), dtype="int16")
    voiced = np.flatnonzero(np.abs(samples) > 300)
    pcm = samples[:voiced[-1] + 1].tobytes()
    events = run_session(speech_server.url, pcm, ".pcm", sizes=(6400,))
    names = [e.name for e in events]
    assert names.index("final_transcript") < names.index("summary_update") < names.index("done")
    assert speechgen.wer(text, transcript(events)) <= FORMAT_MAX_WER
    assert speechgen.normalise(transcript(events)).endswith("friday")


def test_metrics_report_each_speech_workers_sessions_and_catch_up_decodes(speech_server):
    """One series of each per worker of the pool, labelled by its index, as /healthz lists them."""
    workers = live.health(speech_server.url)["pipeline"]["workers"]
    samples = dict(line.rsplit(" ", 1) for line in
                   requests.get(speech_server.url + "/metrics", timeout=live.TIMEOUT).text.splitlines()
                   if line and not line.startswith("#"))
    for name in ("harken_worker_sessions", "harken_worker_catch_up_decodes_total"):
        labelled = sorted(key for key in samples if key.startswith(name + "{"))
        assert labelled == [f'{name}{{worker="{index}"}}' for index in range(len(workers))], labelled
        assert all(float(samples[key]).is_integer() and float(samples[key]) >= 0 for key in labelled)


@pytest.mark.parametrize("fmt", ["ogg", "webm", "mp4", "mp3", "flac"])
def test_garbage_chunk_is_refused_and_the_session_goes_on(speech_server, fmt):
    """Bytes that are not the announced container get 422 invalid_chunk; the real stream then works."""
    text = "The meeting moved to Thursday afternoon."
    data = speechgen.encode(speechgen.speak(text), fmt).read_bytes()
    session = live.start(speech_server.url, suffix=f".{fmt}")
    refused = live.upload(speech_server.url, session, 0, b"definitely not audio " * 50)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_chunk"
    chunks = speechgen.split_chunks(data, [5000])
    for seq, chunk in enumerate(chunks):
        assert live.upload(speech_server.url, session, seq, chunk).status_code == 200
    assert live.control(speech_server.url, session, "finalize").status_code == 200
    events = list(live.iter_events(live.open_events(speech_server.url, session, read_timeout=120)))
    assert events[-1].name == "done"
    assert speechgen.wer(text, transcript(events)) <= 0.25


def test_a_dead_worker_fails_its_sessions_and_is_replaced(start_server):
    """Killing a speech worker ends its session with a fatal error; a fresh worker serves the next."""
    server = start_server(HARKEN_PIPELINE="speech", HARKEN_WORKERS="1")
    session = live.start(server.url, suffix=".wav")
    response = live.open_events(server.url, session, read_timeout=120)
    assert live.upload(server.url, session, 0, speechgen.speak(PASSAGE).read_bytes()[:64000]).status_code == 200
    pid = live.health(server.url)["pipeline"]["workers"][0]["pid"]
    os.kill(pid, signal.SIGKILL)
    events = list(live.iter_events(response))
    assert events[-1].name == "error" and events[-1].data["fatal"] is True
    assert live.wait_for(lambda: live.health(server.url)["ready"], 120), "no replacement worker became ready"
    text = "The meeting moved to Thursday afternoon."
    events = run_session(server.url, speechgen.speak(text).read_bytes(), ".wav")
    assert events[-1].name == "done"
    assert speechgen.wer(text, transcript(events)) <= 0.25


def test_start_is_refused_while_the_models_are_not_loaded(start_server):
    """A server whose model cannot load answers start with 503 pipeline_unavailable, and /healthz says why."""
    server = start_server(need_models=False, HARKEN_PIPELINE="speech", HARKEN_WORKERS="1",
                          HARKEN_ASR_MODEL="whisper-no-such-size")
    response = requests.post(server.url + "/analyze/live/start", json={}, timeout=live.TIMEOUT)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "pipeline_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert live.wait_for(lambda: live.health(server.url)["pipeline"]["workers"][0]["error"], 60), \
        "the worker never reported its load failure"
    health = live.health(server.url)
    assert health["ready"] is False and "whisper-no-such-size" in health["pipeline"]["workers"][0]["error"]

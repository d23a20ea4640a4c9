"""Recorded files through a real gunicorn: POST /analyze (one document) and /analyze/stream (SSE)."""
import io
import re
from pathlib import Path

import av
import numpy as np
import pytest
import requests
import soundfile
import yaml
from openapi_schema_validator import OAS30Validator

import live
import speechgen

pytestmark = pytest.mark.speech

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sales-call.ogg"
TIMEOUT = (5, 300)
# "[  0.00-  4.35] rep: Hi Dana, …" — the sample's reference turns.
TURN = re.compile(r"^\[\s*([\d.]+)-\s*([\d.]+)\] (\w+): (.*)$")
# The whole-file reading of the sample by Whisper base misses two words of 93 ("slow" as
# "flow", "reporting" as "recording"); 10 % fails on a lost clause, not on those.
SAMPLE_MAX_WER = 0.1
# The first 10 s of the sample hold two turns and 26 words: two misread words pass, a lost
# sentence does not.
FORMAT_MAX_WER = 0.2
FORMAT_SECONDS = 10.3
# (container, codec, codec rate) for each file extension POST /analyze must take.
CONTAINERS = {
    "wav": ("wav", "pcm_s16le", 16000), "mp3": ("mp3", "libmp3lame", 44100),
    "ogg": ("ogg", "libopus", 48000), "webm": ("webm", "libopus", 48000),
    "flac": ("flac", "flac", 16000), "mp4": ("mp4", "aac", 44100), "m4a": ("ipod", "aac", 44100),
    "mov": ("mov", "aac", 44100), "aac": ("adts", "aac", 44100),
}


@pytest.fixture(scope="module")
def files_server(start_server):
    """The speech pipeline, one worker, at most one file analysed at a time."""
    return start_server(HARKEN_PIPELINE="speech", HARKEN_WORKERS="1", HARKEN_MAX_FILE_JOBS="1")


@pytest.fixture(scope="module")
def document_schema():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return OAS30Validator({"$ref": "#/components/schemas/AnalysisDocument",
                           "components": spec["components"]})


def reference_turns():
    """[(start_s, end_s, speaker, text)] of the bundled sample."""
    lines = (ROOT / "samples" / "sales-call.txt").read_text().splitlines()
    return [(float(m[1]), float(m[2]), m[3], m[4]) for m in map(TURN.match, lines) if m]


def sample_samples():
    """The bundled sample as 16 kHz mono float32."""
    with av.open(str(SAMPLE)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def encode(samples, extension):
    """`samples` (16 kHz mono float32) as a whole file of `extension`, written by FFmpeg."""
    container_format, codec, rate = CONTAINERS[extension]
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 16000
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def wav_bytes(samples):
    out = io.BytesIO()
    soundfile.write(out, samples, 16000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def analyze(url, data, filename, path="/analyze", **fields):
    return requests.post(url + path, files={"file": (filename, data)}, data=fields, timeout=TIMEOUT)


def stream_analysis(url, data, filename, path="/analyze/stream"):
    response = requests.post(url + path, files={"file": (filename, data)}, stream=True, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response


def test_a_two_speaker_call_is_read_whole_with_speakers_and_moments(files_server, document_schema):
    """The sample call: its words, two speakers as the script has them, its moments, the documented shape."""
    response = analyze(files_server.url, SAMPLE.read_bytes(), "sales-call.ogg", goal="close the deal",
                       metadata='{"crm_id": "42"}')
    assert response.status_code == 200, response.text
    doc = response.json()
    document_schema.validate(doc)
    turns = reference_turns()
    heard = " ".join(u["text"] for u in doc["timeline"])
    assert speechgen.wer(" ".join(t[3] for t in turns), heard) <= SAMPLE_MAX_WER, heard
    assert doc["conversation_id"].startswith("analysis_") and doc["utterances"] == len(doc["timeline"])
    assert doc["goal"] == "close the deal" and doc["metadata"] == {"crm_id": "42"}
    assert doc["truncated"] is False and doc["duration_s"] == pytest.approx(30.4, abs=0.5)
    # Each script speaker maps to one label, and the two labels differ.
    labels = {}
    for start_s, end_s, speaker, _ in turns:
        inside = {u["speaker"] for u in doc["timeline"] if start_s - 0.5 <= u["t_start"] < end_s}
        assert len(inside) == 1, (speaker, inside)
        labels.setdefault(speaker, set()).update(inside)
    assert all(len(found) == 1 for found in labels.values()) and len(set.union(*labels.values())) == 2
    categories = {m["category"] for m in doc["moments"]}
    assert {"question", "objection", "cta_commit"} <= categories
    phases = [p["phase_name"] for p in doc["segmentation"]["phases"]]
    assert phases[0] == "opening" and "objection_handling" in phases and "close" in phases
    assert doc["summary"]["goal"] == "close the deal"
    assert doc["insights"]["conversation_dynamics"]["speaker_changes"] == 5
    for item in doc["timeline"]:
        assert item["words"] and item["emotion"]["label"] and 0 <= item["cognitive"]["engagement"] <= 1
        assert item["commitment_level"] in ("low", "medium", "high") and item["prosody_desc"]
    price = next(u for u in doc["timeline"] if "price is too high" in u["text"])
    assert price["polarity"] < 0 and price["sentiment"] == "negative"
    commitment = next(u for u in doc["timeline"] if "schedule a demo" in u["text"])
    assert commitment["commitment_score"] > price["commitment_score"]


@pytest.mark.parametrize("extension", sorted(CONTAINERS))
def test_every_listed_format_is_analysed(files_server, extension):
    """mp4, mov, m4a, aac, webm, mp3, wav, ogg, flac: whole files, not fragmented, all read."""
    samples = sample_samples()[:int(FORMAT_SECONDS * 16000)]
    response = analyze(files_server.url, encode(samples, extension), f"call.{extension}")
    assert response.status_code == 200, response.text
    heard = " ".join(u["text"] for u in response.json()["timeline"])
    reference = " ".join(t[3] for t in reference_turns()[:2])
    assert speechgen.wer(reference, heard) <= FORMAT_MAX_WER, (extension, heard)


def test_the_stream_follows_the_live_catalog_order(files_server):
    """?stream=true: status first, progress rising, final then emotion then cognitive, summary, completed, done."""
    response = stream_analysis(files_server.url, SAMPLE.read_bytes(), "sales-call.ogg",
                               path="/analyze?stream=true")
    events = list(live.iter_events(response))
    names = [e.name for e in events]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert names[0] == "status" and names[-3:] == ["summary_update", "status", "done"]
    assert events[-2].data["phase"] == "completed" and events[-2].data["progress"] == 1.0
    progress = [e.data["progress"] for e in events if e.name == "status"]
    assert progress == sorted(progress)
    for index, name in enumerate(names):
        if name == "final_transcript":
            assert names[index + 1:index + 3] == ["emotion", "cognitive"]
            assert events[index + 1].data["utterance_id"] == events[index].data["utterance_id"]
    assert names.count("final_transcript") >= 6
    assert events[-1].data["conversation_id"].startswith("analysis_")


def test_a_truncated_file_is_analysed_as_far_as_it_decodes(files_server):
    """A WAV cut to 60 % (its header still announces the whole): what is there is read, and the result says so."""
    data = wav_bytes(sample_samples())
    response = analyze(files_server.url, data[:int(len(data) * 0.6)], "cut.wav")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["truncated"] is True and "announces" in doc["warnings"][0]
    assert doc["duration_s"] == pytest.approx(0.6 * 30.4, abs=1.0)
    assert doc["utterances"] >= 3


def test_a_client_that_hangs_up_stops_the_work(files_server):
    """Closing the stream mid-analysis frees the worker; the next file is analysed as usual."""
    long_call = wav_bytes(np.tile(sample_samples(), 6))  # three minutes
    response = stream_analysis(files_server.url, long_call, "long.wav")
    first = next(live.iter_events(response))
    assert first.name == "status"
    response.close()
    assert live.wait_for(lambda: live.worker_jobs(files_server.url) == 0, 60), "the worker kept the job"
    again = analyze(files_server.url, encode(sample_samples()[:int(FORMAT_SECONDS * 16000)], "wav"), "a.wav")
    assert again.status_code == 200 and again.json()["utterances"] >= 2


def test_a_full_queue_answers_503_with_retry_after(files_server):
    """HARKEN_MAX_FILE_JOBS=1: while one file is analysed, another is refused with Retry-After."""
    busy = stream_analysis(files_server.url, wav_bytes(np.tile(sample_samples(), 4)), "long.wav")
    try:
        refused = analyze(files_server.url, SAMPLE.read_bytes(), "sales-call.ogg")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "analysis_queue_full"
        assert int(refused.headers["Retry-After"]) > 0
    finally:
        busy.close()
    assert live.wait_for(lambda: live.worker_jobs(files_server.url) == 0, 60), "the worker kept the job"


def test_a_live_session_keeps_its_finals_while_a_file_is_analysed(files_server):
    """One worker, a three-minute file in analysis: a live session still gets its finals and completes."""
    busy = stream_analysis(files_server.url, wav_bytes(np.tile(sample_samples(), 6)), "long.wav")
    try:
        session = live.start(files_server.url, suffix=".ogg")
        data = SAMPLE.read_bytes()
        for seq, chunk in enumerate(live.split(data, 16000)):
            assert live.upload(files_server.url, session, seq, chunk).status_code == 200
        live.control(files_server.url, session, "finalize")
        events = live.collect(files_server.url, session, read_timeout=120)
        finals = [e.data["text"] for e in events if e.name == "final_transcript"]
        assert events[-1].name == "done"
        assert speechgen.wer(" ".join(t[3] for t in reference_turns()), " ".join(finals)) <= 0.2
    finally:
        busy.close()
    assert live.wait_for(lambda: live.worker_jobs(files_server.url) == 0, 60), "the worker kept the job"

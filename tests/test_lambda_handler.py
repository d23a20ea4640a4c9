"""client/lambda_handler.py invoked as the Lambda runtime does: an event dict and a context with a deadline, against the real server."""
import base64
import functools
import http.server
import json
import threading
import time
import uuid

import pytest

import speechgen
from client.lambda_handler import handler
from conftest import free_port
from proxy import Fault, FaultyProxy

PCM_BYTES_PER_S = 32000


class LambdaContext:
    """The runtime's `context`: the remaining time counts down from `budget_s`."""

    def __init__(self, budget_s, function_name="harken-live"):
        self._deadline = time.monotonic() + budget_s
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def invoke(event, budget_s=60.0):
    """Call the handler as the runtime would; (status, parsed body, seconds it took, context)."""
    context = LambdaContext(budget_s)
    began = time.monotonic()
    answer = handler(event, context)
    took = time.monotonic() - began
    assert set(answer) == {"statusCode", "headers", "body"}
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"]), took, context


def pcm_event(seconds, **options):
    return {"audio_base64": base64.b64encode(bytes(int(PCM_BYTES_PER_S * seconds))).decode(),
            "suffix": ".pcm", **options}


@pytest.fixture
def harken_url(monkeypatch):
    """Point the handler at a server, as the function's environment would."""
    def point(url, api_key=None):
        monkeypatch.setenv("HARKEN_URL", url)
        if api_key:
            monkeypatch.setenv("HARKEN_API_KEY", api_key)
        else:
            monkeypatch.delenv("HARKEN_API_KEY", raising=False)
    return point


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server for tmp_path, standing in for the storage an audio_url points to."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(http.server.SimpleHTTPRequestHandler,
                                               directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_base64_audio_completes(transport_server, harken_url):
    """Base64 audio in the event: streamed, finalized, 200 with the session's results."""
    harken_url(transport_server.url)
    status, body, took, context = invoke(pcm_event(2.0, metadata={"ticket": 42}))
    assert status == 200, body
    assert body["complete"] is True and body["error"] is None
    assert body["request_id"] == context.aws_request_id
    assert body["audio_bytes"] == body["audio_bytes_sent"] == 64000 and not body["truncated"]
    assert body["audio_seconds"] == pytest.approx(2.0)
    assert body["session_id"].startswith("live_") and body["conversation_id"].startswith("liveconv_")
    assert body["transcript"] == "" and body["utterances"] == [] and body["moments"] == []


def test_audio_url_and_api_gateway_event(transport_server, harken_url, file_server, tmp_path):
    """An audio_url, inside an API Gateway / function URL event with a JSON body."""
    (tmp_path / "call.pcm").write_bytes(bytes(PCM_BYTES_PER_S))
    harken_url(transport_server.url)
    event = {"body": json.dumps({"audio_url": f"{file_server}/call.pcm"}), "isBase64Encoded": False,
             "requestContext": {"http": {"method": "POST"}}}
    status, body, _, _ = invoke(event)
    assert status == 200, body
    assert body["complete"] and body["audio_bytes_sent"] == PCM_BYTES_PER_S


def test_api_key_comes_from_the_environment(start_server, harken_url):
    """HARKEN_API_KEY is sent; a refused key is a 502 naming the server's code, never a stack trace."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS="lambda-key")
    harken_url(server.url, "lambda-key")
    assert invoke(pcm_event(0.5))[0] == 200
    harken_url(server.url, "stale-key")
    status, body, _, _ = invoke(pcm_event(0.5))
    assert status == 502 and body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("event, complaint", [
    ({}, "audio_base64 or audio_url"),
    ({"audio_base64": "not base64!!"}, "not valid base64"),
    ({"audio_url": "file:///etc/passwd"}, "must be an https:// (or http://) URL"),
    ({"body": "{not json"}, "JSON object"),
    ({"body": "[1, 2]"}, "JSON object"),
    ({**pcm_event(0.1), "chunk_bytes": "many"}, "chunk_bytes must be a positive number"),
])
def test_bad_events_are_400(transport_server, harken_url, event, complaint):
    """An event the handler cannot use is a 400 saying why."""
    harken_url(transport_server.url)
    status, body, _, _ = invoke(event)
    assert status == 400 and body["error"]["code"] == "bad_event"
    assert complaint in body["error"]["message"]


def test_missing_configuration_and_unreachable_server(harken_url, monkeypatch):
    """No HARKEN_URL is a 500 saying so; a server that is not there is a 504."""
    monkeypatch.delenv("HARKEN_URL", raising=False)
    status, body, _, _ = invoke(pcm_event(0.1))
    assert status == 500 and "HARKEN_URL" in body["error"]["message"]
    harken_url(f"http://127.0.0.1:{free_port()}")
    status, body, _, _ = invoke(pcm_event(0.1))
    assert status == 504 and body["error"]["code"] == "stream_failed"


def test_no_time_left_is_refused_at_once(harken_url):
    """With less time than the answer needs, no session is started."""
    # Nothing listens there: trying to start a session would answer stream_failed, not deadline.
    harken_url(f"http://127.0.0.1:{free_port()}")
    status, body, _, _ = invoke(pcm_event(1.0), budget_s=1.0)
    assert status == 504 and body["error"]["code"] == "deadline"


def test_long_audio_is_finalized_early_to_meet_the_deadline(transport_server, harken_url):
    """More audio than time: the handler stops uploading, finalizes, and still answers complete in time."""
    harken_url(transport_server.url)
    status, body, took, _ = invoke(pcm_event(120.0, chunk_bytes=1600), budget_s=4.0)
    assert status == 200, body
    assert body["complete"] and body["truncated"]
    assert 0 < body["audio_bytes_sent"] < body["audio_bytes"]
    assert body["audio_seconds"] == pytest.approx(body["audio_bytes_sent"] / PCM_BYTES_PER_S)
    # Complete, not cut off: `done` came before the cancel point, two seconds before the deadline.
    assert not body["deadline_hit"]
    assert took < 20 * 4.0  # a hang, not a slow machine


def test_deadline_too_short_to_finish_cancels_and_reports_partial(transport_server, harken_url):
    """The server cannot finish in time (its finalize is held up): the handler cancels and answers 504 with what it has."""
    def hold_finalize(seen):
        if seen.path.endswith("/control") and len(proxy.requests_to("/control")) == 1:
            return Fault(delay_s=5.0)
        return None

    with FaultyProxy(transport_server.url, hold_finalize) as proxy:
        harken_url(proxy.url)
        status, body, took, _ = invoke(pcm_event(1.0), budget_s=5.0)
        controls = proxy.requests_to("/control")
    assert status == 504, body
    assert body["complete"] is False and body["deadline_hit"] is True
    assert body["error"] == {"code": "cancelled", "message": "deadline reached"}
    assert body["audio_bytes_sent"] == body["audio_bytes"]
    assert body["last_event_id"] >= 2 and body["session_id"].startswith("live_")
    assert len(controls) == 2 and took < 5.0


@pytest.mark.speech
def test_real_speech_returns_transcript_utterances_and_summary(speech_server, harken_url, tmp_path):
    """Real speech: the transcript is what was said, each utterance has a speaker and emotion, the summary is there."""
    text = "Good morning. I am calling because my order arrived broken and I want a refund today."
    wav = speechgen.speak(text, tmp_path / "call.wav")
    harken_url(speech_server.url)
    event = {"audio_base64": base64.b64encode(wav.read_bytes()).decode(), "filename": "call.wav",
             "goal": "resolve the complaint"}
    status, body, took, _ = invoke(event, budget_s=240.0)
    assert status == 200, body
    assert speechgen.wer(text, " ".join(u["text"] for u in body["utterances"])) < 0.35
    assert all(u["speaker"].startswith("Speaker_") for u in body["utterances"])
    assert all(u["emotion"] and u["emotion"]["label"] for u in body["utterances"])
    assert body["summary"] and body["summary"]["goal"] == "resolve the complaint"
    assert body["transcript"].startswith(body["utterances"][0]["speaker"] + ": ")


@pytest.mark.speech
def test_real_speech_past_the_deadline_cancels_with_what_was_heard(speech_server, harken_url, tmp_path):
    """Two minutes of dialogue and 8 s to live: the handler cancels in time and returns the finals it had.

    The pipeline needs at least ~0.08 s of CPU per second of audio (bench/speech.py), so two
    minutes cannot be analysed in the 6 s before the answer is due, however idle the machine.
    """
    turns = [("A", "Hi Dana, thanks for taking the time today. How is the rollout going?"),
             ("B", "Honestly, it has been slow. The team is frustrated with the reporting tools."),
             ("A", "I understand. What would a good outcome look like for you this quarter?"),
             ("B", "We need weekly reports without the manual work. But the price is too high."),
             ("A", "If we include the reporting module at no extra cost, would that work?"),
             ("B", "Yes, that would work. Let's schedule a demo with my manager next Tuesday.")]
    wav, _ = speechgen.dialogue(turns * 4, tmp_path / "long.wav",
                                voices={"A": {"voice": "joe"}, "B": {"voice": "joe", "pitch_cents": 400}})
    harken_url(speech_server.url)
    event = {"audio_base64": base64.b64encode(wav.read_bytes()).decode(), "filename": "long.wav"}
    status, body, took, _ = invoke(event, budget_s=8.0)
    assert status == 504, body
    assert body["complete"] is False and body["deadline_hit"] is True
    assert body["error"]["code"] == "cancelled" and took < 8.0
    # All of it was sent, or (a loaded machine: the server pushed back) the upload stopped at
    # the finalize point and says so.
    assert body["audio_bytes_sent"] == body["audio_bytes"] or (
        body["truncated"] and body["audio_bytes_sent"] < body["audio_bytes"])
    vocabulary = set(speechgen.normalise(" ".join(text for _, text in turns)).split())
    for utterance in body["utterances"]:  # what was heard before the cut is real speech
        words = speechgen.normalise(utterance["text"]).split()
        assert sum(w in vocabulary for w in words) >= len(words) / 2, utterance["text"]

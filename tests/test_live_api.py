"""The four live endpoints and the state endpoint against a real gunicorn/gevent server."""
import re

import pytest
import requests

from live import TIMEOUT, collect, control, split, start, tone_pcm, tone_wav, upload, wait_for

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_start_returns_the_reference_shape(transport_server):
    """start answers ids with >= 64 random bits, relative endpoints and an ISO-8601 ms Z expiry."""
    session = start(transport_server.url)
    sid = session["session_id"]
    assert re.fullmatch(r"live_[0-9a-f]{24}", sid)
    assert re.fullmatch(r"liveconv_[0-9a-f]{24}", session["conversation_id"])
    assert session["chunk_endpoint"] == f"/analyze/live/{sid}/chunk"
    assert session["events_endpoint"] == f"/analyze/live/{sid}/events"
    assert session["control_endpoint"] == f"/analyze/live/{sid}/control"
    assert session["next_chunk_seq"] == 0
    assert session["status"] == "waiting_media"
    assert ISO_MS_Z.match(session["expires_at"])


def test_start_accepts_a_form_body(transport_server):
    """start reads form fields as well as JSON."""
    response = requests.post(transport_server.url + "/analyze/live/start",
                             data={"suffix": ".wav", "ttl_seconds": "120"}, timeout=TIMEOUT)
    assert response.status_code == 200
    state = requests.get(transport_server.url + "/analyze/live/" + response.json()["session_id"],
                         timeout=TIMEOUT).json()
    assert state["suffix"] == ".wav"


@pytest.mark.parametrize("fields, field", [
    ({"ttl_seconds": 59}, "ttl_seconds"), ({"ttl_seconds": 3601}, "ttl_seconds"),
    ({"ttl_seconds": "soon"}, "ttl_seconds"), ({"ttl_seconds": True}, "ttl_seconds"),
    ({"suffix": ".exe"}, "suffix"), ({"filename": "talk.docx"}, "filename"),
    ({"sample_rate": 100}, "sample_rate"), ({"channels": 0}, "channels"),
    ({"metadata": [1, 2]}, "metadata"), ({"goal": 42}, "goal"), ({"language": "e n!"}, "language"),
])
def test_start_rejects_bad_fields_naming_them(transport_server, fields, field):
    """Every invalid start field is a 422 that names the field."""
    response = requests.post(transport_server.url + "/analyze/live/start", json=fields, timeout=TIMEOUT)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_start_rejects_malformed_json(transport_server, body):
    """A body that is not a JSON object is a 400 invalid_json, never a 500."""
    response = requests.post(transport_server.url + "/analyze/live/start", data=body,
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_start_rejects_a_huge_body(transport_server):
    """A start body over HARKEN_MAX_JSON_BYTES is a 413."""
    response = requests.post(transport_server.url + "/analyze/live/start",
                             json={"goal": "x" * 100_000}, timeout=TIMEOUT)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("how", ["query", "header", "multipart"])
def test_chunk_accepts_each_upload_form(transport_server, how):
    """Raw body with the seq in the query or X-Chunk-Seq, and multipart, all land."""
    session = start(transport_server.url, suffix=".wav")
    data = tone_wav(0.5)
    url = transport_server.url + session["chunk_endpoint"]
    if how == "query":
        response = upload(transport_server.url, session, 0, data)
    elif how == "header":
        response = requests.post(url, data=data, headers={"X-Chunk-Seq": "0"}, timeout=TIMEOUT)
    else:
        response = requests.post(url, data={"chunk_seq": "0"}, files={"chunk": ("c.wav", data)},
                                 timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["chunk_seq"] == 0 and body["next_chunk_seq"] == 1
    assert body["received_bytes"] == len(data) and body["total_bytes"] == len(data)
    assert body["status"] == "ingesting" and "duplicate" not in body
    assert ISO_MS_Z.match(body["expires_at"])


def test_chunk_out_of_order_names_the_expected_seq(transport_server):
    """A chunk ahead of next_chunk_seq is a 409 with expected_chunk_seq."""
    session = start(transport_server.url, suffix=".pcm")
    response = upload(transport_server.url, session, 3, tone_pcm(0.1))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "chunk_out_of_order"
    assert response.json()["error"]["expected_chunk_seq"] == 0


def test_chunk_retry_is_acknowledged_once_and_conflict_refused(transport_server):
    """The same bytes again are a duplicate (nothing re-ingested); other bytes are chunk_conflict."""
    session = start(transport_server.url, suffix=".pcm")
    first, second = tone_pcm(0.5), tone_pcm(0.25)
    assert upload(transport_server.url, session, 0, first).status_code == 200
    assert upload(transport_server.url, session, 1, second).status_code == 200
    retry = upload(transport_server.url, session, 0, first)
    assert retry.status_code == 200
    assert retry.json()["duplicate"] is True
    assert retry.json()["total_bytes"] == len(first) + len(second)
    assert retry.json()["next_chunk_seq"] == 2
    conflict = upload(transport_server.url, session, 0, second)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "chunk_conflict"
    state = requests.get(transport_server.url + "/analyze/live/" + session["session_id"],
                         timeout=TIMEOUT).json()
    assert state["audio_seconds"] == pytest.approx(0.75)


@pytest.mark.parametrize("seq, code", [("", "validation_failed"), ("x", "validation_failed"),
                                       ("-1", "validation_failed")])
def test_chunk_seq_must_be_a_non_negative_integer(transport_server, seq, code):
    """A missing, non-integer or negative chunk_seq is a 422 naming chunk_seq."""
    session = start(transport_server.url, suffix=".pcm")
    response = requests.post(transport_server.url + session["chunk_endpoint"],
                             params={"chunk_seq": seq}, data=tone_pcm(0.1), timeout=TIMEOUT)
    assert response.status_code == 422
    assert response.json()["error"] == {**response.json()["error"], "code": code, "field": "chunk_seq"}


def test_empty_and_oversized_chunks_are_refused(transport_server):
    """An empty chunk is 422 empty_chunk; one over HARKEN_MAX_CHUNK_BYTES is 413, raw or multipart."""
    session = start(transport_server.url, suffix=".pcm")
    empty = upload(transport_server.url, session, 0, b"")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_chunk"
    huge = b"\0" * (1024 * 1024 + 2)
    assert upload(transport_server.url, session, 0, huge).status_code == 413
    multipart = requests.post(transport_server.url + session["chunk_endpoint"],
                              data={"chunk_seq": "0"}, files={"chunk": ("c.pcm", huge * 2)},
                              timeout=TIMEOUT)
    assert multipart.status_code == 413
    assert multipart.json()["error"]["code"] == "payload_too_large"
    assert upload(transport_server.url, session, 0, tone_pcm(0.1)).json()["next_chunk_seq"] == 1


@pytest.mark.parametrize("body, headers", [
    (b"--nope\r\nContent-Disposition: form-data; name=\"chunk\"\r\n\r\nabc", 
     {"Content-Type": "multipart/form-data; boundary=other"}),
    (b"garbage", {"Content-Type": "multipart/form-data"}),
])
def test_bad_multipart_is_a_client_error(transport_server, body, headers):
    """A multipart body that cannot be parsed is a 4xx JSON error, never a 500."""
    session = start(transport_server.url, suffix=".pcm")
    response = requests.post(transport_server.url + session["chunk_endpoint"], data=body,
                             headers=headers, timeout=TIMEOUT)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] in ("validation_failed", "bad_request")


def test_undecodable_chunk_is_refused_and_the_session_goes_on(transport_server):
    """Garbage in a WAV session is 422 invalid_chunk; next_chunk_seq stays and good audio still lands."""
    session = start(transport_server.url, suffix=".wav")
    bad = upload(transport_server.url, session, 0, b"RIFF\x00\x00\x00\x00JUNKJUNKJUNK" * 4)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_chunk"
    assert bad.json()["error"]["expected_chunk_seq"] == 0
    good = upload(transport_server.url, session, 0, tone_wav(0.5))
    assert good.status_code == 200 and good.json()["next_chunk_seq"] == 1


def test_wav_split_anywhere_and_pcm_at_other_rates_count_their_audio(transport_server):
    """WAV cut mid-header and 8 kHz stereo PCM both decode to the right number of seconds."""
    wav_session = start(transport_server.url, suffix=".wav")
    for seq, piece in enumerate(split(tone_wav(2.0, rate_hz=44100, channels=2), 7001)):
        assert upload(transport_server.url, wav_session, seq, piece).status_code == 200
    pcm_session = start(transport_server.url, suffix=".raw", sample_rate=8000, channels=2)
    stereo = tone_pcm(1.5, rate_hz=8000 * 2)
    for seq, piece in enumerate(split(stereo, 999)):
        assert upload(transport_server.url, pcm_session, seq, piece).status_code == 200
    for session, seconds in ((wav_session, 2.0), (pcm_session, 1.5)):
        state = requests.get(transport_server.url + "/analyze/live/" + session["session_id"],
                             timeout=TIMEOUT).json()
        assert state["audio_seconds"] == pytest.approx(seconds, abs=0.02)


def test_unknown_session_is_404_everywhere(transport_server):
    """Every per-session endpoint answers 404 session_not_found for an unknown id."""
    base = transport_server.url + "/analyze/live/live_doesnotexist"
    answers = [requests.post(base + "/chunk", params={"chunk_seq": 0}, data=b"x", timeout=TIMEOUT),
               requests.get(base + "/events", timeout=TIMEOUT),
               requests.post(base + "/control", json={"action": "keepalive"}, timeout=TIMEOUT),
               requests.get(base, timeout=TIMEOUT)]
    for response in answers:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"


def test_routing_errors_are_json(transport_server):
    """Unknown paths and wrong methods answer the JSON error body, with Allow on 405."""
    missing = requests.get(transport_server.url + "/nowhere", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = requests.delete(transport_server.url + "/analyze/live/start", timeout=TIMEOUT)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_finalize_runs_the_phases_then_done_with_metadata(transport_server):
    """finalize: status phases in order, then done echoing metadata; ids increase from 1."""
    session = start(transport_server.url, suffix=".pcm", metadata={"call": "A-17"})
    assert upload(transport_server.url, session, 0, tone_pcm(1.0)).status_code == 200
    finalized = control(transport_server.url, session, "finalize")
    assert finalized.status_code == 200
    body = finalized.json()
    assert body["session_id"] == session["session_id"] and body["action"] == "finalize"
    assert body["status"] in ("processing", "completed") and body["detail"]
    assert ISO_MS_Z.match(body["expires_at"])
    seen = collect(transport_server.url, session)
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))
    phases = [e.data["phase"] for e in seen if e.name == "status"]
    assert phases[0] == "waiting_media" and phases[-1] == "completed"
    assert phases.index("ingesting") < phases.index("processing") < phases.index("completed")
    assert seen[-1].name == "done"
    assert seen[-1].data == {"conversation_id": session["conversation_id"],
                             "session_id": session["session_id"], "metadata": {"call": "A-17"}}
    assert {e.name for e in seen} == {"status", "done"}  # no pipeline: nothing transcript-like
    completed = seen[-2].data
    assert completed["progress"] == 1.0 and completed["audio_seconds"] == pytest.approx(1.0)


def test_finalize_is_idempotent_and_closes_ingest(transport_server):
    """A second finalize answers 200; chunks after it, and cancel once it completed, are 409 session_closed.

    Where the session lives in Redis, another worker may still be draining it when the second
    finalize arrives (`processing`, SPEC 2.6); embedded, a session without a pipeline completes at once.
    """
    session = start(transport_server.url, suffix=".pcm")
    assert control(transport_server.url, session, "finalize").status_code == 200
    again = control(transport_server.url, session, "finalize")
    draining = ("processing", "completed") if hasattr(transport_server, "hosts") else ("completed",)  # Redis deployment
    assert again.status_code == 200 and again.json()["status"] in draining
    late = upload(transport_server.url, session, 0, tone_pcm(0.1))
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_closed"
    url = transport_server.url + "/analyze/live/" + session["session_id"]
    assert wait_for(lambda: requests.get(url, timeout=TIMEOUT).json()["status"] == "completed", 30)
    for action in ("cancel", "keepalive"):
        refused = control(transport_server.url, session, action)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_closed"


def test_cancel_sends_a_fatal_error_with_the_reason(transport_server):
    """cancel: the consumer gets `error` code cancelled with the reason, then the stream ends."""
    session = start(transport_server.url, suffix=".pcm")
    upload(transport_server.url, session, 0, tone_pcm(0.2))
    response = control(transport_server.url, session, "cancel", reason="caller hung up")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    seen = collect(transport_server.url, session)
    assert seen[-1].name == "error"
    assert seen[-1].data == {"code": "cancelled", "message": "caller hung up", "fatal": True}
    late = upload(transport_server.url, session, 1, tone_pcm(0.1))
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_closed"
    assert control(transport_server.url, session, "cancel").status_code == 409


@pytest.mark.parametrize("body", [{"action": "explode"}, {}, {"action": 3}, {"action": "cancel", "reason": 5}])
def test_control_rejects_bad_actions(transport_server, body):
    """Unknown or missing actions and non-string reasons are 422."""
    session = start(transport_server.url)
    response = requests.post(transport_server.url + session["control_endpoint"], json=body,
                             timeout=TIMEOUT)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_keepalive_and_chunks_push_the_expiry(transport_server):
    """keepalive and every accepted chunk move expires_at forward."""
    session = start(transport_server.url, suffix=".pcm", ttl_seconds=600)
    kept = control(transport_server.url, session, "keepalive").json()
    assert kept["action"] == "keepalive" and kept["status"] == "waiting_media"
    assert kept["expires_at"] >= session["expires_at"]
    chunk = upload(transport_server.url, session, 0, tone_pcm(0.1)).json()
    assert chunk["expires_at"] >= kept["expires_at"]


def test_state_reports_progress_and_consumer(transport_server):
    """GET /analyze/live/{id} has the documented fields."""
    session = start(transport_server.url, suffix=".pcm")
    upload(transport_server.url, session, 0, tone_pcm(2.0))
    state = requests.get(transport_server.url + "/analyze/live/" + session["session_id"],
                         timeout=TIMEOUT).json()
    assert state["status"] == "ingesting" and state["next_chunk_seq"] == 1
    assert state["total_bytes"] == 64000 and state["audio_seconds"] == pytest.approx(2.0)
    assert state["consumer_attached"] is False and state["lag_seconds"] == 0.0
    assert state["last_event_id"] >= 2


@pytest.mark.parametrize("body", [
    b'{"metadata":' + b"[" * 20000 + b"]" * 20000 + b"}",
    b'{"suffix": ".pcm", "metadata": {"x": NaN}}',
    b'{"suffix": ".pcm", "metadata": {"x": "\\ud800"}}',
])
def test_start_refuses_json_that_events_could_not_carry(transport_server, body):
    """Pathological nesting, NaN and unpaired surrogates are 400 invalid_json, never a 500 or a broken stream."""
    response = requests.post(transport_server.url + "/analyze/live/start", data=body,
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"

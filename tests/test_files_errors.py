"""POST /analyze refuses what it cannot analyse, before any model runs: the right status and JSON code."""
import pytest
import requests

import live

TIMEOUT = (5, 30)
PATHS = ["/analyze", "/analyze/stream"]


@pytest.fixture(scope="module")
def small_files_server(start_server):
    """No models, and uploads of at most 50 kB."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MAX_FILE_BYTES="50000")


def error_of(response, status):
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.mark.parametrize("path", PATHS)
def test_a_body_that_is_not_multipart_is_415(transport_server, path):
    """The recording comes as a multipart `file` part; raw bytes are refused with a pointer to that."""
    error = error_of(requests.post(transport_server.url + path, data=b"audio", timeout=TIMEOUT), 415)
    assert error["code"] == "unsupported_media_type" and "multipart" in error["message"]


@pytest.mark.parametrize("path", PATHS)
def test_a_missing_or_empty_file_is_422(transport_server, path):
    """No `file` part names the field; an empty one is `empty_file`."""
    missing = requests.post(transport_server.url + path, files={"goal": (None, "x")}, timeout=TIMEOUT)
    assert error_of(missing, 422)["field"] == "file"
    empty = requests.post(transport_server.url + path, files={"file": ("a.wav", b"")}, timeout=TIMEOUT)
    assert error_of(empty, 422)["code"] == "empty_file"


@pytest.mark.parametrize("path", PATHS)
def test_a_file_no_decoder_reads_is_415(transport_server, path):
    """Bytes that are no recording: 415 unreadable_recording, not a 500 or a hang."""
    junk = requests.post(transport_server.url + path, files={"file": ("a.mp3", b"not audio at all" * 64)},
                         timeout=TIMEOUT)
    assert error_of(junk, 415)["code"] == "unreadable_recording"


def test_a_bad_form_field_is_422_naming_it(transport_server):
    """metadata must be a JSON object."""
    response = requests.post(transport_server.url + "/analyze", timeout=TIMEOUT,
                             files={"file": ("a.wav", live.tone_wav(1.0)), "metadata": (None, "[1]")})
    assert error_of(response, 422)["field"] == "metadata"


@pytest.mark.parametrize("path", PATHS)
def test_an_upload_over_the_limit_is_413(small_files_server, path):
    """HARKEN_MAX_FILE_BYTES=50000: a 64 kB WAV is refused, chunked or not, and nothing is analysed."""
    data = live.tone_wav(2.0)
    sized = requests.post(small_files_server.url + path, files={"file": ("a.wav", data)}, timeout=TIMEOUT)
    assert error_of(sized, 413)["code"] == "payload_too_large"
    boundary = "harkenboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    chunked = requests.post(small_files_server.url + path, data=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, timeout=TIMEOUT)
    assert error_of(chunked, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize("path", PATHS)
def test_without_models_a_readable_file_is_503_without_retry_after(transport_server, path):
    """HARKEN_PIPELINE=none never invents a transcript: whole-file analysis says it needs the models."""
    response = requests.post(transport_server.url + path, files={"file": ("a.wav", live.tone_wav(1.0))},
                             timeout=TIMEOUT)
    error = error_of(response, 503)
    assert error["code"] == "pipeline_unavailable" and "HARKEN_PIPELINE" in error["message"]
    assert "Retry-After" not in response.headers

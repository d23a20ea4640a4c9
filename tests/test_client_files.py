"""`analyze_file` and `stream_file_analysis` against a real server without models: the upload's body and every refusal's class."""
import asyncio
import io
import json
import subprocess

import pytest
from werkzeug.formparser import parse_form_data

import live
from client import (AsyncLiveClient, EmptyFile, LiveClient, PayloadTooLarge, PipelineUnavailable,
                    RetryPolicy, UnreadableRecording, ValidationFailed)
from client.multipart import PART_BYTES, FileUpload

JUNK = b"not audio at all" * 64


@pytest.fixture(scope="module")
def small_files_server(start_server):
    """No models, and uploads of at most 50 kB."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MAX_FILE_BYTES="50000")


@pytest.fixture
def wav_path(tmp_path):
    path = tmp_path / 'a "call".wav'
    path.write_bytes(live.tone_wav(1.0))
    return path


def pipe_of(path):
    """A pipe delivering the file's bytes (not seekable, size unknown): `cat`'s stdout."""
    return subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)


def parsed(body):
    """The body as a server's multipart parser reads it: (form fields, file name, file bytes)."""
    data = b"".join(body)
    assert body.length in (None, len(data))
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": body.headers["Content-Type"],
               "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)}
    _, form, files = parse_form_data(environ)
    part = files["file"]
    try:
        return form.to_dict(), part.filename, part.read()
    finally:
        part.close()


def test_the_body_carries_the_fields_and_the_file_and_is_sent_again_from_the_start(wav_path):
    """Fields, a quoted file name and the exact bytes; a path or a seekable file is re-read whole on a retry, a pipe is not."""
    fields = {"goal": "close the deal", "metadata": json.dumps({"crm": "42"})}
    upload = FileUpload(wav_path, fields)
    assert upload.retry_on
    for _ in range(2):
        body = upload.body()
        assert int(body.headers["Content-Length"]) == body.length
        assert parsed(body) == (fields, 'a "call".wav', wav_path.read_bytes())
    with open(wav_path, "rb") as audio:
        audio.read(10)
        upload = FileUpload(audio, {})
        assert [parsed(upload.body())[2] for _ in range(2)] == [wav_path.read_bytes()[10:]] * 2
    with pipe_of(wav_path) as cat:
        upload = FileUpload(cat.stdout, {})
        body = upload.body()
        assert body.length is None and "Content-Length" not in body.headers
        assert parsed(body)[1:] == ("recording", wav_path.read_bytes())
        assert not upload.retry_on
        with pytest.raises(RuntimeError):
            upload.body()
    with pytest.raises(TypeError):
        FileUpload(["not", "a", "file"], {})


def test_a_readable_upload_reaches_the_models_check_and_503_is_not_retried(transport_server, wav_path):
    """A path (sized) and a pipe (chunked) both arrive whole: the server reads the WAV, then says it has no models, once."""
    with LiveClient(transport_server.url, retry=RetryPolicy(tries=6, base_delay_s=30)) as client:
        cat = pipe_of(wav_path)
        for source in (wav_path, wav_path.read_bytes(), cat.stdout):
            with pytest.raises(PipelineUnavailable) as refused:
                client.analyze_file(source, goal="g", metadata={"k": 1}, language="en")
            assert "HARKEN_PIPELINE" in refused.value.message
            assert refused.value.retry_after_s is None and not refused.value.retryable
        cat.wait()
        cat.stdout.close()
        with pytest.raises(PipelineUnavailable):
            next(client.stream_file_analysis(wav_path))


@pytest.mark.parametrize("call", ["analyze_file", "stream_file_analysis"])
def test_refusals_raise_their_own_classes(transport_server, tmp_path, call):
    """415 unreadable_recording, 422 empty_file, 422 validation_failed naming the field: none retryable."""
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with LiveClient(transport_server.url) as client:
        def send(source, **options):
            answer = getattr(client, call)(source, **options)
            return answer if call == "analyze_file" else next(answer)

        with pytest.raises(UnreadableRecording) as unreadable:
            send(JUNK)
        assert unreadable.value.status == 415 and not unreadable.value.retryable
        for source in (b"", empty):
            with pytest.raises(EmptyFile) as nothing:
                send(source)
            assert nothing.value.details["field"] == "file" and not nothing.value.retryable
        with pytest.raises(ValidationFailed) as bad:
            send(live.tone_wav(1.0), metadata=["not", "an", "object"])
        assert bad.value.details["field"] == "metadata"


def test_an_oversized_file_is_413_before_it_is_all_sent(small_files_server, tmp_path):
    """HARKEN_MAX_FILE_BYTES=50000: a 2 MB file, sized or chunked, gets the server's 413, not a broken pipe."""
    big = tmp_path / "big.wav"
    big.write_bytes(live.tone_wav(64.0))
    with LiveClient(small_files_server.url) as client:
        cat = pipe_of(big)
        for source in (big, cat.stdout):
            with pytest.raises(PayloadTooLarge) as refused:
                client.analyze_file(source)
            assert refused.value.code == "payload_too_large" and not refused.value.retryable
        cat.kill()
        cat.wait()
        cat.stdout.close()


def test_async_client_maps_the_same_refusals(transport_server, small_files_server, tmp_path, wav_path):
    """AsyncLiveClient: a sized and a chunked upload reach the server whole; 415, 413 and 503 raise the sync client's classes."""
    big = tmp_path / "big.wav"
    big.write_bytes(live.tone_wav(64.0))

    async def scenario():
        async with AsyncLiveClient(transport_server.url) as client:
            with pytest.raises(PipelineUnavailable):
                await client.analyze_file(wav_path, goal="g")
            with open(wav_path, "rb") as audio:
                with pytest.raises(PipelineUnavailable):
                    await client.analyze_file(audio)
            with pytest.raises(UnreadableRecording):
                await client.analyze_file(JUNK)
            events = client.stream_file_analysis(wav_path)
            with pytest.raises(PipelineUnavailable):
                await events.__anext__()
        async with AsyncLiveClient(small_files_server.url) as client:
            with pytest.raises(PayloadTooLarge):
                await client.analyze_file(big)

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_a_large_file_is_read_in_bounded_pieces(tmp_path):
    """A 64 MB file becomes a body of 64 KiB reads, never one buffer: the client's memory does not grow with the file."""
    large = tmp_path / "large.wav"
    with open(large, "wb") as sparse:
        sparse.truncate(64 * 1024 * 1024)
    body = FileUpload(large, {}).body()
    sizes = [len(piece) for piece in body.pieces]
    assert max(sizes) == PART_BYTES and sum(sizes) == 64 * 1024 * 1024
    assert body.length == len(body.head) + sum(sizes) + len(body.tail)

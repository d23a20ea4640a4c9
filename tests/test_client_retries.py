"""Small unit tests of the client's transport: scripted answers show which failures are retried and that every call has a timeout."""
import json
import threading

import pytest
import requests

from client import (Backpressure, ChunkOutOfOrder, ConnectionFailed, InvalidChunk, LiveClient, RequestTimeout,
                    RetryPolicy, ServerError, ServerFull, SessionNotFound)

SESSION = "live_0123456789abcdef01234567"


class Scripted(requests.adapters.BaseAdapter):
    """A transport that answers from a script: (status, body, headers) or an exception to raise."""

    def __init__(self, *answers):
        super().__init__()
        self.answers = list(answers)
        self.sent = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append((request, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, headers = answer
        response = requests.Response()
        response.status_code, response.request, response.url = status, request, request.url
        response._content = json.dumps(body).encode()
        response.headers.update({"Content-Type": "application/json", **headers})
        return response

    def close(self):
        pass


def client_with(*answers, tries=4):
    transport = Scripted(*answers)
    http = requests.Session()
    http.mount("http://", transport)
    client = LiveClient("http://harken.test", session=http,
                        retry=RetryPolicy(tries=tries, base_delay_s=0.0))
    return client, transport


def receipt(seq, duplicate=False):
    body = {"session_id": SESSION, "chunk_seq": seq, "received_bytes": 3, "total_bytes": 3 * (seq + 1),
            "next_chunk_seq": seq + 1, "status": "ingesting", "expires_at": "x"}
    if duplicate:
        body["duplicate"] = True
    return 200, body, {}


def error(status, code, headers=None, **extra):
    return status, {"error": {"code": code, "message": code, **extra}}, headers or {}


def test_upload_retries_network_errors_5xx_and_retry_after():
    """A reset, a timeout, a 502 and a 503 with Retry-After are each retried; the same chunk_seq is sent every time."""
    client, transport = client_with(
        requests.ConnectionError("reset"), requests.ReadTimeout("slow"),
        (502, {}, {}), error(503, "server_full", {"Retry-After": "0"}), receipt(4), tries=5)
    answer = client.upload(SESSION, 4, b"abc")
    assert answer.chunk_seq == 4 and answer.next_chunk_seq == 5 and not answer.duplicate
    bodies = [request.body for request, _ in transport.sent]
    assert len(bodies) == 5 and all(b'name="chunk_seq"\r\n\r\n4\r\n' in b for b in bodies)
    assert all(b"abc" in b for b in bodies)


def test_chunk_that_already_landed_counts_as_success():
    """After a lost answer, 409 chunk_out_of_order with expected_chunk_seq past ours means it landed."""
    client, transport = client_with(requests.ConnectionError("answer lost"),
                                    error(409, "chunk_out_of_order", expected_chunk_seq=5))
    answer = client.upload(SESSION, 4, b"abc")
    assert answer.duplicate and answer.chunk_seq == 4 and answer.next_chunk_seq == 5


def test_chunk_out_of_order_with_a_gap_raises():
    """409 whose expected_chunk_seq is behind ours is a real gap: raised, not retried."""
    client, transport = client_with(error(409, "chunk_out_of_order", expected_chunk_seq=2))
    with pytest.raises(ChunkOutOfOrder) as gap:
        client.upload(SESSION, 4, b"abc")
    assert gap.value.expected_chunk_seq == 2 and len(transport.sent) == 1


def test_client_errors_are_not_retried():
    """A 4xx such as invalid_chunk is raised on the first answer."""
    client, transport = client_with(error(422, "invalid_chunk", field="chunk"))
    with pytest.raises(InvalidChunk):
        client.upload(SESSION, 0, b"abc")
    assert len(transport.sent) == 1


def test_retries_are_bounded():
    """Once `tries` attempts failed, the last error is raised."""
    client, transport = client_with(*[(500, {}, {})] * 3, tries=3)
    with pytest.raises(ServerError):
        client.upload(SESSION, 0, b"abc")
    assert len(transport.sent) == 3
    client, transport = client_with(*[requests.ReadTimeout("slow")] * 2, tries=2)
    with pytest.raises(RequestTimeout):
        client.control(SESSION, "finalize")


def test_a_halted_twin_retries_nothing():
    """A twin whose halt is set (its stream hit the deadline) raises the first failure instead of resending."""
    client, transport = client_with(requests.ReadTimeout("slow"), (200, {"status": "finalizing"}, {}))
    halt = threading.Event()
    twin = client.twin(halt=halt)
    halt.set()
    with pytest.raises(RequestTimeout):
        twin.control(SESSION, "finalize")
    assert len(transport.sent) == 1
    assert client.control(SESSION, "finalize")["status"] == "finalizing"  # the client itself is not halted


def test_backpressure_is_honoured_beyond_the_tries_within_its_budget():
    """429s wait their Retry-After without using up tries; past max_backpressure_s the 429 is raised."""
    busy = error(429, "backpressure", {"Retry-After": "0"}, expected_chunk_seq=0)
    client, transport = client_with(*[busy] * 7, receipt(0), tries=2)
    assert client.upload(SESSION, 0, b"abc").next_chunk_seq == 1
    assert len(transport.sent) == 8
    client, transport = client_with(error(429, "backpressure", {"Retry-After": "1"}), receipt(0))
    client.retry.max_backpressure_s = 0.5
    with pytest.raises(Backpressure) as refused:
        client.upload(SESSION, 0, b"abc")
    assert refused.value.retry_after_s == 1.0 and len(transport.sent) == 1


def test_start_retries_only_refusals():
    """start() retries a 503 (nothing was created) but not a lost answer (a session may exist)."""
    session = {"session_id": SESSION, "next_chunk_seq": 0, "status": "waiting_media"}
    client, transport = client_with(error(503, "server_full", {"Retry-After": "0"}), (200, session, {}))
    assert client.start().session_id == SESSION and len(transport.sent) == 2
    client, transport = client_with(requests.ConnectionError("lost"), (200, session, {}))
    with pytest.raises(ConnectionFailed):
        client.start()
    assert len(transport.sent) == 1
    client, transport = client_with(*[error(503, "server_full", {"Retry-After": "0"})] * 2, tries=2)
    with pytest.raises(ServerFull):
        client.start()


def test_every_call_has_a_connect_and_read_timeout():
    """Each request carries a (connect, read) timeout; the event stream's read timeout is the longer one."""
    client, transport = client_with(
        (200, {"session_id": SESSION}, {}), receipt(0), (200, {"action": "keepalive"}, {}),
        (200, {"status": "ingesting"}, {}), error(404, "session_not_found"))
    client.events_timeout = (3.05, 45.0)
    session = client.start()
    client.upload(session, 0, b"abc")
    client.control(session, "keepalive")
    client.state(session)
    with pytest.raises(SessionNotFound):
        next(client.events(session))
    timeouts = [timeout for _, timeout in transport.sent]
    assert timeouts[:4] == [client.timeout] * 4
    assert timeouts[4] == (3.05, 45.0)
    assert all(isinstance(t, tuple) and len(t) == 2 and None not in t for t in timeouts)

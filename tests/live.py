"""Plain-HTTP helpers for tests of the live API: requests + sseclient-py, as a user would write them."""
import io
import json
import time

import numpy as np
import requests
import soundfile
import sseclient

TIMEOUT = (5, 30)


def tone_wav(seconds=1.0, rate_hz=16000, freq_hz=440.0, channels=1):
    """A WAV file's bytes holding a sine tone (not speech: for transport tests only)."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    mono = 0.3 * np.sin(2 * np.pi * freq_hz * t)
    samples = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    out = io.BytesIO()
    soundfile.write(out, samples, rate_hz, format="WAV", subtype="PCM_16")
    return out.getvalue()


def tone_pcm(seconds=1.0, rate_hz=16000):
    """Headerless s16le mono PCM of a sine tone."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (0.3 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype("<i2").tobytes()


def split(data, size):
    """`data` cut into pieces of `size` bytes."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def start(base_url, headers=None, **fields):
    """POST /analyze/live/start and return the JSON (asserting 200)."""
    response = requests.post(base_url + "/analyze/live/start", json=fields, headers=headers,
                             timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def endpoints(session_id):
    """The endpoints `start` names for `session_id`, for a session that was not started here."""
    base = f"/analyze/live/{session_id}"
    return {"session_id": session_id, "chunk_endpoint": base + "/chunk",
            "events_endpoint": base + "/events", "control_endpoint": base + "/control"}


def upload(base_url, session, seq, data, headers=None, timeout=TIMEOUT):
    """POST one raw chunk with its chunk_seq in the query; returns the response."""
    return requests.post(base_url + session["chunk_endpoint"], params={"chunk_seq": seq}, data=data,
                         headers={"Content-Type": "application/octet-stream", **(headers or {})},
                         timeout=timeout)


def control(base_url, session, action, headers=None, **extra):
    return requests.post(base_url + session["control_endpoint"], json={"action": action, **extra},
                         headers=headers, timeout=TIMEOUT)


def open_events(base_url, session, last_event_id=None, headers=None, read_timeout=30):
    """GET the event stream; returns the streaming response (check status before reading)."""
    headers = dict(headers or {})
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return requests.get(base_url + session["events_endpoint"], headers=headers, stream=True,
                        timeout=(5, read_timeout))


class Received:
    """An SSE event as the test saw it."""

    def __init__(self, msg):
        self.id = int(msg.id) if msg.id else None
        self.name = msg.event
        self.data = json.loads(msg.data)

    def __repr__(self):
        return f"<{self.id} {self.name} {self.data}>"


def iter_events(response):
    """Parsed events from an open stream response, until the server closes it."""
    for msg in sseclient.SSEClient(response).events():
        yield Received(msg)


def collect(base_url, session, last_event_id=None, until=("done",), headers=None, read_timeout=30):
    """Read events until one named in `until` (or a fatal error) arrives, then close."""
    response = open_events(base_url, session, last_event_id, headers, read_timeout)
    assert response.status_code == 200, response.text
    seen = []
    try:
        for event in iter_events(response):
            seen.append(event)
            if event.name in until or (event.name == "error" and event.data.get("fatal")):
                break
    finally:
        response.close()
    return seen


def wait_for(predicate, seconds):
    """Poll `predicate` until it is true (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def health(base_url):
    """The server's /healthz document."""
    return requests.get(base_url + "/healthz", timeout=TIMEOUT).json()


def worker_jobs(base_url):
    """The recorded-file jobs the server's speech workers hold now."""
    return sum(w["jobs"] for w in health(base_url)["pipeline"]["workers"])


def attach_within(base_url, session, seconds):
    """Whether a new consumer gets the session's event stream (200) within `seconds`."""

    def attached():
        response = open_events(base_url, session)
        response.close()
        return response.status_code == 200

    return wait_for(attached, seconds)

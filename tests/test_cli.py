"""The `harken` console script, run as a subprocess against the real server."""
import configparser
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import speechgen
from conftest import ROOT, free_port

HARKEN = Path(sys.executable).with_name("harken")
FINAL_LINE = re.compile(r"^\[(\d\d):(\d\d\.\d)\] (Speaker_\d+)(?: \((\w+)\))?: (.+)$")


def harken(*args, timeout=120, env=None):
    """Run `harken ARGS`; its completed process with text output."""
    return subprocess.run([str(HARKEN), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture
def silence(tmp_path):
    """Two seconds of headerless 16 kHz mono silence."""
    path = tmp_path / "silence.pcm"
    path.write_bytes(bytes(2 * 32000))
    return path


def test_console_script_is_declared():
    """setup.cfg installs `harken` from client.cli:main."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "harken = client.cli:main" in config["options.entry_points"]["console_scripts"]


def test_live_json_prints_one_event_per_line(transport_server, silence):
    """--json: each stdout line is one event; the last is `done`; exit 0."""
    run = harken("live", silence, "--url", transport_server.url, "--json", "--chunk-bytes", 8000)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["id"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["event"] == "done" and lines[-2]["data"]["phase"] == "completed"
    assert lines[-2]["data"]["audio_seconds"] == pytest.approx(2.0)


def test_live_text_reports_the_upload(transport_server, silence):
    """Plain output: the upload is reported on stderr and the run exits 0 at `done`."""
    run = harken("live", silence, "--url", transport_server.url, "--chunk-bytes", 16000)
    assert run.returncode == 0, run.stderr
    assert "uploaded 64000 bytes in 4 chunks" in run.stderr
    assert "\x1b[" not in run.stdout + run.stderr  # no terminal, no rewriting in place


def test_url_and_key_from_the_environment(start_server, silence):
    """HARKEN_URL and HARKEN_API_KEY stand in for --url and --api-key."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS="cli-key")
    run = harken("live", silence, "--json", env={"HARKEN_URL": server.url, "HARKEN_API_KEY": "cli-key"})
    assert run.returncode == 0, run.stderr
    refused = harken("live", silence, env={"HARKEN_URL": server.url, "HARKEN_API_KEY": "wrong"})
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == ["harken: 401 unauthorized: A valid API key is required."]


def test_unreachable_server_is_one_line_and_exit_1(silence):
    """A server that is not there: one line on stderr naming the request, exit 1."""
    port = free_port()
    run = harken("live", silence, "--url", f"http://127.0.0.1:{port}")
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1
    assert run.stderr.startswith(f"harken: POST http://127.0.0.1:{port}/analyze/live/start")


@pytest.mark.parametrize("args, complaint", [
    (["{missing}"], "no such file"),
    (["{audio}", "--chunk-bytes", "0"], "--chunk-bytes: must be a positive integer"),
    (["{audio}", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_usage_errors_exit_2(silence, tmp_path, args, complaint):
    """Bad arguments are refused before any request, with argparse's status 2."""
    args = [a.format(missing=tmp_path / "nope.wav", audio=silence) for a in args]
    run = harken("live", *args)
    assert run.returncode == 2 and complaint in run.stderr


def test_serve_runs_the_service(tmp_path):
    """`harken serve` execs gunicorn with the repo's config; extra arguments reach gunicorn."""
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(HARKEN), "serve", "--bind", f"127.0.0.1:{port}"], cwd=tmp_path,
                            env={**os.environ, "HARKEN_PIPELINE": "none"}, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        health = None
        for _ in range(600):
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.RequestException:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert health is not None and health.status_code == 200, (tmp_path / "serve.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


@pytest.mark.speech
def test_live_prints_finals_with_speaker_and_emotion(speech_server, tmp_path):
    """Real speech: final lines carry time, speaker, emotion label and the words spoken; the summary follows."""
    text = "Thank you for calling. I would like to change my delivery address to the new office."
    path = speechgen.speak(text, tmp_path / "call.wav")
    run = harken("live", path, "--url", speech_server.url, "--goal", "support call", timeout=300)
    assert run.returncode == 0, run.stderr
    finals = [FINAL_LINE.match(line) for line in run.stdout.splitlines()]
    finals = [m for m in finals if m]
    assert finals, run.stdout
    assert all(m.group(4) for m in finals), "each final names its emotion"
    assert speechgen.wer(text, " ".join(m.group(5) for m in finals)) < 0.35
    assert "Summary" in run.stdout

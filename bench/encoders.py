"""CPU time of the two small encoders a speech worker runs per utterance: MiniLM and the speaker encoder.

    .venv/bin/python bench/encoders.py

In a fresh process with the worker's environment (`app.speech.pool.worker_environment`: math
libraries on one thread) and the worker's models (`LoadedModels`): the sentence encoder
(`app/analytics/embedding.py`) over every sentence of the real tuning recordings' transcripts,
and the speaker encoder (`app/speech/diarization.py`) over the clips a live session gives it
(each turn's first final to label it, each finished turn to learn it), collected by streaming
bench/memory.py's 82 s of real tuning speech through a worker session first. Each input goes
through once to warm up, then `--rounds` times timed; a call's figure is the process's CPU
time over it (BLAS threads included, `--blas-threads N` to let OpenBLAS use more than the
worker's one) beside its wall time. Prints mean, P50 and P95 CPU per call (and the speaker
encoder's per audio second), and writes bench/results/encoders.json.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from report import save  # noqa: E402

DATA = ROOT / "bench" / "data" / "real"


def timed_calls(call, inputs, rounds):
    """(process CPU seconds, wall seconds) of every timed call of `call` over `inputs`, after one warm-up pass."""
    for item in inputs:
        call(item)
    spent = []
    for _ in range(rounds):
        for item in inputs:
            cpu, wall = time.process_time(), time.perf_counter()
            call(item)
            spent.append((time.process_time() - cpu, time.perf_counter() - wall))
    return spent


def summary(spent):
    import numpy as np
    ms = np.array(spent) * 1000
    return {"calls": len(ms), "mean_ms": round(float(ms[:, 0].mean()), 2),
            "p50_ms": round(float(np.percentile(ms[:, 0], 50)), 2), "p95_ms": round(float(np.percentile(ms[:, 0], 95)), 2),
            "wall_mean_ms": round(float(ms[:, 1].mean()), 2)}


def child(rounds):
    """Runs in the child: load the models as a worker does, stream a session to collect the clips
    the speaker encoder is given live, then time both encoders."""
    import numpy as np

    from app.config import Settings
    from app.speech import worker
    from app.speech.protocol import SessionContext
    from app.speech.settings import WorkerSettings
    from memory import stream_real_speech

    settings = WorkerSettings.from_settings(Settings.from_env())
    models = worker.LoadedModels(settings)
    clips, embed = [], models.speakers.embed
    models.speakers.embed = lambda audio: clips.append(audio.copy()) or embed(audio)
    session_s = stream_real_speech(worker.WorkerSession(models, SessionContext("bench", "bench"), settings))
    models.speakers.embed = embed
    entries = [e for e in json.loads((DATA / "manifest.json").read_text())["utterances"] if e["split"] == "tuning"]
    sentences = [s.strip() for e in entries
                 for s in re.split(r"(?<=[.?!])\s+", (DATA / e["text"]).read_text().strip()) if s.strip()]
    words = timed_calls(models.analytics.encoder.encode, sentences, rounds)
    voices = timed_calls(models.speakers.embed, clips, rounds)
    audio_s = rounds * sum(len(c) for c in clips) / 16000
    voices_cpu_s = sum(cpu for cpu, _ in voices)
    print(json.dumps({
        "sentence_encoder": {**summary(words), "sentences": len(sentences),
                             "mean_words": round(float(np.mean([len(s.split()) for s in sentences])), 1)},
        "speaker_encoder": {**summary(voices), "clips": len(clips), "session_audio_s": round(session_s, 1),
                            "clip_s": [round(float(np.percentile([len(c) / 16000 for c in clips], q)), 2)
                                       for q in (0, 50, 100)],
                            "ms_per_audio_s": round(1000 * voices_cpu_s / audio_s, 2)},
        "torch_imported": "torch" in sys.modules}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, help="OpenBLAS threads instead of the worker's one")
    parser.add_argument("--out", default="encoders.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.rounds)
    import machine

    from app.speech.pool import worker_environment
    env = worker_environment()
    if args.blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    out = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds)], env=env, cwd=str(ROOT),
                         capture_output=True, text=True, check=True)
    result = {"machine": machine.describe(), "openblas_threads": env["OPENBLAS_NUM_THREADS"], **json.loads(out.stdout.strip().splitlines()[-1])}
    words, voices = result["sentence_encoder"], result["speaker_encoder"]
    print(f"sentence encoder: {words['sentences']} sentences ({words['mean_words']} words mean), "
          f"CPU per call mean {words['mean_ms']} ms, P50 {words['p50_ms']}, P95 {words['p95_ms']}; "
          f"wall mean {words['wall_mean_ms']} ms")
    print(f"speaker encoder: {voices['clips']} clips of a {voices['session_audio_s']} s session "
          f"({voices['clip_s'][0]}-{voices['clip_s'][2]} s, median {voices['clip_s'][1]}), CPU per call mean {voices['mean_ms']} ms, "
          f"P50 {voices['p50_ms']}, P95 {voices['p95_ms']}; {voices['ms_per_audio_s']} ms per audio second; "
          f"wall mean {voices['wall_mean_ms']} ms")
    print(f"OpenBLAS threads: {result['openblas_threads']}; torch imported: {result['torch_imported']}")
    save(args.out, result, indent=1)


if __name__ == "__main__":
    main()

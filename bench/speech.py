"""Speech benchmark: accuracy, latency, speed and capacity of the live pipeline through the real API.

    .venv/bin/python bench/speech.py              # everything (about 18 minutes on 2 cores)
    .venv/bin/python bench/speech.py --skip-concurrency

Starts the Procfile's gunicorn with HARKEN_PIPELINE=speech on a free port and streams
generated speech (tests/speechgen.py) as raw PCM in 100 ms chunks at real time, as a
microphone would. Measures, per test set:
- WER of the live chunked path, and the offline whole-file WER of the same Whisper model
  (faster-whisper's own `transcribe`, beam 5; also greedy, as the live partials decode) on the
  same audio (target: live <= 1.25 x offline), per set and pooled over all sets, and pooled
  over the two held-out sets alone (sentences never used to tune the pipeline);
- speaker attribution accuracy (share of words whose speaker label maps to the true speaker);
- utterance end -> final: from the arrival of the chunk holding the final's last word to the
  final's arrival (target P50 <= 0.6 s, P95 <= 1.2 s);
- per word, from the word's end in the audio (stream start + word end time) to its first
  appearance in a partial (target P50 <= 1.0 s) and to its final (target P50 <= 1.5 s);
- RTF: worker CPU seconds per audio second with partials (real-time stream), and wall time
  per audio second when a file is uploaded as fast as possible (cadence degrades to finals);
- the largest number of concurrent real-time sessions whose `lag_seconds` stays under 2 s.
Prints the figures and writes bench/results/speech.json.
"""
import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import requests
import soundfile
import sseclient

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402  (tests/ holds the audio generator shared with the tests)
from speechgen import RATE_HZ  # noqa: E402
from conftest import Server  # noqa: E402
from report import results_path, save  # noqa: E402

CHUNK_S = 0.1
TIMEOUT = (5, 120)
MAX_LAG_S = 2.0
ENDPOINT_GAP_S = 0.25

SENTENCES = [
    "Thank you for joining the call today, I would like to review the project plan.",
    "The first milestone was delivered on time and the customer was very happy with it.",
    "We still need to agree on the budget for the second phase before the end of the month.",
    "Could you send me the updated schedule so that I can share it with the team?",
    "I think the biggest risk is the integration with the old billing system.",
    "Let us meet again next week and decide who will own the testing work.",
    "Our revenue grew faster than expected this quarter compared with last year.",
    "Please ask Maria to book a meeting room for Thursday afternoon.",
    "The new contract includes a larger discount for customers who order early.",
    "I am afraid the shipment from the warehouse in Denver will arrive late.",
    "Can we move the product launch to the first week of October?",
    "The engineering team found a bug in the payment service and fixed it yesterday.",
    "My main concern is that the support costs will keep growing next year.",
    "We should send our customers a short survey after every support call.",
    "I agree with your proposal, but we need approval from the finance department.",
    "The training session for the new sales staff starts on Monday morning.",
    "Let me check the figures and get back to you before the end of the day.",
    "Overall I think this was a productive meeting, thank you all for your time.",
]
# Never used to tune the pipeline: their WER tells whether a change helps beyond the sets above.
HELD_OUT = [
    "The quarterly report shows that our costs went down by eight percent.",
    "Please remind everyone that the office will be closed on Friday.",
    "We received three complaints about the delivery times last month.",
    "I would like to hire two more engineers for the mobile team.",
    "The marketing campaign brought in more visitors than we planned.",
    "Can you explain why the server was down for two hours on Tuesday?",
    "Our partners in Germany want to sign the agreement before Christmas.",
    "The new laptops should arrive at the end of next week.",
    "I am worried that we will not finish the migration in time.",
    "Let us schedule a short review every morning at nine o'clock.",
    "The customer asked for a refund because the product was damaged.",
    "We need a clear plan for the holiday season and the extra orders.",
    "Thank you for the detailed feedback on the first draft.",
    "The board approved the budget, so we can start hiring in January.",
    "Please send the signed contract to the legal team by Wednesday.",
    "Our website traffic doubled after the last software update.",
    "I suggest we move the training to a larger room downstairs.",
    "That sounds like a good compromise, so let us go ahead with it.",
]
VARIED = [{"pitch_cents": 300, "tempo": 1.1}, {"pitch_cents": -250, "tempo": 0.92},
          {"gain_db": -9}, {"pitch_cents": 150, "tempo": 1.2}, {"tempo": 0.85},
          {"pitch_cents": -400, "gain_db": -4}]
DIALOGUE = [
    ("A", "Good morning, I am calling about the invoice you sent last week."),
    ("B", "Thank you for calling. Can you tell me the account name please?"),
    ("A", "Sure, it is the garden supply company on the main street."),
    ("B", "I see the problem now. The total is wrong and I will correct it today."),
    ("A", "That is great news, thank you for the quick help."),
    ("B", "You are welcome, is there anything else I can do for you?"),
]


def _set_scripts():
    """name -> (turns, voices, gap_s, whether the turns' speakers are scored): each test set."""
    return {"joe": _read_script(SENTENCES, lambda i: {"voice": "joe"}),
            "espeak": _read_script(SENTENCES, lambda i: {"voice": "espeak"}),
            "joe_varied": _read_script(SENTENCES, lambda i: {"voice": "joe", **VARIED[i % len(VARIED)]}),
            "dialogue_joe_espeak": (DIALOGUE, {"A": {"voice": "joe"}, "B": {"voice": "espeak"}}, 0.7, True),
            "heldout_espeak": _read_script(HELD_OUT, lambda i: {"voice": "espeak"}),
            "heldout_varied": _read_script(HELD_OUT, lambda i: {"voice": "joe", **VARIED[(i + 2) % len(VARIED)]})}


def _read_script(sentences, voice_of):
    """The sentences read one after another, the i-th in voice_of(i), 0.8 s apart."""
    return ([(str(i), text) for i, text in enumerate(sentences)],
            {str(i): voice_of(i) for i in range(len(sentences))}, 0.8, False)


def build_sets(all_spans=False):
    """name -> (wav path, reference text, speaker spans where speakers are scored or `all_spans`, else None)."""
    sets = {}
    for name, (turns, voices, gap_s, scored) in _set_scripts().items():
        path, spans = speechgen.dialogue(turns, voices=voices, gap_s=gap_s)
        sets[name] = (path, " ".join(text for _, text in turns), spans if scored or all_spans else None)
    return sets


# -- one live session ----------------------------------------------------------------------------

def utterance_end_latencies(finals, chunk_arrivals):
    """Final arrival minus arrival of the chunk with its last word, for each final that a pause
    of at least ENDPOINT_GAP_S follows (or the stream's end). `finals`: (arrival, t_start,
    t_end) in order; `chunk_arrivals[k]`: when chunk k arrived."""
    out = []
    for i, (received, _, t_end) in enumerate(finals):
        following = finals[i + 1][1] if i + 1 < len(finals) else float("inf")
        if following - t_end >= ENDPOINT_GAP_S:
            out.append(received - chunk_arrivals[min(len(chunk_arrivals) - 1, int(t_end / CHUNK_S))])
    return out


class LiveRun:
    """Streams PCM into one live session and records when each chunk and event arrived."""

    def __init__(self, url, pcm, realtime=True):
        self.url, self.pcm, self.realtime = url, pcm, realtime
        self.events = []  # (monotonic receive time, name, data)
        self.chunk_arrivals = []
        self.t0 = None
        self.error = None

    def run(self):
        session = requests.post(self.url + "/analyze/live/start", json={"suffix": ".pcm"}, timeout=TIMEOUT).json()
        stream = requests.get(self.url + session["events_endpoint"], stream=True, timeout=TIMEOUT)
        reader = threading.Thread(target=self._read, args=(stream,))
        reader.start()
        step = int(CHUNK_S * RATE_HZ) * 2
        self.t0 = time.monotonic()
        for seq, start in enumerate(range(0, len(self.pcm), step)):
            if self.realtime:
                time.sleep(max(0.0, self.t0 + seq * CHUNK_S - time.monotonic()))
            reply = requests.post(self.url + session["chunk_endpoint"], params={"chunk_seq": seq},
                                  data=self.pcm[start:start + step],
                                  headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT)
            if reply.status_code != 200:
                self.error = reply.text
                break
            self.chunk_arrivals.append(time.monotonic())
        requests.post(self.url + session["control_endpoint"], json={"action": "finalize"}, timeout=TIMEOUT)
        reader.join()
        return self

    def _read(self, stream):
        for msg in sseclient.SSEClient(stream).events():
            self.events.append((time.monotonic(), msg.event, json.loads(msg.data)))
            if msg.event in ("done", "error"):
                return

    def of(self, name):
        return [(t, d) for t, n, d in self.events if n == name]

    @property
    def transcript(self):
        return " ".join(d["text"] for _, d in self.of("final_transcript"))

    @property
    def max_lag_s(self):
        lags = [d.get("lag_seconds", 0.0) for _, d in self.of("status") if d.get("phase") == "ingesting"]
        return max(lags, default=0.0)

    def utterance_latencies(self):
        """Per utterance closed by a pause: final arrival minus arrival of the chunk with its last word.

        Finals of committed prefixes are followed at once by more speech; only the final that
        ends an utterance (a pause of at least ENDPOINT_GAP_S follows, or the stream ends)
        counts here: their words are in the per-word figures.
        """
        finals = [(received, final["t_start"], final["t_end"]) for received, final in self.of("final_transcript")]
        return utterance_end_latencies(finals, self.chunk_arrivals)

    def word_latencies(self):
        """Per final word: (to first partial or None, to final), from the word's end in the audio."""
        partials = {}
        for received, partial in self.of("partial_transcript"):
            partials.setdefault(partial["utterance_id"], []).append(
                (received, speechgen.normalise(partial["text"]).split()))
        out = []
        for received, final in self.of("final_transcript"):
            for k, word in enumerate(final["words"]):
                spoken = self.t0 + word["end"]
                norm = speechgen.normalise(word["word"])
                seen = next((t for t, words in partials.get(final["utterance_id"], [])
                             if k < len(words) and words[k] == norm), None)
                out.append((None if seen is None else seen - spoken, received - spoken))
        return out


def speaker_accuracy(run, spans):
    """Share of final words whose label maps (by majority) to the speaker who said them."""
    votes = {}
    for _, final in run.of("final_transcript"):
        for word in final["words"]:
            middle = (word["start"] + word["end"]) / 2
            truth = min(spans, key=lambda s: 0 if s.start_s <= middle <= s.end_s else
                        min(abs(middle - s.start_s), abs(middle - s.end_s))).speaker
            votes.setdefault(truth, []).append(final["speaker"])
    if not votes:
        return 0.0
    mapping = {truth: max(set(labels), key=labels.count) for truth, labels in votes.items()}
    if len(set(mapping.values())) < len(mapping):  # two people merged into one label
        best = max(votes, key=lambda t: votes[t].count(mapping[t]))
        mapping = {t: (mapping[t] if t == best else None) for t in mapping}
    correct = sum(labels.count(mapping[truth]) for truth, labels in votes.items())
    return correct / sum(len(labels) for labels in votes.values())


def pct(values, q):
    return None if not values else round(float(np.percentile(values, q)), 3)


def worker_cpu_s(url):
    """CPU seconds used so far by the speech worker processes (from /proc)."""
    health = requests.get(url + "/healthz", timeout=TIMEOUT).json()
    total = 0.0
    for worker in health["pipeline"]["workers"]:
        fields = Path(f"/proc/{worker['pid']}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def offline_model():
    """The service's Whisper model, loaded as faster-whisper loads it for its own `transcribe`."""
    from app.config import Settings
    from app.speech.models import whisper_model
    return whisper_model(Settings.from_env(), cpu_threads=os.cpu_count())


def offline_transcripts(sets, model, beam_size=5):
    """Whole-file transcripts of `offline_model()` through faster-whisper's own transcribe."""
    out = {}
    for name, (path, _, _) in sets.items():
        segments, _ = model.transcribe(str(path), language="en", vad_filter=False, beam_size=beam_size)
        out[name] = " ".join(s.text.strip() for s in segments)
    return out


def pooled_wer(sets, results):
    """Live and offline WER over all sets together (errors / reference words), and their ratio.

    A set of a few hundred words holds only a handful of errors; the ratio of two such counts
    is more meaningful pooled than per set.
    """
    words = {name: len(speechgen.normalise(reference).split()) for name, (_, reference, _) in sets.items()}
    total = sum(words.values())

    def pooled(key):
        return sum(results[n][key] * words[n] for n in words) / total

    live, offline, greedy = pooled("wer_live"), pooled("wer_offline"), pooled("wer_offline_greedy")
    return {"words": total, "live": round(live, 4), "offline": round(offline, 4),
            "ratio": round(live / offline, 2) if offline else None, "offline_greedy": round(greedy, 4),
            "ratio_to_greedy": round(live / greedy, 2) if greedy else None}


def concurrency(url, pcm, counts):
    """Max lag per number of concurrent real-time sessions, stopping after the first failure."""
    results = []
    for count in counts:
        runs = [LiveRun(url, pcm) for _ in range(count)]
        threads = [threading.Thread(target=r.run) for r in runs]
        for i, thread in enumerate(threads):
            thread.start()
            time.sleep(0.37)  # sessions start at different moments, as real calls do
        for thread in threads:
            thread.join()
        lag = max(r.max_lag_s for r in runs)
        partials = sum(len(r.of("partial_transcript")) for r in runs) / count
        audio_s = len(pcm) / 2 / RATE_HZ
        results.append({"sessions": count, "max_lag_s": round(lag, 3),
                        "partials_per_session_minute": round(partials * 60 / audio_s, 1),
                        "errors": sum(1 for r in runs if r.error or not r.of("done"))})
        print(f"  {count} sessions: max lag {lag:.2f} s, {results[-1]['partials_per_session_minute']} "
              f"partials/min/session, errors {results[-1]['errors']}")
        if lag >= MAX_LAG_S or results[-1]["errors"]:
            break
    sustained = [r["sessions"] for r in results if r["max_lag_s"] < MAX_LAG_S and not r["errors"]]
    return {"trials": results, "max_sessions_lag_under_2s": max(sustained, default=0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-concurrency", action="store_true")
    parser.add_argument("--counts", default="4,6,8,10,12")
    args = parser.parse_args()

    sets = build_sets()
    print("offline whole-file WER (faster-whisper transcribe, beam 5 and greedy) ...")
    model = offline_model()
    offline_text, greedy_text = offline_transcripts(sets, model), offline_transcripts(sets, model, beam_size=1)
    del model  # freed before the live runs, which need the memory and cores
    offline = {name: round(speechgen.wer(sets[name][1], text), 4) for name, text in offline_text.items()}
    offline_greedy = {name: round(speechgen.wer(sets[name][1], text), 4) for name, text in greedy_text.items()}
    server = Server({"HARKEN_PIPELINE": "speech", "HARKEN_STATUS_EVERY_S": "0.5"}, results_path("speech-server.log"))
    report = {"machine": machine.describe(), "sets": {}}
    try:
        utterance_lat, first_partial, word_final, never_partial = [], [], [], 0
        audio_total, cpu_total = 0.0, 0.0
        for name, (path, reference, spans) in sets.items():
            pcm = soundfile.read(path, dtype="int16")[0].tobytes()
            cpu_before = worker_cpu_s(server.url)
            run = LiveRun(server.url, pcm).run()
            cpu_used = worker_cpu_s(server.url) - cpu_before
            audio_s = len(pcm) / 2 / RATE_HZ
            audio_total, cpu_total = audio_total + audio_s, cpu_total + cpu_used
            words = run.word_latencies()
            utterance_lat += run.utterance_latencies()
            first_partial += [p for p, _ in words if p is not None]
            never_partial += sum(1 for p, _ in words if p is None)
            word_final += [f for _, f in words]
            live_wer = speechgen.wer(reference, run.transcript)
            entry = {"audio_s": round(audio_s, 2), "wer_live": round(live_wer, 4), "wer_offline": offline[name],
                     "wer_offline_greedy": offline_greedy[name],
                     "wer_ratio": round(live_wer / offline[name], 2) if offline[name] else None,
                     "finals": len(run.of("final_transcript")), "partials": len(run.of("partial_transcript")),
                     "max_lag_s": round(run.max_lag_s, 3), "cpu_rtf": round(cpu_used / audio_s, 3),
                     "transcript": run.transcript, "transcript_offline": offline_text[name],
                     "transcript_offline_greedy": greedy_text[name]}
            if spans:
                entry["speaker_accuracy"] = round(speaker_accuracy(run, spans), 4)
                entry["speakers"] = sorted({d["speaker"] for _, d in run.of("final_transcript")})
            report["sets"][name] = entry
            print(f"{name}: WER live {live_wer:.3f} vs offline {offline[name]:.3f} "
                  f"(greedy {offline_greedy[name]:.3f}); "
                  f"{entry['finals']} finals, {entry['partials']} partials; CPU RTF {entry['cpu_rtf']}"
                  + (f"; speaker accuracy {entry['speaker_accuracy']:.3f}" if spans else ""))

        report["wer_pooled"] = pooled_wer(sets, report["sets"])
        held_out = {name: sets[name] for name in sets if name.startswith("heldout_")}
        report["wer_pooled_heldout"] = pooled_wer(held_out, report["sets"])
        print(f"pooled WER: {report['wer_pooled']}\npooled WER, held-out sets only: {report['wer_pooled_heldout']}")
        joe_pcm = soundfile.read(sets["joe"][0], dtype="int16")[0].tobytes()
        began = time.monotonic()
        fast = LiveRun(server.url, joe_pcm, realtime=False).run()
        fast_rtf = (fast.of("done")[0][0] - began) / (len(joe_pcm) / 2 / RATE_HZ)
        report["latency"] = {
            "utterance_end_to_final_s": {"p50": pct(utterance_lat, 50), "p95": pct(utterance_lat, 95),
                                         "n": len(utterance_lat)},
            "word_to_first_partial_s": {"p50": pct(first_partial, 50), "p95": pct(first_partial, 95),
                                        "n": len(first_partial), "words_first_seen_in_final": never_partial},
            "word_to_final_s": {"p50": pct(word_final, 50), "p95": pct(word_final, 95), "n": len(word_final)},
        }
        report["rtf"] = {"worker_cpu_per_audio_s_realtime_with_partials": round(cpu_total / audio_total, 3),
                         "wall_per_audio_s_fast_upload": round(fast_rtf, 3),
                         "fast_upload_wer": round(speechgen.wer(sets["joe"][1], fast.transcript), 4)}
        for key, value in report["latency"].items():
            print(f"{key}: {value}")
        print(f"rtf: {report['rtf']}")
        if not args.skip_concurrency:
            print("concurrent real-time sessions (dialogue set):")
            dialogue_pcm = soundfile.read(sets["dialogue_joe_espeak"][0], dtype="int16")[0].tobytes()
            report["concurrency"] = concurrency(server.url, dialogue_pcm, [int(c) for c in args.counts.split(",")])
            print(f"max sessions with lag < 2 s: {report['concurrency']['max_sessions_lag_under_2s']}")
    finally:
        server.stop()
    print(f"written {save('speech.json', report)}")


if __name__ == "__main__":
    main()

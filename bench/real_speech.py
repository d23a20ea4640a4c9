"""Real human speech through the live API: WER against offline Whisper, lost and broken words, latency.

    .venv/bin/python bench/real_speech.py            # about 15 minutes with cached offline readings
    .venv/bin/python bench/real_speech.py --conditions clean --split tuning --kind conversational

The recordings are `bench/data/real/` (manifest.json: reference text, speaker, licence, kind
(read or conversational) and the tuning/held-out split of every utterance). Each session is a
few utterances of one source played one after another with a pause between them, as one
caller would speak. Every session is played in three conditions:
- clean: the recording as it is (16 kHz);
- phone: as a softphone sends it, band-limited to 300-3400 Hz at 8 kHz (sox), then back to
  16 kHz for the API;
- noise: white noise added at NOISE_SNR_DB below the mean power of the session's speech (one
  background level for the whole call, so a quieter recording in it is at a lower SNR).
For each condition the sessions stream at real time in 100 ms PCM chunks into one server
(bench/speech.py's LiveRun), PARALLEL of them at once. Reported per condition and split
(tuning / held-out, never pooled together), over all kinds and for read and conversational
speech apart:
- WER of the live finals, of faster-whisper's offline whole-file `transcribe` of the same
  model greedy and beam 5, and the ratios the targets are stated in;
- deletion runs: three or more consecutive reference words deleted from the live finals
  while the offline greedy reading has every one of them right;
- fragment tokens in the finals: a token that starts or ends with a hyphen, or a lower-case
  token that is no English word (not in Debian's wamerican-large, the references or the offline
  readings); capitalised such tokens are counted apart as misheard names;
- false sentence ends: a final's word that ends a sentence (., ?, !) where the offline greedy
  reading goes on with the sentence (a reader's pause read as a full stop), out of all the
  sentence ends of the finals;
- utterance end -> final, word -> first partial and word -> final (P50/P95);
- the same WER, deletion, fragment and sentence-end figures for the LocalAgreement-2 anchor
  (bench/local_agreement.py) when --anchor is given, and for the recorded-file path when
  --files is given: each session's audio, in each condition, sent to the same server's
  `POST /analyze` as a WAV file after the live sessions have streamed (`file_…` figures).
Prints the figures and writes bench/results/real_speech.json.
"""
import argparse
import hashlib
import io
import json
import os
import re
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path

import jiwer
import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import machine  # noqa: E402
import speechgen  # noqa: E402
from app.speech.words import closes_sentence  # noqa: E402
from client import LiveClient  # noqa: E402
from conftest import Server  # noqa: E402
from report import results_path, save  # noqa: E402
from speech import LiveRun, offline_model, pct, worker_cpu_s  # noqa: E402
from speechgen import RATE_HZ  # noqa: E402

DATA = ROOT / "bench" / "data" / "real"
PAUSE_S = 0.8
NOISE_SNR_DB = 10.0
CONDITIONS = ("clean", "phone", "noise")
KINDS = ("read", "conversational")
MIN_DELETION_RUN = 3
PARALLEL = 8
# Sessions: (name, split, utterance ids), played in this order. A session holds utterances of
# one split and one kind (the manifest says which), mostly of one source, in order.
SESSIONS = [
    ("lj_a", "tuning", [f"LJ001-{n:04d}" for n in range(1, 12)]),
    ("lj_b", "tuning", [f"LJ001-{n:04d}" for n in range(12, 23)]),
    ("austen", "tuning", [f"austen-{n}" for n in ("0870", "0880", "0890", "0920", "0930")]),
    ("librispeech", "tuning", ["1089-134686-0000", "1089-134686-0001", "2412-153948-0000"]),
    ("sonnets", "tuning", ["61-70968-0000", "sonnet-001", "sonnet-002"]),
    ("dictation_v1_a", "tuning", [f"rosehill-v1-{n:02d}" for n in range(1, 4)]),
    ("dictation_v1_b", "tuning", [f"rosehill-v1-{n:02d}" for n in range(4, 7)]),
    ("dictation_v2_a", "tuning", [f"rosehill-v2-{n:02d}" for n in range(1, 4)]),
    ("dictation_v2_b", "tuning", [f"rosehill-v2-{n:02d}" for n in range(4, 7)]),
    ("spontaneous", "tuning", ["mfa-acoustic-corpus", "mfa-cold-corpus"]),
    ("lj_heldout", "heldout", [f"LJ001-{n:04d}" for n in range(23, 33)]),
    ("mixed_heldout", "heldout", ["1089-134691-0000", "1089-134691-0001", "jfk"]),
    ("sonnets_heldout", "heldout", ["1221-135766-0001", "1221-135766-0002", "sonnet-003"]),
    ("dictation_v1_heldout", "heldout", [f"rosehill-v1-{n:02d}" for n in range(7, 10)]),
    ("dictation_v2_heldout", "heldout", [f"rosehill-v2-{n:02d}" for n in range(7, 10)]),
    ("conversation_heldout", "heldout", ["mfa-cold-corpus3", "ami-ES2011a-40s-46s"]),
]


def manifest():
    """id -> utterance entry of bench/data/real/manifest.json, with its reference text read in."""
    entries = json.loads((DATA / "manifest.json").read_text())["utterances"]
    return {e["id"]: {**e, "reference": (DATA / e["text"]).read_text().strip()} for e in entries}


def session_kind(ids, split, utterances):
    """The kind (read or conversational) of a session's utterances, all of which must be of `split`."""
    kinds = {utterances[u]["kind"] for u in ids}
    splits = {utterances[u]["split"] for u in ids}
    assert len(kinds) == 1 and splits == {split}, (ids, kinds, splits)
    return kinds.pop()


def session_audio(ids, utterances):
    """The utterances one after another, PAUSE_S of silence between, as float32 16 kHz."""
    pause = np.zeros(int(PAUSE_S * RATE_HZ), dtype=np.float32)
    parts = []
    for uid in ids:
        audio, rate = soundfile.read(DATA / utterances[uid]["audio"], dtype="float32")
        assert rate == RATE_HZ, uid
        parts += [audio, pause]
    return np.concatenate(parts[:-1])


def condition(audio, name, seed):
    """`audio` as played in condition `name` (see the module docstring)."""
    if name == "clean":
        return audio
    if name == "noise":
        speech = audio[np.abs(audio) > 1e-3]
        power = float(np.mean(speech ** 2))
        noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
        return np.clip(audio + noise * np.sqrt(power / 10 ** (NOISE_SNR_DB / 10)), -1, 1)
    return speechgen.softphone(audio)


# -- defects --------------------------------------------------------------------------------------

def _ref_marks(reference, hypothesis):
    """Per reference word: 'ok', 'sub' or 'del' in the alignment of `hypothesis` to it."""
    ref, hyp = speechgen.normalise(reference), speechgen.normalise(hypothesis) or "<empty>"
    marks = ["ok"] * len(ref.split())
    for chunk in jiwer.process_words(ref, hyp).alignments[0]:
        if chunk.type in ("substitute", "delete"):
            for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                marks[i] = "sub" if chunk.type == "substitute" else "del"
    return marks


def deletion_runs(reference, live, offline):
    """Runs of >= MIN_DELETION_RUN consecutive reference words deleted live but right offline."""
    live_marks, offline_marks = _ref_marks(reference, live), _ref_marks(reference, offline)
    words = speechgen.normalise(reference).split()
    runs, start = [], None
    for i, (lm, om) in enumerate(zip(live_marks + ["ok"], offline_marks + ["ok"])):
        lost = lm == "del" and om == "ok"
        if lost and start is None:
            start = i
        elif not lost and start is not None:
            if i - start >= MIN_DELETION_RUN:
                runs.append(" ".join(words[start:i]))
            start = None
    return runs


def _sentence_marked(text):
    """The normalised words of `text`, and per word whether its written token ends a sentence."""
    words, ends = [], []
    for token in text.split():
        pieces = speechgen.normalise(token).split()
        words += pieces
        ends += [False] * len(pieces)
        if pieces and closes_sentence(token):
            ends[-1] = True
    return words, ends


def false_sentence_ends(text, offline):
    """(sentence ends in `text`, those the offline reading does not have).

    An early commit can end a final where the reader only paused ("we are at present
    concerned." / "Differs from most…"): WER does not see it, a reader and the analytics'
    sentences do. A sentence end in `text` is false where the offline reading of the same
    audio, which heard what followed, has the same word (or another in its place) and goes on
    with the sentence.
    """
    words, ends = _sentence_marked(text)
    offline_words, offline_ends = _sentence_marked(offline)
    false = 0
    for chunk in jiwer.process_words(" ".join(offline_words) or "<empty>", " ".join(words) or "<empty>").alignments[0]:
        if chunk.type in ("equal", "substitute"):
            pairs = zip(range(chunk.ref_start_idx, chunk.ref_end_idx), range(chunk.hyp_start_idx, chunk.hyp_end_idx))
            false += sum(1 for i, j in pairs if ends[j] and not offline_ends[i])
    return sum(ends), false


# Debian's wamerican-large (170,000 words): the default list (wamerican, 100,000) lacks real
# words such as "unblest", which then counted as fragments.
DICTIONARIES = ("/usr/share/dict/american-english-large", "/usr/share/dict/words")


@lru_cache(maxsize=1)
def _dictionary():
    path = next((Path(p) for p in DICTIONARIES if Path(p).exists()), None)
    return {w.strip().lower() for w in path.read_text(errors="ignore").split()} if path else None


def fragments(tokens, known_text):
    """(fragments, misheard names) among the tokens of the finals (see the module docstring).

    A fragment starts or ends with a hyphen, or is a lower-case token that is no English word:
    a word broken at a commit, or one the model made up. A capitalised token that is no word
    and none of the known texts' is a name heard wrong ("Paners" for "Pannartz"): a
    substitution the WER counts, listed apart because no word was broken to make it. An
    archaic elision of the references ("unear'd") is known in its modern spelling too.
    """
    dictionary = _dictionary()
    known = set(re.findall(r"[a-z']+", known_text.lower()))
    known |= {word[:-2] + "ed" for word in known if word.endswith("'d")}
    broken, names = [], []
    for token in tokens:
        bare = token.strip().strip(".,!?;:\"()")
        if not bare:
            continue
        if bare.startswith("-") or bare.endswith("-"):
            broken.append(bare)
            continue
        for part in re.findall(r"[A-Za-z']+", bare):
            word = part.lower().strip("'")
            if word.endswith("'s"):
                word = word[:-2]
            if dictionary is not None and word and word not in dictionary and word not in known:
                (names if part[0].isupper() else broken).append(bare)
                break
    return broken, names


# -- the run --------------------------------------------------------------------------------------

def offline_readings(model, audio):
    """(greedy, beam 5) whole-file readings by faster-whisper's own transcribe."""
    out = []
    for beam in (1, 5):
        segments, _ = model.transcribe(audio, language="en", vad_filter=False, beam_size=beam)
        out.append(" ".join(s.text.strip() for s in segments))
    return tuple(out)


def cached_readings(kind, audio, read):
    """(condition, session) -> read(samples), kept in bench/results/ by `kind` and a hash of the audio.

    The offline and anchor readings depend on the audio and the model only (its name and
    compute type are in the key), and take minutes: a rerun after a change to the live path
    reuses them. Each reading is saved as soon as it is made, so an interrupted run keeps
    what it read.
    """
    from app.config import Settings
    settings = Settings.from_env()
    model = f"{settings.asr_model}:{settings.asr_compute_type}"
    cache_path = results_path(f"real_speech_{kind}_cache.json")
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    out = {}
    for key, samples in audio.items():
        digest = f"{model}:{hashlib.sha256(samples.tobytes()).hexdigest()[:16]}"
        if digest not in cache:
            cache[digest] = read(samples)
            cache_path.write_text(json.dumps(cache))
        out[key] = cache[digest]
    return out


def stream_all(url, audios, parallel):
    """The sessions' audio streamed `parallel` at a time (staggered starts); name -> finished LiveRun."""
    runs = {name: LiveRun(url, (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
            for name, audio in audios.items()}
    slots = threading.Semaphore(parallel)

    def run(session):
        with slots:
            session.run()

    threads = [threading.Thread(target=run, args=(session,)) for session in runs.values()]
    for thread in threads:
        thread.start()
        time.sleep(0.37)
    for thread in threads:
        thread.join()
    return runs


def reading_figures(who, reference, text, tokens, greedy, beam):
    """WER and defects of one reading (`who`: live, anchor, file) of a session, beside the offline readings."""
    known = " ".join([reference, greedy, beam])
    return {f"wer_{who}": round(speechgen.wer(reference, text), 4),
            f"{who}_deletion_runs": deletion_runs(reference, text, greedy),
            **dict(zip((f"{who}_fragments", f"{who}_misheard_names"), fragments(tokens, known))),
            **dict(zip((f"{who}_sentence_ends", f"{who}_false_sentence_ends"), false_sentence_ends(text, greedy))),
            f"transcript_{who}": text}


def analyse_files(url, audios):
    """name -> the text of its `POST /analyze` document's utterances: each audio sent as a 16-bit WAV."""
    out = {}
    with LiveClient(url) as client:
        for name, audio in audios.items():
            wav = io.BytesIO()
            soundfile.write(wav, np.clip(audio, -1, 1), RATE_HZ, format="WAV", subtype="PCM_16")
            out[name] = " ".join(u["text"].strip() for u in client.analyze_file(wav.getvalue()).utterances)
    return out


def summarise(entries, references):
    """Pooled figures over sessions: WERs by errors / reference words, defect counts."""
    words = {n: len(speechgen.normalise(references[n]).split()) for n in entries}
    total = sum(words.values())

    def pooled(key):
        return round(sum(entries[n][key] * words[n] for n in entries) / total, 4)

    out = {"words": total, "sessions": sorted(entries)}
    for key in [k for k in next(iter(entries.values())) if k.startswith("wer_")]:
        out[key] = pooled(key)
    greedy, beam = out["wer_offline_greedy"], out["wer_offline_beam5"]
    for who in [k[4:] for k in out if k.startswith("wer_") and "offline" not in k]:
        live = out[f"wer_{who}"]
        out[f"{who}_ratio_to_greedy"] = round(live / greedy, 2) if greedy else None
        out[f"{who}_minus_beam5_points"] = round(100 * (live - beam), 2)
        out[f"{who}_deletion_runs"] = sum(len(entries[n][f"{who}_deletion_runs"]) for n in entries)
        out[f"{who}_fragments"] = sum(len(entries[n][f"{who}_fragments"]) for n in entries)
        out[f"{who}_misheard_names"] = sum(len(entries[n][f"{who}_misheard_names"]) for n in entries)
        for key in (f"{who}_sentence_ends", f"{who}_false_sentence_ends"):
            out[key] = sum(entries[n][key] for n in entries)
    return out


def latency_summary(latencies):
    """P50/P95 of the pooled latency lists of some sessions (each a dict as `session_latencies` makes)."""
    pooled = {key: [v for lat in latencies for v in lat[key]] for key in ("utt", "first", "final", "anchor")}
    out = {"utterance_end_to_final_s": {"p50": pct(pooled["utt"], 50), "p95": pct(pooled["utt"], 95),
                                        "n": len(pooled["utt"])},
           "word_to_first_partial_s": {"p50": pct(pooled["first"], 50), "p95": pct(pooled["first"], 95),
                                       "n": len(pooled["first"]),
                                       "words_first_seen_in_final": sum(lat["unseen"] for lat in latencies)},
           "word_to_final_s": {"p50": pct(pooled["final"], 50), "p95": pct(pooled["final"], 95),
                               "n": len(pooled["final"])}}
    if pooled["anchor"]:
        out["anchor_word_to_final_s_computation_unaware"] = {
            "p50": pct(pooled["anchor"], 50), "p95": pct(pooled["anchor"], 95), "n": len(pooled["anchor"])}
    return out


def session_latencies(run, anchor_word_to_final):
    """One finished LiveRun's latency samples, kept apart so that any group of sessions can pool them."""
    words = run.word_latencies()
    return {"utt": run.utterance_latencies(), "first": [p for p, _ in words if p is not None],
            "unseen": sum(1 for p, _ in words if p is None), "final": [f for _, f in words],
            "anchor": list(anchor_word_to_final)}


def group_figures(names, entries, latencies, references):
    """WER, defect and latency figures pooled over the sessions `names`."""
    return {**summarise({n: entries[n] for n in names}, references),
            "latency": latency_summary([latencies[n] for n in names])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--split", choices=("tuning", "heldout", "both"), default="both")
    parser.add_argument("--kind", choices=(*KINDS, "both"), default="both")
    parser.add_argument("--anchor", action="store_true", help="also run the LocalAgreement-2 anchor")
    parser.add_argument("--files", action="store_true", help="also analyse each session as a recorded file")
    parser.add_argument("--parallel", type=int, default=PARALLEL, help="sessions streamed at once")
    parser.add_argument("--out", default="real_speech.json")
    args = parser.parse_args()

    utterances = manifest()
    kinds = {name: session_kind(ids, split, utterances) for name, split, ids in SESSIONS}
    sessions = [s for s in SESSIONS if args.split in ("both", s[1]) and args.kind in ("both", kinds[s[0]])]
    references = {name: " ".join(utterances[u]["reference"] for u in ids) for name, _, ids in sessions}
    conditions = args.conditions.split(",")
    audio = {(c, name): condition(session_audio(ids, utterances), c, seed=i)
             for c in conditions for i, (name, _, ids) in enumerate(sessions)}

    print("offline readings (faster-whisper transcribe, greedy and beam 5) ...", flush=True)
    model = lru_cache(maxsize=1)(offline_model)  # loaded only if a reading is not cached
    offline = cached_readings("offline", audio, lambda samples: offline_readings(model(), samples))
    model.cache_clear()
    anchor = {}
    if args.anchor:
        import local_agreement
        print("LocalAgreement-2 anchor ...", flush=True)
        anchor = cached_readings("anchor", audio, local_agreement.transcribe)

    server = Server({"HARKEN_PIPELINE": "speech", "HARKEN_STATUS_EVERY_S": "0.5"}, results_path("real-speech-server.log"))
    report = {"machine": machine.describe(), "noise_snr_db": NOISE_SNR_DB, "pause_s": PAUSE_S,
              "parallel_sessions": args.parallel, "load_average_at_start": os.getloadavg(),
              "audio_s": {name: round(len(audio[(conditions[0], name)]) / RATE_HZ, 2) for name, _, _ in sessions},
              "conditions": {}}
    try:
        for c in conditions:
            cpu_before = worker_cpu_s(server.url)
            started = time.monotonic()
            runs = stream_all(server.url, {name: audio[(c, name)] for name, _, _ in sessions}, args.parallel)
            wall_s = time.monotonic() - started
            cpu = worker_cpu_s(server.url) - cpu_before
            files = analyse_files(server.url, {name: audio[(c, name)] for name, _, _ in sessions}) if args.files else {}
            entries, latencies = {}, {}
            for name, split, _ in sessions:
                run, reference = runs[name], references[name]
                greedy, beam = offline[(c, name)]
                tokens = [w["word"] for _, d in run.of("final_transcript") for w in d["words"]]
                entry = {"split": split, "kind": kinds[name], "error": run.error,
                         **reading_figures("live", reference, run.transcript, tokens, greedy, beam),
                         "wer_offline_greedy": round(speechgen.wer(reference, greedy), 4),
                         "wer_offline_beam5": round(speechgen.wer(reference, beam), 4),
                         "finals": len(run.of("final_transcript")), "partials": len(run.of("partial_transcript")),
                         "max_lag_s": round(run.max_lag_s, 3),
                         "transcript_offline_greedy": greedy, "transcript_offline_beam5": beam}
                if anchor:
                    text, tokens_anchor = anchor[(c, name)]["text"], anchor[(c, name)]["tokens"]
                    entry.update(reading_figures("anchor", reference, text, tokens_anchor, greedy, beam))
                if files:
                    entry.update(reading_figures("file", reference, files[name], files[name].split(), greedy, beam))
                entries[name] = entry
                latencies[name] = session_latencies(run, anchor[(c, name)]["word_to_final_s"] if anchor else [])
                print(f"[{c}] {name} ({split}, {kinds[name]}): WER live {entry['wer_live']:.3f}, offline greedy "
                      f"{entry['wer_offline_greedy']:.3f}, beam5 {entry['wer_offline_beam5']:.3f}"
                      + (f", anchor {entry['wer_anchor']:.3f}" if anchor else "")
                      + (f", file {entry['wer_file']:.3f}" if files else "")
                      + f"; deletion runs {entry['live_deletion_runs']}; fragments {entry['live_fragments']}"
                      + f"; misheard names {entry['live_misheard_names']}",
                      flush=True)
            block = {"sessions": entries, "wall_s": round(wall_s, 1), "worker_cpu_per_audio_s": round(
                cpu / sum(len(audio[(c, n)]) / RATE_HZ for n, _, _ in sessions), 3), "by_kind": {}}
            for split in ("tuning", "heldout"):
                names = [n for n, e in entries.items() if e["split"] == split]
                if names:
                    block[split] = group_figures(names, entries, latencies, references)
                    print(f"[{c}] {split}: {json.dumps(block[split])}", flush=True)
                for kind in KINDS:
                    names = [n for n, e in entries.items() if e["split"] == split and e["kind"] == kind]
                    if names:
                        figures = group_figures(names, entries, latencies, references)
                        block["by_kind"].setdefault(kind, {})[split] = figures
                        print(f"[{c}] {split} {kind}: {json.dumps(figures)}", flush=True)
            report["conditions"][c] = block
    finally:
        server.stop()
    print(f"written {save(args.out, report)}")


if __name__ == "__main__":
    main()

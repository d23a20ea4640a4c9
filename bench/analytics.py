"""Benchmark of the analytics on the labelled sets in bench/data/, held-out beside tuning.

Text path (always; seconds): each labelled utterance or turn goes through `app.analytics` as
an Utterance with its text and no audio, so the words decide:
- emotion: `emotion_heldout.json`, `emotion_heldout_questions.json` and `emotion_tuning.json`
  (7-way accuracy, macro-F1, the confusion matrix, valence-sign accuracy on joy vs
  anger/disgust/fear/sadness), each utterance in a fresh session;
- moments: the development and held-out conversations of `conversations.json` and the
  held-out conversations in new wording of `moments_heldout.json` and
  `moments_heldout_fresh.json`, `moments_heldout_fresh2.json` and `moments_heldout_fresh3.json` (precision/recall per category
  and per split: `development` is what the rules were tuned on, the others are held out).

Spoken path (`--speech`, minutes): every turn of those conversations is spoken by Piper
(tests/speechgen.py), recognised by Whisper for its words and word times, and analysed with
its audio; this gives the CPU per utterance of each analyser and the moment and polarity
figures on recognised words. `--live` / `--url` also stream the conversations through the live
API of a server (VAD, streaming Whisper and speaker attribution decide the utterances; each
final is matched to the labelled turn it overlaps most).

    .venv/bin/python bench/analytics.py              # text path
    .venv/bin/python bench/analytics.py --speech     # plus the spoken path in process
    .venv/bin/python bench/analytics.py --live       # plus the live API of a server it starts (no --speech needed)
    .venv/bin/python bench/analytics.py --real bench/data/real/manifest.json   # plus arousal on real voices

Real voices (`--real MANIFEST`, the real human recordings of bench/data/real/, read speech):
for each speaker, one recording is made louder, faster and higher with sox (the ladders of
tests/test_analytics_speech.py: −10/−5/0 dB, tempo 0.85/1/1.2, −200/0/+200 cents, and all
three together) and analysed after the same warm-up utterances of that speaker; a ladder
holds when every later step scores higher arousal than every earlier one.

Prints the figures and writes them to bench/results/analytics.json. Polarity of a turn:
positive if its valence > POLARITY_THRESHOLD, negative below minus it, else neutral.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

# OpenBLAS on one thread, as in a speech worker (app.speech.pool.worker_environment), set before
# numpy loads it: the CPU per utterance is the analysing thread's, and MiniLM runs on numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import machine  # noqa: E402  (bench/ is this script's own directory, first on the path)
from report import results_path, save  # noqa: E402

from app.analytics import ConversationAnalytics, load_models  # noqa: E402
from app.pipeline.base import SessionContext  # noqa: E402
from app.speech.analysis import Utterance  # noqa: E402
from client.events import Word  # noqa: E402
from tests.speechgen import RATE_HZ, dialogue  # noqa: E402

DATA = ROOT / "bench" / "data" / "conversations.json"
MOMENTS_HELDOUT = ROOT / "bench" / "data" / "moments_heldout.json"
MOMENTS_FRESH = ROOT / "bench" / "data" / "moments_heldout_fresh.json"
MOMENTS_FRESH2 = ROOT / "bench" / "data" / "moments_heldout_fresh2.json"
MOMENTS_FRESH3 = ROOT / "bench" / "data" / "moments_heldout_fresh3.json"
EMOTION_SETS = {"heldout": ROOT / "bench" / "data" / "emotion_heldout.json",
                "heldout_questions": ROOT / "bench" / "data" / "emotion_heldout_questions.json",
                "tuning": ROOT / "bench" / "data" / "emotion_tuning.json"}
EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
NEGATIVE = ("anger", "disgust", "fear", "sadness")
CATEGORIES = ("question", "objection", "cta_commit", "topic_shift", "escalation", "resolution")
POLARITY_THRESHOLD = 0.25
#: CPU seconds of every on_final call of the run, for the per-utterance distribution.
ON_FINAL_CPU_S = []


def load_set():
    """The labelled conversations: conversations.json (development and heldout splits), the
    held-out conversations in new wording (split `heldout_new_wording`, looked at while the first
    moment head was tuned), the fresh ones written before the speech-act head (`heldout_fresh`) and
    the second fresh ones written before that head's second tuning (`heldout_fresh2`) and the
    third, written before the head that reads a turn in its exchange (`heldout_fresh3`)."""
    sets = ((MOMENTS_HELDOUT, "heldout_new_wording"), (MOMENTS_FRESH, "heldout_fresh"),
            (MOMENTS_FRESH2, "heldout_fresh2"), (MOMENTS_FRESH3, "heldout_fresh3"))
    return json.loads(DATA.read_text())["conversations"] + [
        dict(c, split=split) for path, split in sets for c in json.loads(path.read_text())["conversations"]]


def text_utterance(index, speaker, text):
    """An Utterance of `text` alone: no audio, no word times (the words decide)."""
    return Utterance(utterance_id=f"utt_{index + 1:04d}", speaker=speaker, t_start=3.0 * index,
                     t_end=3.0 * index + 2.5, text=text, confidence=1.0, words=[], audio=np.zeros(0, np.float32))


def emotion_report(items, models):
    """7-way accuracy, macro-F1, confusion matrix and valence-sign accuracy of one emotion set."""
    confusion = Counter()
    signs = []
    for item in items:
        analytics = ConversationAnalytics(SessionContext("bench", "bench"), models)
        reading = analytics.on_final(text_utterance(0, "Speaker_0", item["text"]))[0]
        confusion[(item["label"], reading.label)] += 1
        if item["label"] == "joy" or item["label"] in NEGATIVE:
            signs.append((reading.scores["valence"] > 0) == (item["label"] == "joy"))
    f1 = {}
    for label in EMOTIONS:
        tp = confusion[(label, label)]
        fp = sum(confusion[(other, label)] for other in EMOTIONS if other != label)
        fn = sum(confusion[(label, other)] for other in EMOTIONS if other != label)
        f1[label] = round(2 * tp / (2 * tp + fp + fn), 3) if tp else 0.0
    return {"items": len(items), "accuracy": round(sum(confusion[(e, e)] for e in EMOTIONS) / len(items), 3),
            "macro_f1": round(float(np.mean(list(f1.values()))), 3), "f1": f1,
            "valence_sign_accuracy": round(float(np.mean(signs)), 3), "valence_sign_items": len(signs),
            "confusion": {"rows_true_columns_predicted": list(EMOTIONS),
                          "matrix": [[confusion[(t, p)] for p in EMOTIONS] for t in EMOTIONS]}}


def run_text(conversation, models):
    """Per-turn predictions of one conversation fed turn by turn as text."""
    names = {}
    items = [text_utterance(i, names.setdefault(t["speaker"], f"Speaker_{len(names)}"), t["text"])
             for i, t in enumerate(conversation["turns"])]
    turns, _, _ = run_in_process(conversation, items, models, timed=False)
    return turns


def render(conversation):
    """(wav path, spans) of the conversation spoken turn by turn."""
    voices = {name: {"voice": "joe", **voice} for name, voice in conversation["voices"].items()}
    turns = [(turn["speaker"], turn["text"]) for turn in conversation["turns"]]
    return dialogue(turns, voices=voices)


def whisper():
    """The packaged Whisper model, one CPU thread, as the speech pipeline runs it."""
    from app.config import Settings
    from app.speech.models import whisper_model
    return whisper_model(Settings.from_env())


def utterances(conversation, wav, spans, asr):
    """One Utterance per turn: its audio, Whisper's text and word times, its true speaker."""
    audio, _ = soundfile.read(wav, dtype="float32")
    names = {}
    for index, (turn, span) in enumerate(zip(conversation["turns"], spans)):
        first, last = int(span.start_s * RATE_HZ), int(span.end_s * RATE_HZ)
        samples = audio[first:last]
        segments, _ = asr.transcribe(samples, language="en", word_timestamps=True, beam_size=1)
        segments = list(segments)
        words = [Word(w.word.strip(), round(span.start_s + w.start, 3), round(span.start_s + w.end, 3),
                      round(w.probability, 3)) for s in segments for w in s.words]
        confidence = float(np.mean([w.confidence for w in words])) if words else 0.0
        speaker = names.setdefault(turn["speaker"], f"Speaker_{len(names)}")
        yield Utterance(utterance_id=f"utt_{index + 1:04d}", speaker=speaker, t_start=span.start_s,
                        t_end=span.end_s, text=" ".join(s.text.strip() for s in segments),
                        confidence=confidence, words=words, audio=samples)


def run_in_process(conversation, items, models, timed=True):
    """Feed the utterances to a fresh ConversationAnalytics; per-turn predictions and the session.

    Each moment is credited to the turn of the first utterance it names (a topic shift is
    confirmed one utterance late; a sentence cut across finals names them all).
    """
    context = SessionContext(session_id=f"bench_{conversation['id']}", conversation_id=conversation["id"],
                             goal=conversation.get("goal"))
    analytics = ConversationAnalytics(context, models)
    turns, index = [], {}
    for utterance in items:
        started = time.process_time()
        events = analytics.on_final(utterance)
        if timed:
            ON_FINAL_CPU_S.append(time.process_time() - started)
        index[utterance.utterance_id] = len(turns)
        turns.append({"text": utterance.text, "valence": events[0].scores["valence"],
                      "label": events[0].label, "moments": []})
    summary = analytics.summary(final=True)
    for moment in analytics.moments:
        turns[index[moment.utterance_ids[0]]]["moments"].append(moment.category)
    return turns, analytics, summary


def evaluate_live(url, conversations):
    """Stream each spoken conversation through the live API and score what comes back."""
    from client import LiveClient
    by_split = defaultdict(lambda: ([], []))
    sessions = {}
    with LiveClient(url, timeout=(5, 300)) as client:
        for conversation in conversations:
            wav, spans = render(conversation)
            events = list(client.stream_file(wav, goal=conversation.get("goal"),
                                             metadata={"conversation": conversation["id"]}))
            turns = _turns_from_events(events, spans)
            for split in (conversation["split"], "all"):
                by_split[split][0].extend(conversation["turns"])
                by_split[split][1].extend(turns)
            sessions[conversation["id"]] = {
                "finals": sum(e.name == "final_transcript" for e in events),
                "transitions": sum(e.name == "transition" for e in events),
                "moments": sum(e.name == "moment" for e in events),
                "summaries": sum(e.name == "summary_update" for e in events),
                "done": events[-1].name == "done" if events else False}
    report = score(*by_split["all"])
    report["splits"] = {split: {k: v for k, v in score(*pair).items() if k != "errors"}
                        for split, pair in by_split.items() if split != "all"}
    report["sessions"] = sessions
    return report


def _turns_from_events(events, spans):
    """Per labelled turn: the text, duration-weighted valence and moments of the finals over it."""
    turns = [{"text": "", "valence": 0.0, "weight": 0.0, "moments": []} for _ in spans]
    owner = {}
    for event in events:
        if event.name == "final_transcript":
            overlaps = [min(event.t_end, s.end_s) - max(event.t_start, s.start_s) for s in spans]
            best = int(np.argmax(overlaps))
            owner[event.utterance_id] = (best, max(event.t_end - event.t_start, 0.01))
            turns[best]["text"] = (turns[best]["text"] + " " + event.text).strip()
        elif event.name == "emotion" and event.utterance_id in owner:
            index, weight = owner[event.utterance_id]
            turns[index]["valence"] += weight * event.scores["valence"]
            turns[index]["weight"] += weight
        elif event.name == "moment" and event.utterance_ids and event.utterance_ids[0] in owner:
            turns[owner[event.utterance_ids[0]][0]]["moments"].append(event.category)
    for turn in turns:
        turn["valence"] = turn["valence"] / turn.pop("weight") if turn["weight"] else 0.0
    return turns


def polarity(valence):
    """positive / negative / neutral for a valence score."""
    if valence > POLARITY_THRESHOLD:
        return "positive"
    if valence < -POLARITY_THRESHOLD:
        return "negative"
    return "neutral"


def score(labelled, predicted):
    """Moment precision/recall/F1 per category and overall, and polarity accuracy."""
    counts = {c: Counter() for c in CATEGORIES}
    errors = []
    polarity_hits = 0
    for truth, guess in zip(labelled, predicted):
        expected, found = set(truth["moments"]), set(guess["moments"])
        for category in CATEGORIES:
            hit, said = category in expected, category in found
            counts[category]["tp"] += hit and said
            counts[category]["fp"] += said and not hit
            counts[category]["fn"] += hit and not said
        if expected != found:
            errors.append({"text": truth["text"], "heard": guess["text"], "expected": sorted(expected),
                           "found": sorted(found)})
        polarity_hits += polarity(guess["valence"]) == truth["polarity"]
    per_category = {c: _prf(counts[c]) for c in CATEGORIES}
    total = sum((counts[c] for c in CATEGORIES), Counter())
    return {"moments": per_category, "moments_overall": _prf(total),
            "polarity_accuracy": round(polarity_hits / len(labelled), 3), "errors": errors}


def _prf(c):
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else 0.0
    return {"tp": c["tp"], "fp": c["fp"], "fn": c["fn"], "precision": _r(precision), "recall": _r(recall),
            "f1": round(f1, 3)}


def _r(x):
    return None if x is None else round(x, 3)


#: The categories judged by meaning as well as by phrase: the issue's recall/precision target is on these.
BY_MEANING = ("objection", "escalation", "resolution")


def split_scores(by_split):
    """score() per split, plus the pooled objection/escalation/resolution figures of each."""
    out = {}
    for split, (labelled, predicted) in sorted(by_split.items()):
        result = score(labelled, predicted)
        pooled = sum((Counter({k: result["moments"][c][k] for k in ("tp", "fp", "fn")}) for c in BY_MEANING), Counter())
        result["by_meaning_pooled"] = _prf(pooled)
        out[split] = result
    return out


def text_moments(conversations, models):
    """split_scores() of the conversations fed turn by turn as text."""
    by_split = defaultdict(lambda: ([], []))
    for conversation in conversations:
        turns = run_text(conversation, models)
        for split in (conversation["split"], "all"):
            by_split[split][0].extend(conversation["turns"])
            by_split[split][1].extend(turns)
    return split_scores(by_split)


def evaluate_text(conversations, models):
    """The text path: emotion sets and moments per split."""
    report = {"emotion": {name: emotion_report(json.loads(path.read_text())["items"], models)
                          for name, path in EMOTION_SETS.items()}}
    report["emotion"]["note"] = ("tuning figures are in-sample (the head was fitted on that set); "
                                 "bench/train_heads.py prints its 5-fold cross-validated accuracy")
    report["moments"] = text_moments(conversations, models)
    report["best_recall_at_precision"] = best_recall(conversations, models)
    return report


#: Precision the issue asks of objection, escalation and resolution in new wording.
TARGET_PRECISION = 0.85
#: Offsets from the shipped thresholds tried by `best_recall` (each threshold clipped to [0.05, 0.99]).
SWEEP = tuple(round(-0.5 + 0.05 * i, 2) for i in range(20))


class _Memo:
    """The encoder with its embeddings remembered, so the threshold sweep does not rerun MiniLM."""

    def __init__(self, encoder):
        self.encoder, self.seen = encoder, {}

    def encode(self, text):
        if text not in self.seen:
            self.seen[text] = self.encoder.encode(text)
        return self.seen[text]


def best_recall(conversations, models):
    """Per split, per category (and pooled): the best recall whose precision reaches TARGET_PRECISION when
    the moment head's thresholds move, with the threshold offset that gave it.

    An oracle figure (the threshold is chosen on the set it scores): how far the head's ranking
    is from the target, not what the shipped thresholds do. A category's threshold moves alone
    (the others stay shipped); for the pooled figure all three move by the same offset.
    """
    memo = dataclasses.replace(models, encoder=_Memo(models.encoder))
    shipped = dict(models.moment_head.thresholds)
    best = defaultdict(dict)
    settings = [(c, off) for c in BY_MEANING for off in SWEEP] + [("pooled", off) for off in SWEEP]
    try:
        for target, offset in settings:
            for category in BY_MEANING:
                moved = target in (category, "pooled")
                models.moment_head.thresholds[category] = min(max(shipped[category] + offset, 0.05), 0.99) \
                    if moved else shipped[category]
            for split, result in text_moments(conversations, memo).items():
                m = result["by_meaning_pooled"] if target == "pooled" else result["moments"][target]
                if m["precision"] is not None and m["precision"] >= TARGET_PRECISION and \
                        m["recall"] is not None and m["recall"] > best[split].get(target, {}).get("recall", -1):
                    best[split][target] = dict(m, offset=offset)
    finally:
        models.moment_head.thresholds.update(shipped)
    return {split: dict(found) for split, found in best.items()}


def evaluate_real_voices(manifest_path, models, asr):
    """Arousal along the louder/faster/higher ladders for one recording of each real speaker."""
    import subprocess
    import tempfile
    sys.path.insert(0, str(ROOT / "tests"))  # the test module imports speechgen as the test run does
    from test_analytics_speech import LADDERS
    manifest = json.loads(Path(manifest_path).read_text())
    by_speaker = defaultdict(list)
    for item in manifest["utterances"]:
        by_speaker[item["speaker"]].append(item)
    root = Path(manifest_path).parent
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        def recognised(path, uid, t_start):
            audio, rate = soundfile.read(path, dtype="float32")
            segments, _ = asr.transcribe(audio, language="en", word_timestamps=True, beam_size=1)
            words = [Word(w.word.strip(), round(t_start + w.start, 3), round(t_start + w.end, 3),
                          round(w.probability, 3)) for seg in segments for w in seg.words]
            return Utterance(uid, "Speaker_0", t_start, t_start + len(audio) / rate,
                             " ".join(w.word for w in words), 0.9, words, audio)

        for speaker, items in sorted(by_speaker.items()):
            items = sorted(items, key=lambda i: -i["seconds"])
            test, warm = items[0], items[1:3] or items[:1]
            source = Path(tmp) / f"{test['id']}.wav"  # sox reads no Opus: the recordings may be either
            soundfile.write(source, soundfile.read(root / test["audio"], dtype="int16")[0], RATE_HZ, subtype="PCM_16")
            warm_ups = []
            t = 0.0
            for i, item in enumerate(warm, 1):
                warm_ups.append(recognised(root / item["audio"], f"utt_{i:04d}", t))
                t = warm_ups[-1].t_end + 0.5
            ladders = {}
            for ladder, steps in sorted(LADDERS.items()):
                readings = []
                for n, step in enumerate(steps):
                    effects = (["pitch", str(step["pitch_cents"])] if step.get("pitch_cents") else []) + \
                        (["tempo", "-s", str(step["tempo"])] if step.get("tempo") else []) + \
                        (["gain", str(step["gain_db"])] if step.get("gain_db") else [])
                    variant = Path(tmp) / f"{test['id']}-{ladder}-{n}.wav"
                    subprocess.run(["sox", str(source), "-r", str(RATE_HZ), "-c", "1", "-b", "16",
                                    str(variant), *effects], check=True, capture_output=True)
                    analytics = ConversationAnalytics(SessionContext("real", "real"), models)
                    for utterance in warm_ups:
                        analytics.on_final(utterance)
                    reading = analytics.on_final(recognised(variant, "utt_0009", t))[0]
                    readings.append({"arousal": reading.scores["arousal"],
                                     "acoustic_arousal": reading.features["acoustic_arousal"]})
                values = [r["arousal"] for r in readings]
                ladders[ladder] = {"steps": readings, "holds": all(
                    values[hi] > values[lo] for lo in range(len(values)) for hi in range(lo + 1, len(values)))}
            report[speaker] = {"recording": test["id"], "licence": manifest["sources"][test["set"]]["licence"],
                               "warm_up": [i["id"] for i in warm], "ladders": ladders}
    held = [v["holds"] for r in report.values() for v in r["ladders"].values()]
    return {"speakers": report, "ladders_holding": f"{sum(held)}/{len(held)}"}


def evaluate_speech(conversations, models):
    """The spoken path in process: Piper audio, Whisper words and times, CPU per analyser."""
    asr = whisper()
    by_split = defaultdict(lambda: ([], []))
    cpu, n_utts, transitions, summaries, polarity_rows = Counter(), 0, {}, {}, []
    for conversation in conversations:
        wav, spans = render(conversation)
        items = list(utterances(conversation, wav, spans, asr))
        turns, analytics, summary = run_in_process(conversation, items, models)
        for split in (conversation["split"], "all"):
            by_split[split][0].extend(conversation["turns"])
            by_split[split][1].extend(turns)
        cpu.update({k: v for k, v in analytics.cpu_s.items() if k != "summary"})
        n_utts += len(items)
        transitions[conversation["id"]] = [e.to_dict() for e in analytics.transitions]
        summaries[conversation["id"]] = summary.to_dict()
        polarity_rows += [(t["polarity"], polarity(p["valence"])) for t, p in zip(conversation["turns"], turns)]
    report = {"path": "in-process: Piper audio, Whisper words, Utterance objects fed to ConversationAnalytics",
              "utterances": n_utts, "moments": split_scores(by_split),
              "transitions": {cid: len(items) for cid, items in transitions.items()},
              "transition_events": transitions,
              "cpu_ms_per_utterance": {k: round(1000 * v / n_utts, 2) for k, v in sorted(cpu.items())},
              "polarity_confusion": {f"{t}->{p}": n for (t, p), n in sorted(Counter(polarity_rows).items())},
              "summaries": summaries}
    report["cpu_ms_per_utterance"]["total"] = round(1000 * sum(cpu.values()) / n_utts, 2)
    report["on_final_cpu_ms"] = {name: round(1000 * float(value), 2) for name, value in (
        ("mean", np.mean(ON_FINAL_CPU_S)), ("p95", np.percentile(ON_FINAL_CPU_S, 95)),
        ("max", np.max(ON_FINAL_CPU_S)))}
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", action="store_true", help="also speak the conversations (Piper, Whisper)")
    parser.add_argument("--url", help="base URL of a running Harken server: also evaluate through its live API")
    parser.add_argument("--live", action="store_true", help="start a server and also evaluate through its live API")
    parser.add_argument("--real", metavar="MANIFEST", help="real recordings' manifest.json: arousal along sox ladders")
    args = parser.parse_args(argv)
    conversations = load_set()
    started = time.process_time()
    models = load_models()
    report = {"machine": machine.describe(), "model_load_cpu_s": round(time.process_time() - started, 2),
              "text": evaluate_text(conversations, models)}
    if args.speech:
        report["speech"] = evaluate_speech(conversations, models)
    if args.real:
        report["real_voices"] = evaluate_real_voices(args.real, models, whisper())
    if args.live:
        sys.path.insert(0, str(ROOT / "tests"))  # conftest imports its helper modules as the test run does
        from tests.conftest import Server
        server = Server({"HARKEN_PIPELINE": "speech"}, results_path("server.log"))
        try:
            report["live"] = evaluate_live(server.url, conversations)
        finally:
            server.stop()
    elif args.url:
        report["live"] = evaluate_live(args.url, conversations)
    _print(report)
    save("analytics.json", report)
    return report


def _print(report):
    emotion = report["text"]["emotion"]
    print("EMOTION (text path)      held-out   held-out questions   tuning (in-sample)")
    for key in ("items", "accuracy", "macro_f1", "valence_sign_accuracy"):
        print(f"  {key:<22} {emotion['heldout'][key]:>8}   {emotion['heldout_questions'][key]:>18}"
              f"   {emotion['tuning'][key]:>8}")
    for name in EMOTION_SETS:
        print(f"  confusion {name} (rows true, columns predicted: {' '.join(e[:4] for e in EMOTIONS)})")
        for label, row in zip(EMOTIONS, emotion[name]["confusion"]["matrix"]):
            print(f"    {label:<9}" + "".join(f"{n:>5}" for n in row))
    _print_moments("MOMENTS (text path)", report["text"]["moments"])
    print(f"  best recall at precision >= {TARGET_PRECISION} (thresholds moved on the set itself: an oracle)")
    for split, found in sorted(report["text"]["best_recall_at_precision"].items()):
        print(f"    {split:<22}" + "  ".join(
            f"{c} {found[c]['recall']:.2f} (P {found[c]['precision']:.2f}, {found[c]['offset']:+.2f})" if c in found
            else f"{c} -" for c in BY_MEANING + ("pooled",)))
    if "speech" in report:
        speech = report["speech"]
        _print_moments(f"MOMENTS (spoken, {speech['utterances']} utterances: Piper + Whisper)", speech["moments"])
        print(f"  polarity {speech['polarity_confusion']}")
        print(f"  transitions: {speech['transitions']}")
        print("  CPU ms per utterance: " + ", ".join(f"{k} {v}" for k, v in speech["cpu_ms_per_utterance"].items()))
        print("  on_final CPU ms: " + ", ".join(f"{k} {v}" for k, v in speech["on_final_cpu_ms"].items()))
    if "real_voices" in report:
        real = report["real_voices"]
        print(f"AROUSAL ON REAL VOICES (sox ladders; arousal per step): {real['ladders_holding']} ladders hold")
        for speaker, r in real["speakers"].items():
            cells = []
            for name, ladder in r["ladders"].items():
                steps = ", ".join(f"{step['arousal']:+.2f}" for step in ladder["steps"])
                cells.append(f"{name} {'ok' if ladder['holds'] else 'NO'} [{steps}]")
            print(f"  {speaker:<16} " + "  ".join(cells))
    if "live" in report:
        live = report["live"]
        print("live API:")
        for category, m in list(live["moments"].items()) + [("ALL", live["moments_overall"])]:
            print(f"  {category:<12} {_f(m['precision'])} {_f(m['recall'])} {_f(m['f1'])}   "
                  f"{m['tp']:>2} {m['fp']:>2} {m['fn']:>2}")
        print(f"  polarity accuracy {live['polarity_accuracy']:.3f}; splits " + ", ".join(
            f"{k}: F1 {_f(v['moments_overall']['f1'])} P {_f(v['moments_overall']['precision'])}"
            for k, v in sorted(live["splits"].items())))
        print(f"  sessions {live['sessions']}")
        for error in live["errors"]:
            print(f"  live miss: expected {error['expected']} found {error['found']}: {error['heard']}")


def _print_moments(title, splits):
    names = [s for s in splits if s != "all"] + ["all"]
    print(f"{title}: precision / recall (tp fp fn) per split")
    print(f"  {'category':<12}" + "".join(f"{n:>26}" for n in names))
    rows = [(c, lambda r, c=c: r["moments"][c]) for c in CATEGORIES]
    rows += [("obj+esc+res", lambda r: r["by_meaning_pooled"]), ("ALL", lambda r: r["moments_overall"])]
    for name, pick in rows:
        cells = []
        for split in names:
            m = pick(splits[split])
            cells.append(f"{_f(m['precision'])}/{_f(m['recall'])} ({m['tp']} {m['fp']} {m['fn']})")
        print(f"  {name:<12}" + "".join(f"{c:>26}" for c in cells))
    print("  polarity accuracy: " + ", ".join(f"{n} {splits[n]['polarity_accuracy']:.3f}" for n in names))
    for error in splits["all"]["errors"]:
        print(f"    miss: expected {error['expected']} found {error['found']}: {error['heard']}")


def _f(x):
    return f"{x:6.3f}" if isinstance(x, float) else f"{'-':>6}"


if __name__ == "__main__":
    main()

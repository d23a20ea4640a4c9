"""Engagement, focus and cognitive load of an utterance from named, measured disfluency and timing signals."""
import re

from client.events import Cognitive

#: Filled pauses. Whisper often drops them, so pauses from word timings count as hesitations too.
FILLERS = frozenset(["um", "uh", "erm", "er", "uhm", "hmm", "mm", "ah"])
FILLER_PHRASES = ("you know", "i mean", "sort of", "kind of")
_INTERROGATIVE = re.compile(
    r"^(who|what|when|where|why|how|which|can|could|would|will|do|does|did|is|are|was|were|"
    r"should|shall|may|have|has)\b", re.IGNORECASE)
#: An auxiliary before its subject asks, whatever punctuation streaming recognition gave the end.
_INVERTED = re.compile(
    r"^(can|could|would|will|do|does|did|is|are|was|were|should|shall|have|has) "
    r"(you|we|i|they|he|she|it|there|the|your|our|anyone|someone|anybody)\b", re.IGNORECASE)
_TOKENS = re.compile(r"[a-z']+")


def questions(text):
    """Sentences that ask: they end in '?', invert an auxiliary and its subject, or open with a
    question word and lack a closing period."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    return [s for s in sentences if s.endswith("?") or _INVERTED.match(s)
            or (_INTERROGATIVE.match(s) and not s.endswith("."))]


def signals(utterance, prosody, lexical, rate_z, latency_s, relevance):
    """The measured signals, each a number with its unit in the name."""
    tokens = _TOKENS.findall(utterance.text.lower().replace("’", "'"))
    padded = " " + " ".join(tokens) + " "
    fillers = sum(t in FILLERS for t in tokens) + sum(padded.count(f" {p} ") for p in FILLER_PHRASES)
    repetitions = sum(1 for a, b in zip(tokens, tokens[1:]) if a == b and a not in ("very", "no", "bye"))
    return {
        "words": len(tokens),
        "hesitation_pauses": prosody.pauses,
        "pause_total_s": round(prosody.pause_total_s, 3),
        "longest_pause_s": round(prosody.longest_pause_s, 3),
        "fillers": fillers,
        "repetitions": repetitions,
        "hedges": lexical.hedges,
        "speech_rate_syl_s": None if prosody.speech_rate_syl_s is None else round(prosody.speech_rate_syl_s, 2),
        "rate_change_z": round(rate_z, 3),
        "response_latency_s": None if latency_s is None else round(latency_s, 3),
        "questions": len(questions(utterance.text)),
        "relevance_to_previous": None if relevance is None else round(relevance, 3),
    }


def analyse(utterance, prosody, lexical, arousal, rate_z, latency_s, relevance):
    """The Cognitive event of one utterance.

    `rate_z` is the speech-rate z-score against the speaker's norm, `latency_s` the gap after
    the other speaker's last utterance (None if this speaker spoke last), `relevance` the
    cosine similarity to the previous utterance (None for the first).
    """
    s = signals(utterance, prosody, lexical, rate_z, latency_s, relevance)
    per_word = 1.0 / max(s["words"], 1)
    disfluency = (s["fillers"] + s["repetitions"] + s["hesitation_pauses"]) * per_word * 10
    slow_start = 0.0 if latency_s is None else min(max(latency_s - 1.0, 0.0) / 3.0, 1.0)
    on_topic = 0.0 if relevance is None else relevance - 0.25
    load_terms = {
        "hesitation pauses": 0.12 * s["hesitation_pauses"] + 0.2 * min(s["longest_pause_s"], 2.0),
        "fillers and repetitions": 0.1 * (s["fillers"] + s["repetitions"]),
        "hedging": 0.08 * s["hedges"],
        "slower speech than usual": 0.12 * max(-rate_z, 0.0),
        "a slow response": 0.2 * slow_start,
    }
    engagement_terms = {
        "a substantive turn": 0.3 * min(s["words"] / 15.0, 1.0),
        "asking questions": 0.15 * min(s["questions"], 1),
        "energy in the voice and words": 0.15 * max(arousal, 0.0),
        "staying on the thread": 0.2 * max(on_topic, 0.0),
        "a slow response": -0.15 * slow_start,
    }
    focus_terms = {
        "disfluency": -0.15 * min(disfluency, 4.0),
        "staying on the thread": 0.3 * on_topic,
        "hesitation pauses": -0.1 * s["hesitation_pauses"],
    }
    load = _unit(0.15 + sum(load_terms.values()))
    engagement = _unit(0.3 + sum(engagement_terms.values()))
    focus = _unit(0.75 + sum(focus_terms.values()))
    return Cognitive(utterance_id=utterance.utterance_id, speaker=utterance.speaker,
                     engagement=round(engagement, 3), focus=round(focus, 3), cognitive_load=round(load, 3),
                     signals=s, rationale=_rationale(engagement, focus, load, engagement_terms, focus_terms,
                                                     load_terms, s))


def _rationale(engagement, focus, load, engagement_terms, focus_terms, load_terms, s):
    """One sentence naming the strongest measured driver of each score."""
    def strongest(terms, sign):
        name, value = max(terms.items(), key=lambda item: sign * item[1])
        return name if sign * value > 0.02 else None

    parts = []
    load_driver = strongest(load_terms, 1)
    parts.append(f"load {_level(load)}" + (f" from {load_driver}" if load_driver else ""))
    engage_driver = strongest(engagement_terms, 1 if engagement >= 0.5 else -1)
    parts.append(f"engagement {_level(engagement)}" + (f" ({engage_driver})" if engage_driver else ""))
    focus_driver = strongest(focus_terms, 1 if focus >= 0.5 else -1)
    parts.append(f"focus {_level(focus)}" + (f" ({focus_driver})" if focus_driver else ""))
    evidence = (f"{s['words']} words, {s['hesitation_pauses']} pauses over {s['pause_total_s']:.2f} s, "
                f"{s['fillers']} fillers, {s['questions']} questions")
    return f"{'; '.join(parts)}: {evidence}.".capitalize()


def _level(value):
    return "high" if value >= 0.66 else "moderate" if value >= 0.33 else "low"


def _unit(value):
    return max(0.0, min(1.0, value))

"""The one JSON document `POST /analyze` answers, built from the events the analysis published.

Everything here is arithmetic over measured events (finals, emotion, cognitive, moments,
transitions, the summary): nothing is invented, and a field that cannot be computed honestly
is left out (docs/files.md lists which).
"""
import statistics
from collections import Counter, defaultdict

from client import events

from ..timefmt import mmss

# A valence slope smaller than this per minute is "steady".
STEADY_SLOPE_PER_MIN = 0.05
KEY_MOMENTS_MAX = 10
# A prosodic cue this many of the speaker's own standard deviations from their baseline is
# named in `prosody_desc`: (feature, word above, word below).
DESCRIBED_Z = 1.0
PROSODY_WORDS = (("loudness_db", "louder", "quieter"), ("pitch_st", "higher", "lower"),
                 ("pitch_range_st", "more varied in pitch", "flatter"),
                 ("speech_rate", "faster", "slower"))
# Which phase a moment opens; an utterance with several moments takes the first listed here.
PHASE_OF_MOMENT = (("escalation", "objection_handling"), ("objection", "objection_handling"),
                   ("cta_commit", "close"), ("resolution", "resolution"), ("question", "discovery"),
                   ("topic_shift", "discussion"))


def build(analysis_id, collected, goal=None, metadata=None):
    """The document for one finished analysis, from its events in order."""
    finals = [e for e in collected if isinstance(e, events.FinalTranscript)]
    by_utterance = defaultdict(dict)
    for event in collected:
        if isinstance(event, (events.Emotion, events.Cognitive)):
            by_utterance[event.utterance_id][event.name] = event
    moments = [e for e in collected if isinstance(e, events.Moment)]
    transitions = [e for e in collected if isinstance(e, events.Transition)]
    summary = next((e for e in reversed(collected) if isinstance(e, events.SummaryUpdate)), None)
    decoded = next((e for e in collected if isinstance(e, events.Status) and "truncated" in e.extra), None)
    timeline = [_timeline_item(final, by_utterance[final.utterance_id]) for final in finals]
    document = {
        "conversation_id": analysis_id,
        "utterances": len(finals),
        "duration_s": decoded.extra["decoded_seconds"] if decoded else 0.0,
        "truncated": bool(decoded and decoded.extra["truncated"]),
        "goal": goal,
        "metadata": metadata or {},
        "timeline": timeline,
        "summary": summary.to_dict() if summary else None,
        "insights": insights(timeline, moments, summary),
        "transitions": [t.to_dict() for t in transitions],
        "moments": [m.to_dict() for m in moments],
        "segmentation": {"phases": phases(finals, moments)},
    }
    if decoded and decoded.extra["truncated"]:
        document["warnings"] = [decoded.detail]
    return document


def _timeline_item(final, analysed):
    item = {"utterance_id": final.utterance_id, "speaker": final.speaker, "t_start": final.t_start,
            "t_end": final.t_end, "text": final.text, "asr_confidence": final.confidence,
            "words": [w.to_dict() for w in final.words]}
    feeling, mind = analysed.get("emotion"), analysed.get("cognitive")
    if feeling is not None:
        item["emotion"] = {"label": feeling.label, "distribution": feeling.emotion,
                           "scores": feeling.scores, "confidence": feeling.confidence,
                           "features": feeling.features}
        item.update(_text_scores(feeling.features.get("text_scores")))
        if "prosody" in feeling.features:
            item["prosody"] = feeling.features["prosody"]
            item["prosody_desc"] = prosody_desc(feeling.features)
    if mind is not None:
        item["cognitive"] = {"engagement": mind.engagement, "focus": mind.focus,
                             "cognitive_load": mind.cognitive_load, "signals": mind.signals,
                             "rationale": mind.rationale}
    return item


def _text_scores(scores):
    """The reference's per-utterance text fields, from the analytics' measured text scores."""
    if not scores:
        return {}
    return {"sentiment": scores["polarity_label"], "polarity": scores["polarity"],
            "subjectivity": scores["subjectivity"],
            "commitment_score": scores["commitment"], "commitment_level": scores["commitment_level"],
            "passion_score": scores["passion"], "passion_level": scores["passion_level"],
            "conviction_score": scores["conviction"], "conviction_level": scores["conviction_level"],
            "lexical_markers": scores["markers"]}


def prosody_desc(features):
    """How the voice differed from the speaker's own baseline, in words, from the measured z-scores."""
    if not features.get("baseline_utterances"):
        return "the speaker's first utterance: no baseline to compare the voice with yet"
    z = features.get("prosody_z") or {}
    said = [above if z[name] > 0 else below for name, above, below in PROSODY_WORDS
            if z.get(name) is not None and abs(z[name]) >= DESCRIBED_Z]
    if not said:
        return "within the speaker's usual loudness, pitch and pace"
    return ", ".join(said) + " than the speaker's usual"


def insights(timeline, moments, summary):
    """Conversation-level figures: sentiment over time, emotions, engagement, moments, speakers."""
    analysed = [u for u in timeline if "emotion" in u and "cognitive" in u]
    return {
        "overall_sentiment": _sentiment(analysed),
        "dominant_emotions": _dominant_emotions(analysed),
        "engagement_pattern": _engagement(analysed),
        "key_moments": _key_moments(moments),
        "speaker_profiles": _speaker_profiles(analysed, summary),
        "conversation_dynamics": _dynamics(timeline, summary),
        "cognitive_profile": _cognitive(analysed),
    }


def _sentiment(analysed):
    """Mean and spread of valence, weighted by nothing but the utterances, and its trend in time."""
    if not analysed:
        return {"mean": None, "std": None, "trend": None, "slope_per_min": None}
    valence = [u["emotion"]["scores"]["valence"] for u in analysed]
    slope = _slope([u["t_start"] / 60.0 for u in analysed], valence)
    trend = ("steady" if slope is None or abs(slope) < STEADY_SLOPE_PER_MIN
             else "rising" if slope > 0 else "falling")
    return {"mean": round(statistics.fmean(valence), 3),
            "std": round(statistics.pstdev(valence), 3), "trend": trend,
            "slope_per_min": None if slope is None else round(slope, 3)}


def _slope(xs, ys):
    """Least-squares slope of ys over xs; None with fewer than two distinct xs."""
    if len(set(xs)) < 2:
        return None
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def _dominant_emotions(analysed):
    """Emotion labels by share of talk time, largest first."""
    seconds = Counter()
    for u in analysed:
        seconds[u["emotion"]["label"]] += max(0.0, u["t_end"] - u["t_start"])
    total = sum(seconds.values()) or 1.0
    return [{"label": label, "share": round(s / total, 3)} for label, s in seconds.most_common()]


def _engagement(analysed):
    """Mean engagement, in each half of the conversation, and which way it went."""
    if not analysed:
        return {"mean": None, "first_half": None, "second_half": None, "trend": None}
    values = [u["cognitive"]["engagement"] for u in analysed]
    half = len(values) // 2 or 1
    first, second = statistics.fmean(values[:half]), statistics.fmean(values[half:] or values)
    trend = "steady" if abs(second - first) < 0.05 else "rising" if second > first else "falling"
    return {"mean": round(statistics.fmean(values), 3), "first_half": round(first, 3),
            "second_half": round(second, 3), "trend": trend}


def _key_moments(moments):
    """The most confident moments, in time order, each led by its [mm:ss]."""
    chosen = sorted(moments, key=lambda m: -m.confidence)[:KEY_MOMENTS_MAX]
    return [{"moment_id": m.moment_id, "category": m.category, "speaker": m.speaker,
             "at": mmss(m.start_ms / 1000.0), "confidence": m.confidence, "evidence": m.evidence}
            for m in sorted(chosen, key=lambda m: m.start_ms)]


def _speaker_profiles(analysed, summary):
    """The summary's talk-time figures per speaker, with their mean affect and state of mind."""
    dynamics = dict(summary.speaker_dynamics) if summary else {}
    spoken = defaultdict(list)
    for u in analysed:
        spoken[u["speaker"]].append(u)
    profiles = {}
    for speaker in sorted(set(dynamics) | set(spoken)):
        own = spoken.get(speaker, [])
        profile = dict(dynamics.get(speaker, {}))
        if own:
            profile.update({
                "mean_valence": _mean(u["emotion"]["scores"]["valence"] for u in own),
                "mean_arousal": _mean(u["emotion"]["scores"]["arousal"] for u in own),
                "mean_engagement": _mean(u["cognitive"]["engagement"] for u in own),
                "mean_cognitive_load": _mean(u["cognitive"]["cognitive_load"] for u in own)})
        profiles[speaker] = profile
    return profiles


def _dynamics(timeline, summary):
    """Turns, speaker changes and how quickly one speaker answers another."""
    changes, gaps, overlaps = 0, [], 0
    for before, after in zip(timeline, timeline[1:]):
        if after["speaker"] != before["speaker"]:
            changes += 1
            gap = after["t_start"] - before["t_end"]
            gaps.append(gap)
            overlaps += gap < 0
    turns = changes + 1 if timeline else 0
    longest = max(((u["t_end"] - u["t_start"], u) for u in timeline), default=(0.0, None), key=lambda p: p[0])
    return {"turns": turns, "speaker_changes": changes, "overlaps": overlaps,
            "mean_response_gap_s": _mean(gaps), "median_response_gap_s": (
                round(statistics.median(gaps), 3) if gaps else None),
            "longest_utterance": ({"utterance_id": longest[1]["utterance_id"],
                                   "speaker": longest[1]["speaker"], "seconds": round(longest[0], 3)}
                                  if longest[1] else None),
            "quality": summary.conversation_quality if summary else None}


def _cognitive(analysed):
    """Mean engagement, focus and load, and the utterance under the most load."""
    if not analysed:
        return {"mean_engagement": None, "mean_focus": None, "mean_cognitive_load": None,
                "peak_load": None}
    peak = max(analysed, key=lambda u: u["cognitive"]["cognitive_load"])
    return {"mean_engagement": _mean(u["cognitive"]["engagement"] for u in analysed),
            "mean_focus": _mean(u["cognitive"]["focus"] for u in analysed),
            "mean_cognitive_load": _mean(u["cognitive"]["cognitive_load"] for u in analysed),
            "peak_load": {"utterance_id": peak["utterance_id"], "speaker": peak["speaker"],
                          "cognitive_load": peak["cognitive"]["cognitive_load"],
                          "at": mmss(peak["t_start"])}}


def phases(finals, moments):
    """The conversation cut into phases by the moments measured in it, in time order.

    Until the first moment the conversation is in its opening; each utterance that carries a
    moment opens (or continues) the phase that moment names, and the utterances after it stay
    in that phase until another moment says otherwise.
    """
    categories = defaultdict(set)
    moment_ids = defaultdict(list)
    for moment in moments:
        for utterance_id in moment.utterance_ids:
            categories[utterance_id].add(moment.category)
            moment_ids[utterance_id].append(moment.moment_id)
    result = []
    current = "opening"
    for final in finals:
        named = next((phase for category, phase in PHASE_OF_MOMENT
                      if category in categories[final.utterance_id]), None)
        if named is not None:
            current = named
        if not result or result[-1]["phase_name"] != current or named == "discussion":
            result.append({"phase_id": f"ph_{len(result) + 1:02d}", "phase_name": current,
                           "start_ms": int(round(final.t_start * 1000)), "end_ms": 0,
                           "utterance_ids": [], "evidence_moment_ids": []})
        phase = result[-1]
        phase["end_ms"] = int(round(final.t_end * 1000))
        phase["utterance_ids"].append(final.utterance_id)
        phase["evidence_moment_ids"].extend(moment_ids[final.utterance_id])
    return result


def _mean(values):
    values = list(values)
    return round(statistics.fmean(values), 3) if values else None

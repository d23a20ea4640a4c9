"""The ConversationSummary, written from the measured analytics: every sentence cites a count, a time or a quote."""
import re
from collections import Counter, defaultdict

from client.events import SummaryUpdate

from ..timefmt import mmss

ARC_POINTS = 8
#: Utterances on each side of a point whose mean valence is compared to find where the tone turned.
TONE_WINDOW = 3
#: The smallest change of that mean valence that counts as a turn of tone.
TONE_TURN = 0.3
#: Words too common to be key phrases.
STOPWORDS = frozenset("""a about above after again all also am an and any are as at be because been before being
below between both but by can could did do does doing don't down during each few for from further had has have
having he her here hers him his how i i'd i'll i'm i've if in into is it it's its just let's me more most my no nor
not now of off ok okay on once only or other our ours out over own really right same she should so some such sure
than thank thanks that that's the their them then there these they this those through to too under until up us
very was we we'll we're we've were what when where which while who whom why will with would yeah yes you you'll
you're your yours get got go going know like make need one see think want well way yes hi hello good great fine
just let lot much okay something thing things time anything everything every everyone help today tomorrow
yesterday please also still already could would maybe actually really""".split())
_TOKENS = re.compile(r"[a-z][a-z'-]+")


def speaker_dynamics(records):
    """Per speaker: talk time and ratio, words per minute, turns, interruptions, dominant emotion."""
    talk = defaultdict(float)
    words = Counter()
    turns = Counter()
    interruptions = Counter()
    labels = defaultdict(Counter)
    valence = defaultdict(list)
    engagement = defaultdict(list)
    previous = None
    for r in records:
        talk[r.speaker] += r.t_end - r.t_start
        words[r.speaker] += r.words
        turns[r.speaker] += r.speaker != previous
        interruptions[r.speaker] += r.interrupted
        labels[r.speaker][r.label] += 1
        valence[r.speaker].append(r.valence)
        engagement[r.speaker].append(r.engagement)
        previous = r.speaker
    total = sum(talk.values()) or 1.0
    return {speaker: {
        "talk_time_s": round(talk[speaker], 2),
        "talk_ratio": round(talk[speaker] / total, 3),
        "words_per_minute": round(60.0 * words[speaker] / talk[speaker], 1) if talk[speaker] else 0.0,
        "turns": turns[speaker],
        "interruptions": interruptions[speaker],
        "dominant_emotion": _dominant(labels[speaker]),
        "mean_valence": round(sum(valence[speaker]) / len(valence[speaker]), 3),
        "mean_engagement": round(sum(engagement[speaker]) / len(engagement[speaker]), 3),
    } for speaker in talk}


def emotional_arc(records):
    """Mean valence and arousal over up to ARC_POINTS equal stretches of the conversation."""
    if not records:
        return []
    size = max(1, -(-len(records) // ARC_POINTS))
    arc = []
    for i in range(0, len(records), size):
        part = records[i:i + size]
        arc.append({"t_start": round(part[0].t_start, 2), "t_end": round(part[-1].t_end, 2),
                    "valence": round(sum(r.valence for r in part) / len(part), 3),
                    "arousal": round(sum(r.arousal for r in part) / len(part), 3),
                    "label": _dominant(Counter(r.label for r in part))})
    return arc


def key_phrases(records, limit=8):
    """Content words and word pairs said in at least two utterances, most frequent first."""
    seen = Counter()
    for r in records:
        tokens = _TOKENS.findall(r.text.lower().replace("’", "'"))
        grams = {t for t in tokens if t not in STOPWORDS and len(t) > 3}
        grams |= {f"{a} {b}" for a, b in zip(tokens, tokens[1:]) if a not in STOPWORDS and b not in STOPWORDS}
        seen.update(grams)
    ranked = sorted((g for g, n in seen.items() if n >= 2), key=lambda g: (-seen[g] * (1 + g.count(" ")), g))
    chosen = []
    for phrase in ranked:
        if not any(phrase in other or other in phrase for other in chosen):
            chosen.append(phrase)
        if len(chosen) == limit:
            break
    return chosen


def write(context, records, moments, transitions, final):
    """The SummaryUpdate for `records` (utterance records), `moments` and `transitions` so far."""
    dynamics = speaker_dynamics(records)
    by_category = dict(Counter(m.category for m in moments))
    arc = emotional_arc(records)
    duration = max((r.t_end for r in records), default=0.0)
    facts = _Facts(records, moments, dynamics, arc)
    return SummaryUpdate(
        overview=facts.overview(duration, context.goal), key_insights=facts.insights(),
        notable_patterns=facts.patterns(transitions), recommendations=facts.recommendations(),
        what_went_well=facts.went_well(), what_went_wrong=facts.went_wrong(),
        speaker_dynamics=dynamics, conversation_quality=facts.quality(), duration_s=round(duration, 2),
        emotional_arc=arc, moments_by_category=by_category, key_phrases=key_phrases(records),
        goal=context.goal, metadata=dict(context.metadata or {}), is_final=final)


class _Facts:
    """Derived facts shared by the summary's sections, each computed once."""

    def __init__(self, records, moments, dynamics, arc):
        self.records, self.moments, self.dynamics, self.arc = records, moments, dynamics, arc
        self.count = Counter(m.category for m in moments)
        self.index = {r.utterance_id: i for i, r in enumerate(records)}
        self.text = {r.utterance_id: r.text.strip() for r in records}
        self.unresolved = self._unresolved()
        self.resolved = self._resolved()
        self.unanswered = self._unanswered_questions()
        self.tone_turns = self._tone_turns()

    def said(self, moment, limit=90):
        """The words a moment quotes, shortened: its evidence when that is words said (a phrase's
        sentence), else the words of the finals it names. A moment read by meaning or by measure
        ends its evidence with how it was read ("(read as an objection, p=0.96)"), which a quote
        of what the speaker said must not carry."""
        words = " ".join(self.text[u] for u in moment.utterance_ids if u in self.text)
        return _short(moment.evidence if moment.evidence.strip() in words or not words else words, limit)

    def _unresolved(self):
        """Objections and escalations with no resolution after them."""
        open_items = []
        for m in self.moments:
            if m.category in ("objection", "escalation"):
                open_items.append(m)
            elif m.category == "resolution":
                open_items = []
        return open_items

    def _resolved(self):
        """(issue, resolution, the other side's words just before the resolution) for each resolved issue."""
        pairs, open_items = [], []
        for m in self.moments:
            if m.category in ("objection", "escalation"):
                open_items.append(m)
            elif m.category == "resolution" and open_items:
                answer = self._answer_before(m)
                pairs += [(issue, m, answer) for issue in open_items]
                open_items = []
        return pairs

    def _answer_before(self, moment):
        """The last utterance before `moment` by someone other than its speaker: how the issue was met."""
        start = self.index.get(moment.utterance_ids[0], len(self.records))
        for r in reversed(self.records[:start]):
            if r.speaker != moment.speaker:
                return r
        return None

    def _tone_turns(self):
        """(record, valence before, valence after) where the mean valence of TONE_WINDOW utterances moved most.

        The utterance at the turn must carry it: its own valence on the new side of zero and at
        least TONE_TURN past the mean before, or an objection, escalation or resolution of its own. At most two turns, each
        of at least TONE_TURN, not at neighbouring utterances.
        """
        values = [r.valence for r in self.records]
        issues = {u for m in self.moments if m.category in ("objection", "escalation", "resolution")
                  for u in m.utterance_ids}
        candidates = []
        for i in range(1, len(values)):
            before = sum(values[max(0, i - TONE_WINDOW):i]) / len(values[max(0, i - TONE_WINDOW):i])
            after = sum(values[i:i + TONE_WINDOW]) / len(values[i:i + TONE_WINDOW])
            direction = 1 if after > before else -1
            carried = ((values[i] - before) * direction >= TONE_TURN and values[i] * direction >= 0.1) \
                or self.records[i].utterance_id in issues
            if abs(after - before) >= TONE_TURN and carried:
                candidates.append((abs(after - before), i, before, after))
        chosen = []
        for _, i, before, after in sorted(candidates, reverse=True):
            if all(abs(i - j) > 1 for j, _, _ in chosen):
                chosen.append((i, before, after))
            if len(chosen) == 2:
                break
        return [(self.records[i], before, after) for i, before, after in sorted(chosen)]

    def turning_points(self):
        """Sentences naming what changed the tone and which issues were resolved and how."""
        points = []
        for record, before, after in self.tone_turns:
            moment = next((m for m in self.moments if record.utterance_id in m.utterance_ids
                           and m.category != "question"), None)
            what = f" ({_VERBS[moment.category]})" if moment else ""
            points.append(f"the tone {'rose' if after > before else 'fell'} at [{mmss(record.t_start)}] when "
                          f"{record.speaker} said \"{_short(record.text, 70)}\"{what} (mean valence {before:+.2f} "
                          f"to {after:+.2f})")
        by_resolution = {}
        for issue, resolution, answer in self.resolved:
            by_resolution.setdefault(resolution.moment_id, (resolution, answer, []))[2].append(issue)
        for resolution, answer, issues in by_resolution.values():
            kinds = Counter(i.category for i in issues)
            what = " and ".join(f"{n} {k}s" if n > 1 else k for k, n in kinds.items())
            when = ", ".join(f"[{mmss(i.start_ms / 1000)}]" for i in issues)
            first = self.said(issues[0], 60)
            how = f" after {answer.speaker} said \"{_short(answer.text, 70)}\"" if answer else ""
            points.append(f"{issues[0].speaker}'s {what} at {when} (\"{first}\") resolved at "
                          f"[{mmss(resolution.start_ms / 1000)}]{how}")
        return points

    def _unanswered_questions(self):
        """Questions that no other speaker spoke after."""
        later_speakers = {}
        for i, r in enumerate(self.records):
            later_speakers[r.utterance_id] = {x.speaker for x in self.records[i + 1:i + 3]} - {r.speaker}
        return [m for m in self.moments if m.category == "question"
                and not later_speakers.get(m.utterance_ids[0], {None})]

    def overview(self, duration, goal):
        if not self.records:
            return "No speech has been analysed yet."
        speakers = sorted(self.dynamics, key=lambda s: -self.dynamics[s]["talk_ratio"])
        lead = speakers[0]
        counts = ", ".join(f"{n} {c.replace('_', ' ')}{'s' if n > 1 else ''}" for c, n in sorted(self.count.items()))
        tone = f"tone {_tone(self.arc[0])}" + (f" at the start, {_tone(self.arc[-1])} at the end"
                                               if len(self.arc) > 1 else "")
        turns = self.turning_points()
        turning = f" Turning points: {'; '.join(turns)}." if turns else " No turning point: the tone held."
        focus = f" Goal: {goal}." if goal else ""
        return (f"{mmss(duration)} of conversation between {len(speakers)} speaker{'s' if len(speakers) > 1 else ''} "
                f"over {len(self.records)} utterances; {lead} talked {self.dynamics[lead]['talk_ratio']:.0%} of the time. "
                f"Moments: {counts or 'none detected'}; {tone}.{turning}{focus}")

    def insights(self):
        order = ("escalation", "objection", "resolution", "cta_commit", "topic_shift", "question")
        ranked = sorted(self.moments, key=lambda m: (order.index(m.category), m.start_ms))[:10]
        return [f"[{mmss(m.start_ms / 1000)}] {m.speaker} {_VERBS[m.category]}: \"{self.said(m)}\""
                for m in sorted(ranked, key=lambda m: m.start_ms)]

    def patterns(self, transitions):
        found = []
        for speaker, d in self.dynamics.items():
            if len(self.dynamics) > 1 and d["talk_ratio"] >= 0.65:
                found.append(f"{speaker} dominated the talk time ({d['talk_ratio']:.0%}).")
            if d["interruptions"]:
                found.append(f"{speaker} interrupted {d['interruptions']} time(s).")
        loads = [r for r in self.records if r.cognitive_load >= 0.6]
        if loads:
            found.append(f"High cognitive load in {len(loads)} utterance(s), first at [{mmss(loads[0].t_start)}] by {loads[0].speaker}.")
        if len(self.arc) > 1:
            shift = self.arc[-1]["valence"] - self.arc[0]["valence"]
            if abs(shift) >= 0.2:
                found.append(f"Valence {'rose' if shift > 0 else 'fell'} by {abs(shift):.2f} from start to end.")
        for t in transitions[:5]:
            found.append(f"[{mmss(t.at_ms / 1000)}] {t.speaker} went from {t.from_state['label']} to {t.to_state['label']}.")
        if self.count.get("question", 0) >= 3:
            askers = Counter(m.speaker for m in self.moments if m.category == "question")
            who, n = askers.most_common(1)[0]
            found.append(f"{who} asked {n} of the {self.count['question']} questions.")
        return found

    def recommendations(self):
        found = []
        for m in self.unresolved:
            kind = "objection" if m.category == "objection" else "escalation"
            found.append(f"Follow up on the unresolved {kind} at [{mmss(m.start_ms / 1000)}]: \"{self.said(m)}\"")
        for m in self.unanswered[:3]:
            found.append(f"Answer the open question at [{mmss(m.start_ms / 1000)}]: \"{self.said(m)}\"")
        if self.records and not self.count.get("cta_commit") and len(self.records) >= 8:
            found.append(f"No commitment or next step in {len(self.records)} utterances: close with a concrete "
                         "action and date.")
        for record, before, after in self.tone_turns:
            if after < before and after < -0.2 and not any(r.start_ms / 1000 >= record.t_start
                                                           for _, r, _ in self.resolved):
                found.append(f"Revisit what soured the tone at [{mmss(record.t_start)}]: {record.speaker} said "
                             f"\"{_short(record.text, 70)}\" (mean valence {before:+.2f} to {after:+.2f}) and "
                             "nothing resolved it later.")
        for speaker, d in self.dynamics.items():
            if len(self.dynamics) > 1 and d["talk_ratio"] >= 0.7:
                found.append(f"{speaker} held {d['talk_ratio']:.0%} of the talk time: leave more room for the other side.")
        return found

    def went_well(self):
        found = [f"[{mmss(m.start_ms / 1000)}] {_VERBS[m.category]}: \"{self.said(m)}\""
                 for m in self.moments if m.category in ("resolution", "cta_commit")]
        answered = {}
        for issue, resolution, answer in self.resolved:
            answered.setdefault(resolution.moment_id, (issue, answer))
        found += [f"The {issue.category} at [{mmss(issue.start_ms / 1000)}] was resolved"
                  + (f" by {answer.speaker}'s answer: \"{_short(answer.text, 70)}\"" if answer else "")
                  for issue, answer in answered.values()]
        if len(self.arc) > 1 and self.arc[-1]["valence"] > max(self.arc[0]["valence"], 0.1):
            found.append(f"The conversation ended more positive than it began (valence {self.arc[0]['valence']:+.2f} to {self.arc[-1]['valence']:+.2f}).")
        engaged = [s for s, d in self.dynamics.items() if d["mean_engagement"] >= 0.6]
        if engaged:
            found.append(f"High engagement from {', '.join(engaged)}.")
        return found

    def went_wrong(self):
        found = [f"[{mmss(m.start_ms / 1000)}] {_VERBS[m.category]}, not resolved: \"{self.said(m)}\""
                 for m in self.unresolved]
        if len(self.arc) > 1 and self.arc[-1]["valence"] < min(self.arc[0]["valence"], -0.1):
            found.append(f"The conversation ended more negative than it began (valence {self.arc[0]['valence']:+.2f} to {self.arc[-1]['valence']:+.2f}).")
        interrupters = [s for s, d in self.dynamics.items() if d["interruptions"]]
        if interrupters:
            found.append(f"Interruptions by {', '.join(interrupters)}.")
        return found

    def quality(self):
        """excellent / good / fair / poor, from outcomes and tone."""
        if not self.records:
            return "unknown"
        mean_valence = sum(r.valence for r in self.records) / len(self.records)
        score = (0.5 + 0.15 * min(self.count.get("cta_commit", 0), 2) + 0.1 * min(self.count.get("resolution", 0), 2)
                 - 0.15 * len(self.unresolved) - 0.1 * self.count.get("escalation", 0) + 0.3 * mean_valence)
        return "excellent" if score >= 0.85 else "good" if score >= 0.6 else "fair" if score >= 0.35 else "poor"


_VERBS = {"question": "asked", "objection": "objected", "cta_commit": "committed to a next step",
          "topic_shift": "changed the topic", "escalation": "escalated", "resolution": "resolved the issue"}


def _tone(point):
    """'positive (+0.42, joy)' for an emotional-arc point: valence sign, value and its dominant emotion."""
    v = point["valence"]
    word = "positive" if v > 0.15 else "negative" if v < -0.15 else "neutral"
    label = f", mostly {point['label']}" if point["label"] != "neutral" else ""
    return f"{word} ({v:+.2f}{label})"


def _short(text, limit=90):
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1].rsplit(" ", 1)[0] + "…"


def _dominant(counter):
    """The most frequent label, preferring a non-neutral one when it is at least half as frequent."""
    if not counter:
        return "neutral"
    top, n = counter.most_common(1)[0]
    others = [(label, k) for label, k in counter.most_common() if label != "neutral"]
    if top == "neutral" and others and others[0][1] * 2 >= n:
        return others[0][0]
    return top

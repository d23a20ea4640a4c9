"""One session's analytics: runs each analyser on every final utterance and keeps what the summary needs."""
import math
import time
from collections import defaultdict
from dataclasses import dataclass

from client.events import Moment

from . import cognitive, emotion, head, lexical, prosody, scores, stance, summary, topics
from .baseline import speaker_norms
from .moments import MomentRules, TurnText
from .states import StateTracker
from .topics import TopicTracker

#: An utterance that starts this long before the other speaker's last one ended is an interruption.
OVERLAP_S = 0.2


@dataclass
class Record:
    """What the summary keeps of one analysed utterance."""

    utterance_id: str
    speaker: str
    t_start: float
    t_end: float
    text: str
    words: int
    valence: float
    arousal: float
    label: str
    engagement: float
    cognitive_load: float
    interrupted: bool


class ConversationAnalytics:
    """Turns each final utterance into emotion, cognitive, transition and moment events for one session."""

    def __init__(self, context, models):
        self.context = context
        self.models = models
        self.norms = defaultdict(speaker_norms)
        self.states = StateTracker()
        self.rules = MomentRules(models.moment_head)
        self.turn = TurnText()
        self.topics = TopicTracker()
        self.records = []
        self.moments = []
        self.transitions = []
        self.previous_embedding = None
        #: CPU seconds spent in each analyser over the session (read by bench/analytics.py).
        self.cpu_s = defaultdict(float)

    def on_final(self, utterance):
        """Emotion, Cognitive, then any Transition and Moment events for one final utterance."""
        timed = _CpuTimer(self.cpu_s)
        measured = timed("prosody", prosody.measure, utterance)
        words = timed("lexical", lexical.read, utterance.text, self.models.vader)
        norms = self.norms[utterance.speaker]
        z = timed("baseline", _zscores, norms, measured)
        baseline_n = norms["loudness_db"].n
        embedding = None
        if words.words:
            embedding = timed("embedding", self.models.encoder.encode, utterance.text)
        text_probs = emotion.NO_WORDS
        if embedding is not None:
            text_probs = timed("emotion", self.models.emotion_head.probabilities,
                               head.features(embedding, words.polarity))
        said = timed("lexical", scores.read, utterance.text, self.models.vader, words)
        feeling = timed("emotion", emotion.analyse, utterance, measured, z, words, baseline_n, text_probs, said)
        # Shorter utterances ("Okay, fair enough.") say too little to compare with the topic or the thread.
        substantive = embedding if words.words >= topics.MIN_WORDS else None
        relevance = None
        if substantive is not None and self.previous_embedding is not None:
            relevance = float(substantive @ self.previous_embedding)
        previous = self.records[-1] if self.records else None
        latency = None
        if previous is not None and previous.speaker != utterance.speaker:
            latency = utterance.t_start - previous.t_end
        interrupted = latency is not None and latency < -OVERLAP_S
        mind = timed("cognitive", cognitive.analyse, utterance, measured, words,
                     feeling.scores["arousal"], z["speech_rate"], latency, relevance)
        transition = timed("transitions", self.states.update, utterance, feeling, mind)
        judged, earlier = self.turn.take(utterance, emotion.words_valence(words), feeling.scores["arousal"], interrupted)
        found = []
        for part in (earlier, judged):  # another speaker's unfinished sentence first: it was said first
            if part is not None:
                found += self._moments(part, utterance, embedding, words)
        shift = None
        if substantive is not None:
            shift = timed("topics", self.topics.update, utterance, substantive)
            self.previous_embedding = substantive
        if shift:
            found.append(("topic_shift", shift.confidence, shift.evidence, [shift.utterance]))
        timed("baseline", _fold, norms, measured)
        events = [feeling, mind]
        if transition:
            self.transitions.append(transition)
            events.append(transition)
        events += [self._moment(*item) for item in found]
        self.records.append(Record(
            utterance_id=utterance.utterance_id, speaker=utterance.speaker, t_start=utterance.t_start,
            t_end=utterance.t_end, text=utterance.text, words=words.words,
            valence=feeling.scores["valence"], arousal=feeling.scores["arousal"], label=feeling.label,
            engagement=mind.engagement, cognitive_load=mind.cognitive_load, interrupted=interrupted))
        return events

    def finish(self):
        """The Moment events of a sentence the session's last final left unfinished, judged now.

        A final without closing punctuation waits for its speaker's next final; at the end of
        the session none will come, so the kept words are judged as they are. Call it once the
        last final has been analysed, before the final summary; a second call returns [].
        """
        pending = self.turn.flush()
        if pending is None:
            return []
        return [self._moment(*item) for item in self._moments(pending, None, None, None)]

    def summary(self, final):
        """The ConversationSummary of everything analysed so far.

        The final one first judges a sentence still unfinished (`finish`), so its moments are
        counted even where the caller did not send them as events.
        """
        timed = _CpuTimer(self.cpu_s)
        if final:
            self.finish()
        return timed("summary", summary.write, self.context, self.records, self.moments,
                     self.transitions, final)

    def _moments(self, judged, utterance, embedding, words):
        """[(category, confidence, evidence, utterances)] of one judged text, by phrase and by meaning.

        The embedding and VADER scores of `utterance` (the final just analysed) are reused when
        the text is that final's alone; the stance skeleton is always embedded here.
        """
        timed = _CpuTimer(self.cpu_s)
        meaning = None
        if judged.text:
            if len(judged.utterances) == 1 and judged.utterances[0] is utterance and embedding is not None:
                polarity = words.polarity
            else:
                embedding = timed("embedding", self.models.encoder.encode, judged.text)
                polarity = timed("lexical", self.models.vader.polarity_scores, judged.text)
            skeleton = timed("embedding", self.models.encoder.encode,
                             stance.skeleton(judged.text, self.models.vader.lexicon))
            meaning = timed("moments", self.models.moment_head.probabilities,
                            head.features(embedding, polarity, skeleton))
        found = timed("moments", self.rules.detect, judged, meaning)
        return [(category, confidence, evidence, judged.utterances) for category, confidence, evidence in found]

    def _moment(self, category, confidence, evidence, utterances):
        """A Moment over `utterances` (the finals its evidence spans), recorded for the summary."""
        first, last = utterances[0], utterances[-1]
        moment = Moment(moment_id=f"m_{len(self.moments) + 1:04d}", category=category, confidence=confidence,
                        speaker=last.speaker, start_ms=int(round(first.t_start * 1000)),
                        end_ms=int(round(last.t_end * 1000)), utterance_ids=[u.utterance_id for u in utterances],
                        evidence=evidence)
        self.moments.append(moment)
        return moment


def _cues(measured):
    """The prosodic cues the speaker norms follow; pitch in semitones re 100 Hz so spreads compare."""
    pitch_st = None if measured.pitch_median_hz is None else 12 * math.log2(measured.pitch_median_hz / 100.0)
    return {"loudness_db": measured.loudness_db, "pitch_st": pitch_st,
            "pitch_range_st": measured.pitch_range_st, "speech_rate": measured.speech_rate_syl_s}


def _zscores(norms, measured):
    return {name: norms[name].z(value) for name, value in _cues(measured).items()}


def _fold(norms, measured):
    for name, value in _cues(measured).items():
        norms[name].add(value)


class _CpuTimer:
    """Calls a function and adds the CPU time it took to the named analyser's total.

    The process's CPU time, not the thread's: CTranslate2 runs MiniLM on threads of its own
    while the calling thread waits, and a worker does nothing else meanwhile.
    """

    def __init__(self, totals):
        self.totals = totals

    def __call__(self, name, fn, *args):
        start = time.process_time()
        try:
            return fn(*args)
        finally:
            self.totals[name] += time.process_time() - start

"""Key moments of a speaker's turn, read from its words, their meaning and the measured affect.

A live speaker's turn reaches the analytics as several finals, early commits cutting it
mid-sentence ("Could you send me a" / "proposal by Friday?"). `TurnText` keeps the end of a
final that has no closing punctuation and judges it with the same speaker's next final, so a
sentence is judged whole and the moment's evidence is never cut; the moment names every final
the sentence spans.

Each category is found by phrase (`phrases.py`, chosen for precision: a false objection costs
more than a missed one) and objection, escalation and resolution also by meaning: the moment
head (`head.py`: a hidden layer and a softmax over the MiniLM embeddings of the text and of its
stance skeleton, fitted by bench/train_heads.py on the tuning sentences) counts when its
probability reaches the threshold fitted for that label. Both are gated by the conversation so
far: an acceptance ("that makes sense") counts only while an objection or escalation is open, a
resolution read by meaning only from a speaker whose own objection or escalation is open, or
one of whose turns the head read as an issue with less confidence than it takes to report one
while no other speaker's issue is reported open (who raised an issue is who accepts its answer;
the other side's answer is not its resolution; an objection missed must not hide its
resolution), an objection must not be phrased as a question (a seller probing, not a buyer
objecting), an objection or escalation must not read as positive. Valence here is the words'
alone (`emotion.words_valence`: VADER with the complaint cues), not the emotion event's, half of
which is the emotion head's: a head refitted for emotion must not move the moments. Topic shifts
need the embedding window and live in `topics.py`.
"""
import re
from dataclasses import dataclass, field

from .cognitive import questions
from .phrases import ACCEPTED, CTA_COMMIT, ESCALATION, OBJECTION, SOLVED

#: Utterances shorter than this are backchannels ("Right?", "Okay?"), not questions.
MIN_QUESTION_WORDS = 3
#: An unfinished sentence carried to the speaker's next final keeps at most this many words.
MAX_CARRIED_WORDS = 40
#: Valence above which an objection or escalation read by meaning is not believed.
MEANING_MAX_VALENCE = 0.1
#: The moment head's objection or escalation probability at which a turn, though not reported as one,
#: is evidence enough that its speaker has an issue another turn may resolve.
ISSUE_EVIDENCE = 0.5
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


@dataclass
class Judged:
    """The text one judgement reads: the carried unfinished sentence (if any) and this final's text."""

    text: str
    utterances: list  # the finals the text spans, oldest first
    valence: float  # mean words' valence (emotion.words_valence) of those finals
    arousal: float  # the last final's arousal
    interrupted: bool  # whether the first final cut the other speaker off


@dataclass
class TurnText:
    """The unfinished end of a speaker's last final, waiting for the words that complete it."""

    speaker: str = None
    text: str = ""
    utterances: list = field(default_factory=list)
    valences: list = field(default_factory=list)
    arousal: float = 0.0
    interrupted: bool = False

    def take(self, utterance, valence, arousal, interrupted):
        """(Judged text now, or None while the sentence is unfinished; the other speaker's pending text, or None).

        A final that ends a sentence is judged at once, with the unfinished sentence before it
        from the same speaker. A final that does not is kept; it is judged with the same
        speaker's next final, or alone as soon as another speaker talks.
        """
        flushed = None
        if self.text and self.speaker != utterance.speaker:
            flushed = self.flush()
        self.speaker = utterance.speaker
        self.interrupted = interrupted if not self.utterances else self.interrupted
        self.arousal = arousal
        self.text = f"{self.text} {utterance.text.strip()}".strip()
        self.utterances.append(utterance)
        self.valences.append(valence)
        if _SENTENCE_END.search(self.text) or not self.text:
            return self.flush(), flushed
        words = self.text.split()
        if len(words) > MAX_CARRIED_WORDS:  # a speaker who never closes a sentence: judge what we have
            return self.flush(), flushed
        return None, flushed

    def flush(self):
        """The pending text as a Judged, and forget it (None if nothing is pending)."""
        if not self.utterances:
            return None
        judged = Judged(self.text, self.utterances, sum(self.valences) / len(self.valences), self.arousal,
                        self.interrupted)
        self.text, self.utterances, self.valences = "", [], []
        return judged


class MomentRules:
    """Finds the moments of each judged text, remembering what is still open."""

    def __init__(self, head=None):
        self.head = head  # the moment head (objection/escalation/resolution by meaning), or None: phrases only
        self.open_issues = []  # (category, utterance_id, speaker) of objections/escalations not yet resolved
        self.doubting = set()  # speakers of turns that read as an issue below its reporting threshold, not yet resolved
        self.last_arousal = {}

    def detect(self, judged, meaning=None):
        """[(category, confidence, evidence)] for a Judged text, in catalog order.

        `meaning` is the moment head's {label: probability} for the text (None: phrases only).
        """
        text, valence, arousal, interrupted = judged.text, judged.valence, judged.arousal, judged.interrupted
        speaker = judged.utterances[-1].speaker
        meaning = meaning or {}
        asked = [q for q in questions(text) if len(q.split()) >= MIN_QUESTION_WORDS]
        found = []
        if asked:
            found.append(("question", 0.9 if asked[0].endswith("?") else 0.7, asked[0]))
        objection = self._objection(text, valence, meaning)
        if objection:
            found.append(objection)
        commit = CTA_COMMIT.search(text)
        if commit and valence > -0.3:
            found.append(("cta_commit", 0.8, _sentence(text, commit)))
        escalation = self._escalation(speaker, text, valence, arousal, interrupted, meaning)
        if escalation:
            found.append(escalation)
        if not escalation and not objection and valence >= 0.0:
            resolution = self._resolution(speaker, text, valence, meaning)
            if resolution:
                found.append(resolution)
                self.open_issues.clear()
                self.doubting.clear()
        self.open_issues += [(category, judged.utterances[-1].utterance_id, speaker) for category, _, _ in found
                             if category in ("objection", "escalation")]
        if valence < MEANING_MAX_VALENCE and max(meaning.get("objection", 0.0), meaning.get("escalation", 0.0)) >= \
                ISSUE_EVIDENCE:
            self.doubting.add(speaker)
        self.last_arousal[speaker] = arousal
        return found

    def _objection(self, text, valence, meaning):
        match = OBJECTION.search(text)
        if match and not _inside_question(match, text):
            return ("objection", round(0.75 + 0.2 * max(-valence, 0.0), 3), _sentence(text, match))
        p = self._meant("objection", meaning)
        if p and valence < MEANING_MAX_VALENCE and not text.rstrip().endswith("?"):
            return ("objection", round(p, 3), f"{text.strip()} (read as an objection, p={p:.2f})")
        return None

    def _escalation(self, speaker, text, valence, arousal, interrupted, meaning):
        """Escalation words or meaning without positive valence, or arousal climbing while valence is clearly negative."""
        match = ESCALATION.search(text)
        if match and valence < 0.1:
            return ("escalation", round(0.8 + 0.15 * min(max(-valence, 0.0), 1.0), 3), _sentence(text, match))
        p = self._meant("escalation", meaning)
        if p and valence < MEANING_MAX_VALENCE:
            return ("escalation", round(p, 3), f"{text.strip()} (read as an escalation, p={p:.2f})")
        previous = self.last_arousal.get(speaker)
        rising = previous is not None and arousal - previous >= 0.25 and arousal > 0.3
        if valence < -0.5 and (rising or interrupted):
            why = "interrupting" if interrupted else f"arousal {previous:+.2f} to {arousal:+.2f}"
            return ("escalation", 0.7, f"{text.strip()} ({why}, words' valence {valence:+.2f})")
        return None

    def _resolution(self, speaker, text, valence, meaning):
        """A problem reported solved; an acceptance while an issue is open; by meaning, from the issue's speaker."""
        match = SOLVED.search(text) or (self.open_issues and ACCEPTED.search(text))
        if match:
            return ("resolution", round(0.7 + 0.25 * valence, 3), _sentence(text, match))
        p = self._meant("resolution", meaning)
        owners = {owner for _, _, owner in self.open_issues}
        if p and (speaker in owners or (speaker in self.doubting and not owners - {speaker})):
            return ("resolution", round(p, 3), f"{text.strip()} (read as a resolution, p={p:.2f})")
        return None

    def _meant(self, label, meaning):
        """The head's probability for `label` if it reaches the label's threshold, else None."""
        p = meaning.get(label, 0.0)
        return p if self.head is not None and p >= self.head.thresholds[label] else None


def _sentence(text, match):
    """The sentence of `text` that holds the match: the words that triggered the moment."""
    start = max(text.rfind(mark, 0, match.start()) for mark in ".!?") + 1
    ends = [i for i in (text.find(mark, match.end()) for mark in ".!?") if i >= 0]
    return text[start:(min(ends) + 1 if ends else len(text))].strip()


def _inside_question(match, text):
    return _sentence(text, match).endswith("?")

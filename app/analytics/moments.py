"""Key moments read from the words and the measured affect: question, objection, cta_commit, escalation, resolution.

Each category is a set of phrase patterns (`phrases.py`) chosen for precision (a false
objection costs more than a missed one), some gated by the conversation so far: an
acceptance ("that makes sense") is a resolution only while an objection or escalation is
open, an objection must not be phrased as a question (that is a seller probing, not a buyer
objecting), an escalation must not read as positive. Topic shifts need embeddings and live
in `topics.py`.
"""
from .cognitive import questions
from .phrases import ACCEPTED, CTA_COMMIT, ESCALATION, OBJECTION, SOLVED

#: Utterances shorter than this are backchannels ("Right?", "Okay?"), not questions.
MIN_QUESTION_WORDS = 3


class MomentRules:
    """Finds the lexical moments of each utterance, remembering what is still open."""

    def __init__(self):
        self.open_issues = []  # (category, utterance_id) of objections/escalations not yet resolved
        self.last_arousal = {}

    def detect(self, utterance, emotion, interrupted):
        """[(category, confidence, evidence)] for this utterance, in catalog order."""
        text = utterance.text
        valence, arousal = emotion.scores["valence"], emotion.scores["arousal"]
        asked = [q for q in questions(text) if len(q.split()) >= MIN_QUESTION_WORDS]
        found = []
        if asked:
            found.append(("question", 0.9 if asked[0].endswith("?") else 0.7, asked[0]))
        objection = OBJECTION.search(text)
        if objection and not _inside_question(objection, text):
            found.append(("objection", round(0.75 + 0.2 * max(-valence, 0.0), 3), _sentence(text, objection)))
        commit = CTA_COMMIT.search(text)
        if commit and valence > -0.3:
            found.append(("cta_commit", 0.8, _sentence(text, commit)))
        escalation = self._escalation(utterance, text, valence, arousal, interrupted)
        if escalation:
            found.append(escalation)
        resolution = SOLVED.search(text) or (self.open_issues and ACCEPTED.search(text))
        if resolution and valence >= 0.0 and not escalation and not objection:
            found.append(("resolution", round(0.7 + 0.25 * valence, 3), _sentence(text, resolution)))
            self.open_issues.clear()
        self.open_issues += [(category, utterance.utterance_id) for category, _, _ in found
                             if category in ("objection", "escalation")]
        self.last_arousal[utterance.speaker] = arousal
        return found

    def _escalation(self, utterance, text, valence, arousal, interrupted):
        """Escalation words without positive valence, or arousal climbing while valence is clearly negative."""
        match = ESCALATION.search(text)
        if match and valence < 0.1:
            return ("escalation", round(0.8 + 0.15 * min(max(-valence, 0.0), 1.0), 3), _sentence(text, match))
        previous = self.last_arousal.get(utterance.speaker)
        rising = previous is not None and arousal - previous >= 0.25 and arousal > 0.3
        if valence < -0.5 and (rising or interrupted):
            why = "interrupting" if interrupted else f"arousal {previous:+.2f} to {arousal:+.2f}"
            return ("escalation", 0.7, f"{text.strip()} ({why}, valence {valence:+.2f})")
        return None


def _sentence(text, match):
    """The sentence of `text` that holds the match: the words that triggered the moment."""
    start = max(text.rfind(mark, 0, match.start()) for mark in ".!?") + 1
    ends = [i for i in (text.find(mark, match.end()) for mark in ".!?") if i >= 0]
    return text[start:(min(ends) + 1 if ends else len(text))].strip()


def _inside_question(match, text):
    return _sentence(text, match).endswith("?")

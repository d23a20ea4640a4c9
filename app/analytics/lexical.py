"""What the words say about affect: VADER valence plus counted arousal, dominance and complaint cues."""
import re
from dataclasses import dataclass

from .features import RoundedFeatures, clip
from .phrases import COMPLAINT, ESCALATION, OBJECTION

#: Valence of an utterance that voices an objection, escalation or complaint VADER reads as neutral.
COMPLAINT_VALENCE = -0.35
#: Words that raise the energy of an utterance whatever its polarity (intensifiers, alarm, urgency).
AROUSAL_WORDS = frozenset("""
absolutely amazing angry asap awful furious immediately incredible love never now outrageous
ridiculous seriously terrible totally unacceptable urgent urgently wow excited thrilled hate
fantastic disaster shocking worst best awesome""".split())
#: Words that lower it (calm, tired, tentative).
CALM_WORDS = frozenset("""calm fine okay ok alright tired slowly quiet relaxed whatever gently""".split())
#: Hedges: the speaker yields control (low dominance). Matched as phrases.
HEDGES = ("maybe", "perhaps", "i guess", "i think", "not sure", "i'm not sure", "might", "kind of",
          "sort of", "i don't know", "possibly", "i suppose", "sorry", "could you", "would you mind")
#: Assertions: the speaker takes control (high dominance). Matched as phrases.
ASSERTIONS = ("i need", "i want", "you need to", "you have to", "must", "we will", "i will",
              "i demand", "definitely", "certainly", "no way", "make sure", "right now", "i expect")

_TOKENS = re.compile(r"[a-z']+")


@dataclass
class Lexical(RoundedFeatures):
    """Text cues of one utterance; valence/arousal/dominance in [-1, 1]."""

    valence: float  # VADER compound score, pulled negative by complaint cues
    vader: float  # VADER compound score as VADER gives it
    positive: float  # VADER's share of positive, negative and neutral tokens
    negative: float
    neutral: float
    arousal: float
    dominance: float
    exclamations: int
    hedges: int
    assertions: int
    arousal_words: list
    complaints: list  # the objection, escalation or complaint phrases found
    words: int

    @property
    def polarity(self):
        """VADER's scores under VADER's own names, as the classifier heads read them."""
        return {"compound": self.vader, "pos": self.positive, "neg": self.negative, "neu": self.neutral}


def read(text, vader):
    """Score `text` with the VADER analyser `vader` and the cue lists above."""
    polarity = vader.polarity_scores(text)
    lowered = text.lower().replace("’", "'")
    tokens = _TOKENS.findall(lowered)
    padded = " " + " ".join(tokens) + " "
    hot = [t for t in tokens if t in AROUSAL_WORDS]
    calm = sum(t in CALM_WORDS for t in tokens)
    exclamations = text.count("!")
    hedges = sum(padded.count(f" {h} ") for h in HEDGES)
    assertions = sum(padded.count(f" {a} ") for a in ASSERTIONS)
    escalations = [m.group(0) for m in ESCALATION.finditer(text)]
    complaints = [m.group(0) for pattern in (OBJECTION, COMPLAINT) for m in pattern.finditer(text)] + escalations
    valence = polarity["compound"]
    if complaints:
        # VADER's general lexicon does not know that "third time" or "I'm worried that" complain.
        valence = min(valence, 0.0) + COMPLAINT_VALENCE * min(len(complaints), 2)
    # Strong polarity of either sign carries energy (VADER's compound saturates, hence the 0.4),
    # and so does escalating language ("third time", "speak to a manager").
    arousal = (0.4 * abs(polarity["compound"]) + 0.25 * (len(hot) + len(escalations)) + 0.2 * exclamations
               - 0.2 * calm - 0.15)
    dominance = 0.2 * assertions - 0.2 * hedges + 0.1 * exclamations - ("?" in text) * 0.1
    return Lexical(valence=clip(valence), vader=polarity["compound"], positive=polarity["pos"],
                   negative=polarity["neg"], neutral=polarity["neu"], arousal=clip(arousal), dominance=clip(dominance), exclamations=exclamations,
                   hedges=hedges, assertions=assertions, arousal_words=hot, complaints=complaints,
                   words=len(tokens))

"""Per-utterance text scores the reference exposes: sentiment polarity and subjectivity, commitment,
passion and conviction (each a score in [0, 1] and a level), with the lexical markers behind them.

A pure function of the text and VADER (`read`), so a whole-file analysis can call it on any
utterance; the live path puts its result in the `emotion` event's `features.text_scores`.
Every score is a count of named markers turned into a number by the formula in its docstring,
and the markers are returned, so a reader can check each one. The marker lists come from
maintained resources where there is one (VADER's lexicon for sentiment words, VADER's booster
list for intensifiers) and from `lexical.py` / `phrases.py` for hedges, assertions and
commitments; the few lists added here are short and named below.
"""
import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import BOOSTER_DICT

from . import lexical
from .features import RoundedFeatures
from .lexical import AROUSAL_WORDS, ASSERTIONS, HEDGES
from .phrases import CTA_COMMIT

#: The speaker voicing a stance of their own (subjective, not reported fact).
STANCE = ("i think", "i feel", "i believe", "in my opinion", "honestly", "frankly", "to be honest",
          "i love", "i hate", "personally", "i'm convinced", "for me")
#: Certainty: the speaker leaves no room for doubt.
CERTAINTY = ("definitely", "certainly", "clearly", "absolutely", "without a doubt", "i'm sure", "i'm certain",
             "no doubt", "obviously", "of course", "for sure", "guaranteed")
#: Promises that are more than a plan.
PROMISES = ("i promise", "we promise", "i guarantee", "we guarantee", "you can count on", "i'll make sure",
            "we'll make sure", "i commit", "we commit")
#: Plans that are not quite commitments.
WEAK = ("i'll try", "we'll try", "we'll see", "hopefully", "probably", "if we can", "if i can", "maybe",
        "might", "possibly", "at some point")
#: A concrete time makes a commitment firmer.
TIME_ANCHOR = re.compile(
    r"\b(today|tonight|tomorrow|this (morning|afternoon|evening|week)|next (week|month|monday|tuesday|wednesday|"
    r"thursday|friday)|by (monday|tuesday|wednesday|thursday|friday|end of (day|week))|on (monday|tuesday|"
    r"wednesday|thursday|friday)|right (now|away)|within (the|an|a) (hour|day|week))\b", re.IGNORECASE)
#: VADER's recommended cut-offs for its compound score.
POLARITY_CUTOFF = 0.05
_TOKENS = re.compile(r"[a-z']+")


@dataclass
class TextScores(RoundedFeatures):
    """The scores of one utterance's words, each in [0, 1] (polarity in [-1, 1]) with a level, and their markers."""

    polarity: float
    polarity_label: str  # positive / negative / neutral
    subjectivity: float
    subjectivity_level: str
    commitment: float
    commitment_level: str
    passion: float
    passion_level: str
    conviction: float
    conviction_level: str
    markers: dict


def level(score):
    """low / medium / high in thirds of [0, 1]."""
    return "low" if score < 1 / 3 else "medium" if score < 2 / 3 else "high"


def read(text, vader, words=None):
    """The TextScores of `text`, with VADER's analyser `vader`; `words` is its `lexical.read` if already made.

    - polarity: the words' valence of `lexical.py` (VADER's compound score, pulled negative by
      objection, escalation and complaint phrases VADER does not know); positive/negative beyond ±0.05.
    - subjectivity: evaluative words (VADER's lexicon), stance markers, intensifiers and hedges
      per quarter of the words, capped at 1: 1 when a quarter of the words evaluate.
    - commitment: 0.6 for a commitment (first-person future with an action verb, "let's …",
      a request to act) or a promise, 0.2 per further one, 0.1 per assertion, 0.15 if it names
      a time, −0.25 per weak plan ("I'll try", "hopefully").
    - passion: |compound| (when an evaluative word is there) × 0.5, plus 0.15 per intensifier,
      high-energy word and "!".
    - conviction: 0.5 for a plain statement, +0.15 per certainty marker, +0.1 per assertion,
      −0.15 per hedge and per question.
    """
    lowered = text.lower().replace("’", "'")
    tokens = _TOKENS.findall(lowered)
    padded = " " + " ".join(tokens) + " "
    words_read = words or lexical.read(text, vader)
    compound = words_read.vader
    found = {
        "sentiment_words": [t for t in tokens if vader.lexicon.get(t, 0.0) != 0.0],
        "stance": _phrases(padded, STANCE),
        "intensifiers": [t for t in tokens if t in BOOSTER_DICT],
        "high_energy_words": [t for t in tokens if t in AROUSAL_WORDS],
        "hedges": _phrases(padded, HEDGES),
        "assertions": _phrases(padded, ASSERTIONS),
        "certainty": _phrases(padded, CERTAINTY),
        "commitments": [m.group(0) for m in CTA_COMMIT.finditer(text)] + _phrases(padded, PROMISES),
        "weak_commitments": _phrases(padded, WEAK),
        "time_anchors": [m.group(0) for m in TIME_ANCHOR.finditer(text)],
        "exclamations": text.count("!"),
        "questions": text.count("?"),
        "complaints": list(words_read.complaints),
    }
    n = len(tokens)
    evaluative = (len(found["sentiment_words"]) + len(found["stance"]) + len(found["intensifiers"])
                  + len(found["hedges"]))
    subjectivity = min(1.0, evaluative / (0.25 * n)) if n else 0.0
    commits = len(found["commitments"])
    commitment = _unit((0.6 if commits else 0.0) + 0.2 * max(commits - 1, 0) + 0.1 * len(found["assertions"])
                       + (0.15 if commits and found["time_anchors"] else 0.0) - 0.25 * len(found["weak_commitments"]))
    passion = _unit(0.5 * abs(compound) * bool(found["sentiment_words"]) + 0.15 * (
        len(found["intensifiers"]) + len(found["high_energy_words"]) + found["exclamations"]))
    conviction = _unit((0.5 if n else 0.0) + 0.15 * len(found["certainty"]) + 0.1 * len(found["assertions"])
                       - 0.15 * (len(found["hedges"]) + found["questions"]))
    polarity = words_read.valence
    return TextScores(
        polarity=polarity,
        polarity_label="positive" if polarity > POLARITY_CUTOFF else "negative" if polarity < -POLARITY_CUTOFF
        else "neutral",
        subjectivity=subjectivity, subjectivity_level=level(subjectivity),
        commitment=commitment, commitment_level=level(commitment),
        passion=passion, passion_level=level(passion),
        conviction=conviction, conviction_level=level(conviction),
        markers=found)


def _phrases(padded, phrases):
    """Each phrase as often as it occurs between word boundaries of the padded, tokenised text."""
    return [p for p in phrases for _ in range(padded.count(f" {p} "))]


def _unit(value):
    return max(0.0, min(1.0, value))

"""Key moments read from the words and the measured affect: question, objection, cta_commit, escalation, resolution.

Each category is a set of phrase patterns chosen for precision (a false objection costs more
than a missed one), some gated by the conversation so far: a resolution needs an open
objection or escalation to resolve unless it says the problem is solved, an objection must not be phrased as a question (that is
a seller probing, not a buyer objecting), an escalation must not read as positive.
Topic shifts need embeddings and live in `topics.py`.
"""
import re

from .cognitive import questions

_FLAGS = re.IGNORECASE


def _any(*patterns):
    return re.compile("|".join(f"(?:{p})" for p in patterns), _FLAGS)


OBJECTION = _any(
    r"\btoo (expensive|pricey|costly|high|steep|complicated|complex|risky|slow|much money)\b",
    r"\b(over|out of|beyond|exceeds?|above) (our|my|the) budget\b",
    r"\b(can't|cannot|couldn't) (justify|afford)\b", r"\bhard to justify\b",
    r"\bnot (really )?(convinced|sold)\b",
    r"\b(concerned|worried) (about|that)\b", r"\bmy (main |biggest |only |real )?(concern|worry|hesitation)\b",
    r"\bwe already (have|use|pay for|work with)\b",
    r"\b(doesn't|does not|won't|will not|wouldn't|would not) (really )?(work|fit) for (us|me|our)\b",
    r"\bnot a (priority|good fit|fit)( for)?\b",
    r"\bi (don't|do not) (agree|buy that|see the value)\b", r"\bi disagree\b",
    r"\b(that's|that is) (not going to|never going to|not gonna) work\b",
    r"\bi (don't|do not) think we can (hit|make|do|afford|commit)\b",
    r"\b(cheaper|lower price) (elsewhere|from|with)\b",
)
#: Future-tense verbs that are no commitment ("I'll be honest", "we'll see", "let's get started").
_NOT_A_COMMITMENT = (r"(?!(be|see|think|consider|wait|probably|maybe|try|need|have|let you know|get started|"
                     r"move on|talk about|start with|begin|recap|not|never|just see)\b)")
CTA_COMMIT = _any(
    r"\b(i'll|i will|we'll|we will|i'm going to|we're going to) " + _NOT_A_COMMITMENT + r"[a-z]+",
    r"\blet's " + _NOT_A_COMMITMENT + r"[a-z]+",
    r"\b(can|could) (we|you) (schedule|book|set up|send (me|us|over))\b",
    r"\bplease (switch|send|sign|book|schedule|set up|go ahead|upgrade|add|move|cancel)\b",
    r"\b(sign|signing) (the|a|our) (contract|agreement|order|paperwork)\b",
    r"\b(go|move) ahead with\b", r"\bmove forward with\b", r"\bcount (me|us) in\b",
    r"\bbook (a|the) (demo|call|meeting|follow-up|pilot)\b",
    r"\baction item\b",
)
#: Phrases that report a problem solved: a resolution on their own.
SOLVED = _any(
    r"\b(that|this|it)('s| is| has been| was)? (now )?(fixed|solved|resolved|sorted( out)?)\b",
    r"\b(it's|it is|that's|everything's|everything is) (working|back up|loading) (now|again|fine)\b",
    r"\b(seems|looks|is|works) (fine|good|stable|perfectly) (now|right now|again)\b",
    r"\bworks (now|again)\b",
    r"\bfor (sorting|fixing|solving|resolving) (this|that|it)( out)?\b",
    r"\b(problem|issue) (is |has been )?(solved|resolved|gone|fixed)\b",
)
#: Phrases of acceptance: a resolution only while an objection or escalation is open.
ACCEPTED = _any(
    r"\b(that|this) (answers|addresses|resolves|clears up|takes care of) (my|our|the|that|it)\b",
    r"\bthat (makes sense|helps a lot|helps|sounds fair|works for (me|us))\b",
    r"\b(that|this) would (actually )?(work|fit)\b",
    r"\bi('m| am) (happy|glad|satisfied|comfortable) with (that|this|the)\b",
    r"\b(we|you) have a deal\b", r"\bfair enough\b",
)
ESCALATION = _any(
    r"\bunacceptable\b", r"\bridiculous\b", r"\boutrageous\b", r"\babsurd\b", r"\bfurious\b",
    r"\b(speak|talk) (to|with) (a|your|the) (manager|supervisor|boss)\b",
    r"\bcancel (my|our|the) (account|subscription|contract|order|service)\b",
    r"\b(third|fourth|fifth|sixth) time\b", r"\bfed up\b", r"\bsick (and tired )?of\b",
    r"\bwaste of (my |our )?time\b", r"\b(this|that) is a joke\b",
    r"\b(file|filing|make) a (formal )?complaint\b", r"\blegal action\b",
    r"\bnobody (has |ever )?(called|helped|fixed|answered)\b",
)
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

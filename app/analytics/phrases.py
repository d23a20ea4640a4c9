"""The phrase patterns the analysers read: objections, commitments, resolutions, escalations, complaints.

Kept in one place because two analysers read them: `moments.py` turns them into moments and
`lexical.py` counts objections, escalations and complaints as negative evidence that VADER's
general-purpose lexicon misses ("nobody has fixed it", "I'm worried that…").
"""
import re

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
    r"\bthat (makes sense|helps|helped|sounds fair|works for (me|us))\b",
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
#: Reports of something going wrong: negative in a support call even without a negative word.
COMPLAINT = _any(
    r"\b(keeps|kept|is|are|has been|have been|been|was) (dropping|crashing|failing|freezing|breaking|down|broken)\b",
    r"\b(doesn't|does not|didn't|won't|isn't|is not) (work|working|load|loading|connect|connecting)\b",
    r"\bstill (not|broken|down|waiting)\b", r"\b(stopped|stops) working\b",
    r"\bwe risk\b", r"\bwon't be enough\b",
)

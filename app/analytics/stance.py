"""The stance skeleton of a sentence: its function and evaluative words, its topic words blanked.

A sentence embedding is mostly topic: "the per-pallet rate is more than we pay now" sits near
the seller's "our rate includes tracking", not near "the licence costs more than our budget".
Whether a turn objects, escalates or accepts lives in its closed-class words (negations,
modals, pronouns, comparatives, "even so", "again", "still") and its evaluative words (VADER's
lexicon: "fine", "hard", "unfair"), so the moment head also reads the MiniLM embedding of the
sentence with every other word replaced by "_": "Even so, I'd have a hard time selling that
number to my CFO" reads "even so i'd have a hard time _ that number to my _". On topics left
out of its fit this raised the head's objection recall at precision 0.8 from 0.23 to 0.49
(bench/train_heads.py).
"""
import re

#: Words kept as they are: closed-class words, and the few open-class ones that carry a stance
#: whatever the topic (price and time words, verbs of agreeing, fixing and paying).
KEPT = frozenset("""
a an the this that these those it its it's i i'm i'd i'll i've me my mine we we're we'd we'll we've us our ours
you you're you'd you'll you've your yours he she they them their they're they'd they'll his her him
what which who whom whose when where why how whatever whoever
and or but so yet nor because although though even if unless until while since as than then also too either neither
not no never nothing nobody none nowhere n't don't doesn't didn't won't wouldn't can't cannot couldn't
isn't aren't wasn't weren't haven't hasn't hadn't shouldn't mustn't needn't ain't
is are was were be been being am do does did done doing have has had having
will would shall should can could may might must
to of in on at by for with from about into over under after before between through during without within against
up down out off again still already just only really quite very rather pretty much many more most less least enough
all any some every each both other another such same own
here there now today tomorrow yesterday soon later ever always once twice
yes yeah okay ok alright right well sure fine oh hmm um uh please thanks thank sorry
think thought know see saw mean meant need needs needed want wants wanted get got gets getting let lets let's
go going gone went come came take took make made give gave say said tell told ask asked
work works worked working help helps deal done happen happened keep kept try tried pay paying paid
sign signed agree agreed accept accepted afford fix fixed sort sorted solve solved
back away around instead otherwise anyway however honestly frankly actually basically
time times lot bit way thing things something anything everything someone anyone everyone
first second third last next one two three four five half
above below higher lower cheaper dearer expensive cheap costly steep price cost costs money budget spend
hundred thousand percent week weeks month months year years day days whole
""".split())
_WORD = re.compile(r"[a-z']+")


def skeleton(text, lexicon):
    """`text` in lower case with every word neither in KEPT nor in `lexicon` (VADER's) replaced by "_"."""
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    return " ".join(w if w in KEPT or w in lexicon else "_" for w in words) or "_"

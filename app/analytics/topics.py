"""Topic shifts: a drop in embedding similarity between the window before an utterance and what follows.

A signposted utterance ("moving on to…", "one more thing") starts a new topic when it is
also semantically far from the window before it. An utterance that is very far from the
window but has no signpost is only a candidate: it is confirmed when the next substantive
utterance also stays away from the old window and closer to the candidate, i.e. the
conversation really moved; a one-off aside or a generic question ("anything else?") is not.
"""
import re
from dataclasses import dataclass

import numpy as np

#: Utterances shorter than this carry too little meaning to compare ("Sure.", "Thanks a lot.").
MIN_WORDS = 5
#: How many earlier substantive utterances form the window an utterance is compared with.
WINDOW = 3
#: Similarity below which a signposted utterance starts a new topic.
SIGNPOSTED_BELOW = 0.45
#: Similarity below which an unannounced utterance becomes a candidate shift.
CANDIDATE_BELOW = 0.1
#: The next utterance confirms the candidate if its similarity to the old window stays below this.
CONFIRM_BELOW = 0.2
SIGNPOSTS = re.compile(
    r"\b(moving on|move on to|next (item|topic|thing|point|question)|switch(ing)? gears|another (thing|topic|question)|"
    r"on a different note|(let's|i'd like to|i want to) (talk|move on|turn|go back) (about|to)|turning to|"
    r"change (of|the) subject|before we wrap|the other (thing|topic)|next on the agenda|speaking of|"
    r"last (item|thing|topic)|one more thing|separately|unrelated|while i have you|by the way|on another note)\b",
    re.IGNORECASE)


@dataclass
class Shift:
    """A detected topic shift at `utterance` (possibly an earlier one than the one just fed)."""

    utterance: object
    confidence: float
    evidence: str


class TopicTracker:
    """Keeps the recent utterance embeddings and finds where the topic changes."""

    def __init__(self):
        self.recent = []
        self.candidate = None  # (utterance, its embedding, the window before it, its similarity)

    def update(self, utterance, embedding):
        """The Shift this utterance reveals (at it, or at the candidate before it), else None."""
        if len(utterance.text.split()) < MIN_WORDS:
            return None
        shift = self._confirm(embedding) if self.candidate else None
        if len(self.recent) >= 2:
            window = np.mean(self.recent, axis=0)
            window /= np.linalg.norm(window)
            similarity = float(window @ embedding)
            signpost = SIGNPOSTS.search(utterance.text)
            if signpost and similarity < SIGNPOSTED_BELOW:
                shift = Shift(utterance, round(min(0.95, 0.75 + SIGNPOSTED_BELOW - similarity), 3),
                              f"{utterance.text.strip()} (signpost \"{signpost.group(0)}\", similarity "
                              f"{similarity:.2f} to the previous {len(self.recent)} utterances)")
                self.recent = []
            elif similarity < CANDIDATE_BELOW and shift is None:
                self.candidate = (utterance, embedding, window, similarity)
        self.recent = (self.recent + [embedding])[-WINDOW:]
        return shift

    def _confirm(self, embedding):
        utterance, candidate, window, similarity = self.candidate
        self.candidate = None
        to_old, to_new = float(window @ embedding), float(candidate @ embedding)
        if to_old >= CONFIRM_BELOW or to_new <= to_old:
            return None
        self.recent = [candidate]
        return Shift(utterance, round(min(0.9, 0.6 + (to_new - to_old)), 3),
                     f"{utterance.text.strip()} (similarity {similarity:.2f} to the window before; "
                     f"the next utterance {to_old:.2f} to it and {to_new:.2f} to this one)")

"""Topic shifts: a drop in embedding similarity between the current utterance and the window before it."""
import re

import torch

#: Utterances shorter than this carry too little meaning to compare ("Sure.", "Thanks a lot.").
MIN_WORDS = 5
#: How many earlier substantive utterances form the window the current one is compared with.
WINDOW = 3
#: Similarity below which a signposted utterance ("moving on to…") starts a new topic.
SIGNPOSTED_BELOW = 0.45
#: Similarity below which an utterance starts a new topic even without a signpost.
UNANNOUNCED_BELOW = 0.1
SIGNPOSTS = re.compile(
    r"\b(moving on|move on to|next (item|topic|thing|point|question)|switch(ing)? gears|another (thing|topic|question)|"
    r"on a different note|(let's|i'd like to|i want to) (talk|move on|turn|go back) (about|to)|turning to|"
    r"change (of|the) subject|before we wrap|the other (thing|topic)|next on the agenda|speaking of|"
    r"last (item|thing|topic)|one more thing|separately|unrelated|while i have you|by the way|on another note)\b", re.IGNORECASE)


class TopicTracker:
    """Keeps the recent utterance embeddings and flags the utterance where the topic changes."""

    def __init__(self):
        self.recent = []

    def update(self, text, embedding):
        """(similarity to the window or None, (confidence, evidence) if this utterance shifts the topic)."""
        if len(text.split()) < MIN_WORDS:
            return None, None
        similarity = None
        shift = None
        if len(self.recent) >= 2:
            window = torch.nn.functional.normalize(torch.stack(self.recent).mean(0), dim=0)
            similarity = float(window @ embedding)
            signpost = SIGNPOSTS.search(text)
            measured = f"similarity {similarity:.2f} to the previous {len(self.recent)} utterances"
            if signpost and similarity < SIGNPOSTED_BELOW:
                confidence = min(0.95, 0.75 + (SIGNPOSTED_BELOW - similarity))
                shift = (round(confidence, 3), f"{signpost.group(0)} … ({measured})")
            elif similarity < UNANNOUNCED_BELOW:
                confidence = min(0.9, 0.6 + (UNANNOUNCED_BELOW - similarity))
                shift = (round(confidence, 3), f"{text.strip()} ({measured})")
        if shift:
            self.recent = []
        self.recent = (self.recent + [embedding])[-WINDOW:]
        return similarity, shift

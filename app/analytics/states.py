"""Each speaker's affective state with hysteresis, and the `transition` event when it changes.

States (checked in this order, first match wins) on the speaker's smoothed scores:
frustrated (valence < -0.25, arousal > 0.05), anxious (valence < -0.1, dominance < -0.1),
dissatisfied (valence < -0.25: negative without the energy of frustration), positive
(valence > 0.3), disengaged (engagement < 0.3), engaged (engagement > 0.6), otherwise calm. Scores are smoothed with an exponential moving average, and a new state
must hold for two utterances in a row (one if it is far past its threshold) before it
replaces the old one, so a single odd sentence does not flip the state.
"""
from dataclasses import dataclass, field

from client.events import Transition

SMOOTHING = 0.6  # weight of the newest utterance in the moving average
CUES = ("valence", "arousal", "dominance", "engagement")


def classify(scores):
    """(state, margin): the state the smoothed scores fall in and how far past its threshold."""
    v, a, d, e = (scores[c] for c in CUES)
    if v < -0.25 and a > 0.05:
        return "frustrated", min(-0.25 - v, a - 0.05)
    if v < -0.1 and d < -0.1:
        return "anxious", min(-0.1 - v, -0.1 - d)
    if v < -0.25:
        return "dissatisfied", -0.25 - v
    if v > 0.3:
        return "positive", v - 0.3
    if e < 0.3:
        return "disengaged", 0.3 - e
    if e > 0.6:
        return "engaged", e - 0.6
    return "calm", 0.1


@dataclass
class SpeakerState:
    """One speaker's smoothed cues, settled state and the challenger waiting to replace it."""

    smoothed: dict | None = None
    state: str | None = None
    settled_cues: dict = field(default_factory=dict)
    candidate: str | None = None
    candidate_ids: list = field(default_factory=list)


class StateTracker:
    """Follows every speaker's state through the conversation; `update` returns a Transition or None."""

    def __init__(self):
        self.speakers = {}
        self.count = 0

    def update(self, utterance, emotion, cognitive):
        """Fold one utterance's scores into its speaker's state."""
        current = dict(emotion.scores, engagement=cognitive.engagement)
        track = self.speakers.setdefault(utterance.speaker, SpeakerState())
        if track.smoothed is None:
            track.smoothed = current
        else:
            track.smoothed = {c: SMOOTHING * current[c] + (1 - SMOOTHING) * track.smoothed[c] for c in CUES}
        state, margin = classify(track.smoothed)
        if track.state is None:
            track.state, track.settled_cues = state, dict(track.smoothed)
            return None
        if state == track.state:
            track.candidate, track.candidate_ids = None, []
            return None
        if state != track.candidate:
            track.candidate, track.candidate_ids = state, []
        track.candidate_ids.append(utterance.utterance_id)
        if len(track.candidate_ids) < 2 and margin < 0.25:
            return None
        return self._switch(track, utterance, state, margin)

    def _switch(self, track, utterance, state, margin):
        before, after = track.settled_cues, dict(track.smoothed)
        moved = sorted(CUES, key=lambda c: abs(after[c] - before[c]), reverse=True)
        drivers = [{"cue": c, "from": round(before[c], 3), "to": round(after[c], 3)}
                   for c in moved if abs(after[c] - before[c]) >= 0.1][:3]
        self.count += 1
        event = Transition(
            transition_id=f"tr_{self.count:04d}", at_ms=int(round(utterance.t_start * 1000)),
            from_state=_state(track.state, before), to_state=_state(state, after),
            speaker=utterance.speaker, evidence_utterance_ids=list(track.candidate_ids),
            drivers=drivers, confidence=round(min(0.95, 0.5 + margin + 0.1 * len(track.candidate_ids)), 3))
        track.state, track.settled_cues = state, after
        track.candidate, track.candidate_ids = None, []
        return event


def _state(label, cues):
    return {"label": label, "valence": round(cues["valence"], 3), "arousal": round(cues["arousal"], 3)}

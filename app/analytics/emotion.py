"""Valence, arousal, dominance and the seven-way emotion of an utterance, from its prosody and words.

Mapping: each basic emotion sits at its published pleasure-arousal-dominance point
(Mehrabian's PAD scale as tabulated by Gebhard, "ALMA", AAMAS 2005; neutral at the origin).
The distribution is a softmax of the negative squared distance between the measured
(valence, arousal, dominance) and each point, so it sums to 1 and says how close each reading is.
"""
import math

from client.events import Emotion

PAD = {
    "anger": (-0.51, 0.59, 0.25),
    "disgust": (-0.60, 0.35, 0.11),
    "fear": (-0.64, 0.60, -0.43),
    "joy": (0.76, 0.48, 0.35),
    "neutral": (0.0, 0.0, 0.0),
    "sadness": (-0.63, -0.27, -0.33),
    "surprise": (0.40, 0.67, -0.13),
}
#: Softmax temperature over squared PAD distances: smaller is peakier.
TEMPERATURE = 0.08
#: Dominance is the weakest measured axis, so it counts half in the distance to each emotion.
DOMINANCE_WEIGHT = 0.5
#: Weights of the prosodic z-scores (against the speaker's own norm) in acoustic arousal.
AROUSAL_WEIGHTS = {"loudness_db": 0.35, "pitch_st": 0.3, "pitch_range_st": 0.15, "speech_rate": 0.2}


def acoustic_arousal(z):
    """Arousal heard in the voice: a squashed weighted sum of the cue z-scores, in [-1, 1]."""
    return math.tanh(sum(weight * z[name] for name, weight in AROUSAL_WEIGHTS.items()) / 1.2)


def acoustic_dominance(z, prosody):
    """Dominance heard in the voice: louder and fluent reads as in control, pauses as yielding."""
    pause_share = prosody.pause_total_s / prosody.duration_s if prosody.duration_s > 0 else 0.0
    return math.tanh(0.4 * z["loudness_db"] - 0.15 * z["pitch_st"] - 0.8 * pause_share)


def distribution(valence, arousal, dominance):
    """Softmax over the negative (dominance-weighted) squared distance to each PAD point; sums to 1."""
    logits = {name: -((valence - p) ** 2 + (arousal - a) ** 2 + DOMINANCE_WEIGHT * (dominance - d) ** 2)
              / TEMPERATURE
              for name, (p, a, d) in PAD.items()}
    top = max(logits.values())
    weights = {name: math.exp(value - top) for name, value in logits.items()}
    total = sum(weights.values())
    probs = {name: round(weight / total, 4) for name, weight in weights.items()}
    probs["neutral"] = round(probs["neutral"] + 1.0 - sum(probs.values()), 4)  # rounding drift
    return probs


def analyse(utterance, prosody, z, lexical, baseline_utterances):
    """The Emotion event of one utterance.

    `z` holds the prosodic z-scores against the speaker's norm before this utterance and
    `baseline_utterances` how many utterances that norm has seen.
    """
    heard_arousal = acoustic_arousal(z)
    heard_dominance = acoustic_dominance(z, prosody)
    # The voice is trusted more as the speaker's norm matures; words carry valence (prosody
    # alone separates pleasant from unpleasant poorly), both carry arousal and dominance.
    voice_weight = 0.35 + 0.3 * min(baseline_utterances, 5) / 5
    valence = _clip(lexical.valence * (0.85 if lexical.words >= 3 else 0.6))
    arousal = _clip(voice_weight * heard_arousal + (1 - voice_weight) * lexical.arousal)
    dominance = _clip(0.5 * heard_dominance + 0.5 * lexical.dominance)
    probs = distribution(valence, arousal, dominance)
    label = max(probs, key=probs.get)
    agreement = 1.0 - abs(heard_arousal - lexical.arousal) / 2.0
    length = min(1.0, lexical.words / 8.0)
    maturity = 0.5 + 0.5 * min(baseline_utterances, 3) / 3
    confidence = probs[label] * (0.4 + 0.6 * agreement * length * maturity) * _asr_trust(utterance)
    features = {
        "prosody": prosody.to_dict(),
        "prosody_z": {name: round(value, 3) for name, value in z.items()},
        "lexical": lexical.to_dict(),
        "acoustic_arousal": round(heard_arousal, 3),
        "acoustic_dominance": round(heard_dominance, 3),
        "cue_agreement": round(agreement, 3),
        "baseline_utterances": baseline_utterances,
    }
    return Emotion(utterance_id=utterance.utterance_id, speaker=utterance.speaker, emotion=probs,
                   label=label, scores={"valence": round(valence, 3), "arousal": round(arousal, 3),
                                        "dominance": round(dominance, 3)},
                   confidence=round(confidence, 3), stability="final", features=features)


def _asr_trust(utterance):
    return 0.5 + 0.5 * max(0.0, min(1.0, utterance.confidence if utterance.confidence is not None else 1.0))


def _clip(value):
    return max(-1.0, min(1.0, value))

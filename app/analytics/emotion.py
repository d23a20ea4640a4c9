"""Valence, arousal, dominance and the seven-way emotion of an utterance, from its words and its voice.

The words are read by a classifier head over the MiniLM sentence embedding and VADER's scores
(`head.py`, fitted on bench/data/emotion_tuning.json): it gives the text's seven-way
distribution. The voice (pitch, loudness, range and rate against the speaker's own norm)
then moves that distribution along the arousal axis: each emotion sits at its published
pleasure-arousal-dominance point (Mehrabian's PAD scale as tabulated by Gebhard, "ALMA",
AAMAS 2005; neutral at the origin), and a voice that is livelier than the speaker's norm
raises the high-arousal emotions (anger, fear, joy, surprise) against the low ones
(sadness, neutral). The PAD points also turn the text distribution into expected valence
and arousal. Valence is half the words' sentiment (VADER with the complaint cues) and half the
distribution's expected valence, in which the neutral share also counts at the words'
sentiment: a polite "thanks, talk to you Thursday" stays mildly positive, and "the team is
frustrated with the recording tools", where VADER hears nothing, reads negative as anger does.
(Weighing the emotions alone lost a tenth of the polarity accuracy on the development calls:
on whole business turns the head spreads probability over the emotions.)
"""
import math

from client.events import Emotion

from .features import clip

LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
PAD = {
    "anger": (-0.51, 0.59, 0.25),
    "disgust": (-0.60, 0.35, 0.11),
    "fear": (-0.64, 0.60, -0.43),
    "joy": (0.76, 0.48, 0.35),
    "neutral": (0.0, 0.0, 0.0),
    "sadness": (-0.63, -0.27, -0.33),
    "surprise": (0.40, 0.67, -0.13),
}
#: How far one unit of heard arousal (× the voice weight) moves an emotion's log-probability, per unit of its PAD arousal.
VOICE_GAIN = 1.5
#: Weights of the prosodic z-scores (against the speaker's own norm) in acoustic arousal.
AROUSAL_WEIGHTS = {"loudness_db": 0.35, "pitch_st": 0.3, "pitch_range_st": 0.15, "speech_rate": 0.2}
#: What the words say when there are none: nothing but neutral.
NO_WORDS = {label: float(label == "neutral") for label in LABELS}


def acoustic_arousal(z):
    """Arousal heard in the voice: a squashed weighted sum of the cue z-scores, in [-1, 1]."""
    return math.tanh(sum(weight * z[name] for name, weight in AROUSAL_WEIGHTS.items()) / 1.2)


def acoustic_dominance(z, prosody):
    """Dominance heard in the voice: louder and fluent reads as in control, pauses as yielding."""
    pause_share = prosody.pause_total_s / prosody.duration_s if prosody.duration_s > 0 else 0.0
    return math.tanh(0.4 * z["loudness_db"] - 0.15 * z["pitch_st"] - 0.8 * pause_share)


def expected(probs, axis, neutral=0.0):
    """The probability-weighted PAD coordinate (0 valence, 1 arousal) of a distribution, `neutral` standing for neutral's."""
    return sum(p * (neutral if label == "neutral" else PAD[label][axis]) for label, p in probs.items())


def words_valence(lexical):
    """The words' sentiment (VADER with the complaint cues), damped for short utterances: half of valence,
    and the valence the moments read (moments.py), which no emotion head moves."""
    return lexical.valence * (0.85 if lexical.words >= 3 else 0.6)


def fuse(text_probs, heard_arousal, voice_weight):
    """The text distribution moved along the arousal axis by the voice; sums to 1."""
    logits = {label: math.log(text_probs[label] + 1e-6) + VOICE_GAIN * voice_weight * heard_arousal * PAD[label][1]
              for label in LABELS}
    top = max(logits.values())
    weights = {label: math.exp(value - top) for label, value in logits.items()}
    total = sum(weights.values())
    probs = {label: round(weight / total, 4) for label, weight in weights.items()}
    label = max(probs, key=probs.get)
    probs[label] = round(probs[label] + 1.0 - sum(probs.values()), 4)  # rounding drift
    return probs


def analyse(utterance, prosody, z, lexical, baseline_utterances, text_probs, text_scores=None):
    """The Emotion event of one utterance.

    `z` holds the prosodic z-scores against the speaker's norm before this utterance,
    `baseline_utterances` how many utterances that norm has seen, and `text_probs` the emotion
    head's distribution for the words (`NO_WORDS` when there are none); `text_scores`
    (`scores.TextScores`) goes into the features as evidence.
    """
    heard_arousal = acoustic_arousal(z)
    heard_dominance = acoustic_dominance(z, prosody)
    # The voice is trusted more as the speaker's norm matures; words carry valence (prosody
    # alone separates pleasant from unpleasant poorly), both carry arousal and dominance.
    voice_weight = 0.35 + 0.3 * min(baseline_utterances, 5) / 5
    lexical_valence = words_valence(lexical)
    valence = clip(0.5 * lexical_valence + 0.5 * expected(text_probs, 0, neutral=lexical_valence))
    head_arousal = expected(text_probs, 1)
    word_arousal = 0.5 * (lexical.arousal + head_arousal)
    arousal = clip(voice_weight * heard_arousal + (1 - voice_weight) * word_arousal)
    dominance = clip(0.5 * heard_dominance + 0.5 * lexical.dominance)
    probs = fuse(text_probs, heard_arousal, voice_weight)
    label = max(probs, key=probs.get)
    agreement = 1.0 - abs(heard_arousal - word_arousal) / 2.0
    length = min(1.0, lexical.words / 8.0)
    maturity = 0.5 + 0.5 * min(baseline_utterances, 3) / 3
    confidence = probs[label] * (0.4 + 0.6 * agreement * length * maturity) * _asr_trust(utterance)
    features = {
        "prosody": prosody.to_dict(),
        "prosody_z": {name: round(value, 3) for name, value in z.items()},
        "lexical": lexical.to_dict(),
        "text_emotion": {name: round(p, 3) for name, p in text_probs.items()},
        "valence_parts": {"emotions": round(expected(text_probs, 0), 3), "neutral_share": round(text_probs["neutral"], 3),
                          "lexical": round(lexical_valence, 3)},
        "acoustic_arousal": round(heard_arousal, 3),
        "acoustic_dominance": round(heard_dominance, 3),
        "cue_agreement": round(agreement, 3),
        "baseline_utterances": baseline_utterances,
    }
    if text_scores is not None:
        features["text_scores"] = text_scores.to_dict()
    return Emotion(utterance_id=utterance.utterance_id, speaker=utterance.speaker, emotion=probs,
                   label=label, scores={"valence": round(valence, 3), "arousal": round(arousal, 3),
                                        "dominance": round(dominance, 3)},
                   confidence=round(confidence, 3), stability="final", features=features)


def _asr_trust(utterance):
    return 0.5 + 0.5 * max(0.0, min(1.0, utterance.confidence if utterance.confidence is not None else 1.0))

"""Acoustic and timing cues of one utterance: pitch, loudness, speech rate, pauses, voicing."""
import re
from dataclasses import dataclass

import numpy as np
import parselmouth

from ..audio import TARGET_RATE_HZ
from .features import RoundedFeatures

#: A gap between consecutive words longer than this is a pause (hesitations run 0.25–1 s).
PAUSE_S = 0.25
#: Pitch search range wide enough for low male and high female voices. Praat's usual 75 Hz floor
#: loses deep voices (Piper's joe speaks at ~80 Hz, ~70 Hz a few semitones down) to octave errors.
PITCH_FLOOR_HZ = 60.0
PITCH_CEILING_HZ = 400.0
#: Pitch every 20 ms: enough frames for a median and a range at half the CPU of Praat's 10 ms.
PITCH_STEP_S = 0.02
_FRAME = 400  # 25 ms at 16 kHz
_HOP = 160  # 10 ms
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


@dataclass
class Prosody(RoundedFeatures):
    """What was measured; None where the utterance gave nothing to measure (e.g. no voiced frame)."""

    duration_s: float
    words: int
    syllables: int
    speech_rate_syl_s: float | None  # syllables per second of speaking time (pauses removed)
    words_per_min: float | None
    pitch_median_hz: float | None
    pitch_range_st: float | None  # 10th to 90th percentile of voiced pitch, in semitones
    loudness_db: float | None  # mean level of the active frames, dB re full scale
    voiced_ratio: float | None  # share of active frames that carry a pitch
    pauses: int  # gaps between words longer than PAUSE_S
    pause_total_s: float
    longest_pause_s: float


def syllables(word):
    """Vowel groups in the word, a standard rough syllable count (at least 1)."""
    word = word.lower().strip(".,!?;:'\"")
    count = len(_VOWEL_GROUPS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1
    return max(count, 1)


def measure(utterance):
    """Measure the prosody of a final utterance from its audio and its word timings."""
    words = [w for w in utterance.words if w.word.strip()]
    gaps = [b.start - a.end for a, b in zip(words, words[1:])]
    pauses = [g for g in gaps if g > PAUSE_S]
    n_syllables = sum(syllables(w.word) for w in words)
    span = (words[-1].end - words[0].start) if words else 0.0
    speaking = span - sum(pauses)
    rate = n_syllables / speaking if words and speaking > 0.2 else None
    wpm = 60.0 * len(words) / span if len(words) > 1 and span > 0.2 else None
    audio = np.asarray(utterance.audio, dtype=np.float64)
    loudness, active = _loudness(audio)
    pitch_hz, range_st, voiced = _pitch(audio, active)
    return Prosody(
        duration_s=float(utterance.t_end - utterance.t_start), words=len(words),
        syllables=n_syllables, speech_rate_syl_s=rate, words_per_min=wpm,
        pitch_median_hz=pitch_hz, pitch_range_st=range_st, loudness_db=loudness,
        voiced_ratio=voiced, pauses=len(pauses), pause_total_s=float(sum(pauses)),
        longest_pause_s=float(max(pauses, default=0.0)))


def _loudness(audio):
    """Mean dBFS of the frames within 30 dB of the loudest one (silence and breaths left out)."""
    if len(audio) < _FRAME:
        return None, None
    frames = np.lib.stride_tricks.sliding_window_view(audio, _FRAME)[::_HOP]
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    active = level > level.max() - 30.0
    if level.max() < -70.0:
        return None, None
    return float(level[active].mean()), active


def _pitch(audio, active):
    """Median voiced pitch, its 10–90 % range in semitones, and the voiced share of active frames."""
    if active is None or len(audio) < TARGET_RATE_HZ // 10:
        return None, None, None
    # Track only from the first to the last active frame: the silence the endpointer leaves
    # around an utterance has no pitch and costs as much CPU as speech.
    frames = np.flatnonzero(active)
    first, last = frames[0] * _HOP, min(len(audio), frames[-1] * _HOP + _FRAME)
    if last - first >= TARGET_RATE_HZ // 10:
        audio = audio[first:last]
    pitch = parselmouth.Sound(audio, TARGET_RATE_HZ).to_pitch_ac(
        time_step=PITCH_STEP_S, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    voiced_ratio = min(1.0, len(voiced) / max(int(active.sum() * _HOP / TARGET_RATE_HZ / PITCH_STEP_S), 1))
    if len(voiced) < 5:
        return None, None, voiced_ratio
    median = np.median(voiced)
    # Octave jumps of the tracker would pass for a huge range: keep frames within an octave.
    voiced = voiced[(voiced > median / 2) & (voiced < median * 2)]
    low, high = np.percentile(voiced, [10, 90])
    return float(median), float(12 * np.log2(high / low)), float(voiced_ratio)

"""Where utterances start and end, and when the open utterance is decoded next.

`Endpointer` turns the VAD's per-frame speech probabilities into utterances: speech opens
one (with a little audio from before it), a long enough silence ends it. It is the one
place that counts session time: every other part of the recognizer takes its sample
positions from it, so a session resumed after a checkpoint starts it at that sample.
`DecodeSchedule` says when a decode of the open utterance is due and holds the reading
decoded in a pause for the endpoint. The settings that tune both, and the decoding that
follows, are `EndpointSettings`; docs/speech.md tells what each was chosen against.
"""
import enum
from collections import deque
from dataclasses import dataclass

from .replays import VoiceLog
from ..audio import TARGET_RATE_HZ as RATE_HZ


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    """How speech is cut into utterances, how often and how it is decoded, when words are committed.

    Fields without a default are settings: app.speech.settings builds them from app.config.
    """

    vad_threshold: float
    end_silence_s: float
    min_speech_s: float
    max_utterance_s: float
    partial_interval_s: float
    # Audio kept from before the frame that opens an utterance. Silero scores a weak or hoarse
    # onset low ("um, the recording environment" from a speaker with a cold: under 0.3 until
    # "environment"), and Whisper reads leading near-silence without trouble.
    pre_roll_s: float = 0.5
    commit_min_words: int = 2
    # Even agreed words stay open while they end this close to the end of the decoded audio:
    # the next word may still change how Whisper spells them.
    commit_guard_s: float = 0.3
    # Whisper guesses on very short audio; two such guesses may agree and still be wrong.
    commit_min_audio_s: float = 1.5
    # An agreed word Whisper is unsure of stays open, with the words after it: committed, a
    # wrong word becomes the forced prefix of every later decode and drags them off course.
    commit_min_confidence: float = 0.5
    # The last committed word is where the next decode starts, as its forced prefix; one there
    # that Whisper is not nearly sure of is often a fragment of a longer word ("lap" of
    # "laptops") and waits for the next decode.
    commit_last_min_confidence: float = 0.95
    # An agreed word that ends this long before the audio's end is committed however unsure:
    # Whisper has heard that much past it, and held back it holds back every word after it (in
    # a fluent dictation "item", read at probability 0.12-0.45 eight times, held 25 words for
    # 5 s). 6 s, not 4: at 4 s noisy speech locked in wrong words a later reading would fix.
    commit_settled_s: float = 6.0
    # After this much silence the open utterance is decoded ahead of its endpoint. A reading
    # that ends a sentence (. ? !) is final at once; any other is kept for the endpoint, so
    # its final goes out as soon as the endpoint is confirmed instead of a decode later.
    sentence_end_silence_s: float
    # ... unless Whisper gave that closing mark a probability below this: with the audio ending
    # at the pause it guesses, and on real readers most such guesses are a comma's pause
    # ("we are at present concerned." / "Differs from most…"; docs/speech.md). 0: every one.
    sentence_end_min_probability: float
    # Decodes whose words become finals at once (in a pause, at the endpoint, at the maximum
    # length) use a beam this wide; partials, whose agreed words are held to a second reading,
    # stay greedy.
    final_beam_size: int
    # Those decodes also see up to this much of the turn's committed audio (partials: 1 s) in a
    # window of at least this long (partials: 3 s): Whisper reads the end of a sentence better
    # with its start in view, and in a short window a beam search often ends the text early.
    final_context_s: float
    final_window_s: int
    # The last final's words that start within this of its end, and their audio, are carried in
    # front of the next turn (docs/speech.md, "Turn starts"): a final decode hears all of it, a
    # partial its last second. 4 s, not 1: in noise a turn's first words are misheard without
    # the voice and the words before them (white noise at 10 dB SNR: 2.2 points of WER fewer on
    # held-out speech).
    carry_s: float = 4.0


# Once speech has started, a frame a little under the threshold still counts as speech,
# so a soft syllable does not end the utterance (hysteresis).
_HYSTERESIS = 0.15



class Frame(enum.Enum):
    """What a frame did to the utterance (`Endpointer.take`)."""

    IDLE = "no utterance open, none opened"
    OPENED = "opened an utterance"
    VOICED = "speech inside the open utterance"
    SILENT = "silence inside the open utterance"


class Endpointer:
    """VAD endpointing of one stream: frame by frame, is an utterance open, since when, how long silent."""

    def __init__(self, settings, start_sample=0):
        self._cfg = settings
        self.position = start_sample  # session sample of the next frame
        self.voice = VoiceLog()
        self.in_speech = False
        self._preroll = deque()
        self._preroll_samples = 0
        self.speech_samples = 0  # voiced samples in the open utterance
        self.silence_samples = 0  # silence since its last voiced frame
        self.speech_end = start_sample  # session sample just after the last voiced frame

    def take(self, frame, probability):
        """Account for the next frame; (what it did, the samples that open the utterance).

        The second item is only for `Frame.OPENED`: (session sample they start at, the pre-roll
        frames and this one), else None.
        """
        n = len(frame)
        first = self.position
        self.position += n
        threshold = self._cfg.vad_threshold - (_HYSTERESIS if self.in_speech else 0.0)
        self.voice.add(first, n, probability >= threshold)
        if not self.in_speech:
            if probability < self._cfg.vad_threshold:
                self._preroll.append(frame)
                self._preroll_samples += n
                while self._preroll_samples > self._cfg.pre_roll_s * RATE_HZ:
                    self._preroll_samples -= len(self._preroll.popleft())
                return Frame.IDLE, None
            opening = (first - self._preroll_samples, [*self._preroll, frame])
            self._preroll.clear()
            self._preroll_samples = 0
            self.in_speech = True
            self.speech_samples, self.silence_samples, self.speech_end = n, 0, first + n
            return Frame.OPENED, opening
        if probability >= self._cfg.vad_threshold - _HYSTERESIS:
            self.silence_samples = 0
            self.speech_end = first + n
            self.speech_samples += n
            return Frame.VOICED, None
        self.silence_samples += n
        return Frame.SILENT, None

    def ended(self):
        """The silence is long enough to end the open utterance."""
        return self.silence_samples >= self._cfg.end_silence_s * RATE_HZ

    def pausing(self):
        """The voice has paused long enough for a sentence to have ended."""
        return self.silence_samples >= self._cfg.sentence_end_silence_s * RATE_HZ

    def enough_speech(self):
        """The open utterance holds speech enough not to be noise."""
        return self.speech_samples >= self._cfg.min_speech_s * RATE_HZ

    def close(self):
        self.in_speech = False

    def first_unheld(self):
        """The session sample from which no utterance holds the audio yet: the open one's pre-roll
        start while idle, the whole stream consumed otherwise (the open utterance says where it starts)."""
        return self.position - self._preroll_samples


class DecodeSchedule:
    """When the open utterance is decoded next, and the pause reading kept for its endpoint.

    A decode is due after `interval_s` of new speech, and once as soon as the voice pauses
    (that reading is `held` until the voice resumes, a commit makes it stale, or the endpoint
    takes it as the final).
    """

    def __init__(self, interval_s):
        self._interval = interval_s * RATE_HZ
        self._new_speech = 0
        self.held = None

    def opened(self, samples):
        self._new_speech = samples

    def voiced(self, samples):
        self._new_speech += samples
        self.held = None

    def due(self, pausing):
        if pausing and self.held is None:
            return True
        return self._new_speech >= self._interval

    def decoding(self):
        self._new_speech = 0

    def hold(self, words):
        self.held = words

    def drop(self):
        self.held = None

"""One session's streaming recognition: VAD endpointing, partials, early commits of a stable prefix, finals.

Borrowed from whisper_streaming's shape (insert audio / process / finish) with two changes
that cut latency on a small CPU: utterances are cut by VAD, so Whisper only ever sees the
speech of the current utterance; and words on which two consecutive partial hypotheses
agree (LocalAgreement-2) are emitted at once as their own `final_transcript`, the audio
behind them is dropped, and the rest of the utterance goes on under a new utterance id.
A reading that ends a sentence once the voice has paused is final without waiting for the
endpoint, if Whisper is sure of its full stop. The finals of a session read, in order, as the
whole of what was said: the next decode, in the same turn or the next, starts on the last
committed words again, forced as the decoder's prefix, and returns only what follows them;
a decode that reads committed words again anyway (a replay) loses them. A decode whose words
become finals at once sees more than a partial: the turn's committed audio and a wider window,
and it searches a beam.

`SessionRecognizer` only decides what to decode and what to commit. Its parts can each be
read and tested alone: `Endpointer` and `DecodeSchedule` (endpointing.py: where utterances
start and end, when a decode is due), `OpenAudio` (open_audio.py: the uncommitted audio and
the committed audio before it), `Transcript` (transcript.py: ids, finals, the words later
decodes lean on), the replay filter (replays.py) and word-list helpers (words.py). How each
rule and setting was chosen is in docs/speech.md.
"""
import contextlib
from dataclasses import dataclass

import numpy as np

from client.events import PartialTranscript

from ..audio import TARGET_RATE_HZ as RATE_HZ
from .asr import MIN_WINDOW_S
from .endpointing import DecodeSchedule, EndpointSettings, Endpointer, Frame
from .open_audio import OpenAudio
from .replays import drop_echo, drop_replays
from .transcript import Transcript
from .vad import SileroFrames
from .words import agreement, before, ends_sentence, heard_words, join, sure_prefix, unhyphened

__all__ = ["EndpointSettings", "ResumePoint", "SessionRecognizer"]

# Words ending this close to the end of a too-long utterance are left for the next piece.
_LONG_UTTERANCE_TAIL_S = 1.0
# Audio decoded past the last voiced frame: enough for a soft word ending, not so much
# trailing silence that Whisper starts the sentence over (a classic hallucination).
_TRAILING_S = 0.25
# Committed audio a partial decodes again in front of the open audio, so it never starts mid-word.
_CONTEXT_S = 1.0
# A reading that ends this long before the voice did is retried in a window this long.
_RETRY_AFTER_S = 1.0
_RETRY_WINDOW_S = 10
# Samples the VAD scores at a time, whatever a feed holds: 100 ms, a live chunk. Silero scores
# every frame of what it is given before the recognizer acts on the first, so the state reset
# at an utterance's end takes effect only at the next piece. Fed a recorded file's 2 s steps
# whole, that reset often fell inside the next turn, where the fresh state scored the first
# second of softphone-band voice below 0.1 and "open, save and exit" was never decoded
# (stop 36). Resetting at the very next frame instead was measured and not kept: on the
# tuning split it lost a hoarse onset ("and here's just a long pause") that these pieces keep.
FEED_PIECE = 1600


@dataclass(frozen=True)
class ResumePoint:
    """Enough to carry a session's recognition on elsewhere (see `SessionRecognizer.resume_point`)."""

    samples: int = 0  # session sample where the resumed stream's audio starts
    utterances: int = 0  # the number of the last utterance that has a final
    said: tuple = ()  # the session's last emitted words


@dataclass(frozen=True)
class _Reading:
    """The words of one decode, in session seconds, and how sure Whisper was of the full stop
    (question or exclamation mark) after the last of them: None where there is none."""

    words: list
    end_probability: float = None

    def ends_sentence(self, min_probability):
        """True when the words end a sentence whose closing mark Whisper gave `min_probability`
        or more (or no probability of its own: a mark inside a token, as in "p.m.")."""
        return ends_sentence(self.words) and (self.end_probability is None or self.end_probability >= min_probability)


class SessionRecognizer:
    """Streaming recognition of one session; synchronous, runs in a worker process."""

    def __init__(self, recognizer, speakers, language="en", *, settings, resume=None):
        """`resume`: a `resume_point()` of this session taken elsewhere; recognition carries on from it."""
        resume = resume or ResumePoint()
        self._asr = recognizer
        self._speakers = speakers
        self._language = language
        self._cfg = settings
        self._frames = SileroFrames()
        self._vad = Endpointer(settings, resume.samples)
        self._schedule = DecodeSchedule(settings.partial_interval_s)
        self._audio = OpenAudio(max(_CONTEXT_S, settings.final_context_s))
        self._text = Transcript(settings.carry_s, resume.utterances, resume.said)
        self._previous = []  # the last partial's uncommitted words, session times
        self._speaker = None  # the open turn's speaker, once its first final chose it
        self._unlearned = None  # (speaker, audio) of the last finished turn, for `learn_speaker`
        self._catching_up = False  # set for one `feed` or `partial` by a crowded worker
        self._catch_up_decodes = 0  # final decodes made cheaply since `take_catch_up_decodes`

    @property
    def analysed_s(self):
        """Session audio consumed so far, in seconds."""
        return self._vad.position / RATE_HZ

    def feed(self, samples, catch_up=False):
        """Take the next samples; events for every utterance they complete (never partials).

        `catch_up`: the worker has other sessions waiting, so a final these samples complete is
        decoded as cheaply as a partial (greedy, 3 s window floor, 1 s of context) instead of
        searching a beam over the turn's audio, the most costly decode a worker makes.
        """
        events = []
        with self._finals_as_partials(catch_up):
            for start in range(0, len(samples), FEED_PIECE):
                for frame, probability in self._frames.push(samples[start:start + FEED_PIECE]):
                    events += self._on_frame(frame, probability)
        return events

    def resume_point(self):
        """Where a recognizer started elsewhere carries this session on after its last final.

        It starts at the first sample no final holds (the open utterance's start, or the pre-roll
        of the next one), numbers utterances on and prompts with the last words said. What it
        does not get: the last final's carried context (its audio) and the voice log behind the
        replay filter, so its first decode reads without them.
        """
        first = self._audio.start if self._vad.in_speech else self._vad.first_unheld()
        return ResumePoint(first, self._text.finals_numbered, tuple(self._text.said()))

    def learn_speaker(self):
        """Fold the last finished turn into its speaker's voice print; called once its final is out."""
        if self._unlearned is not None:
            self._speakers.learn(*self._unlearned)
            self._unlearned = None

    def take_audio(self, utterance_id):
        """The samples behind a final this recognizer emitted, once (for the analytics stages)."""
        return self._text.take_audio(utterance_id)

    def take_catch_up_decodes(self):
        """How many decodes meant for a final were made as cheaply as a partial (a crowded
        worker) since the last call; the count starts again at 0."""
        count, self._catch_up_decodes = self._catch_up_decodes, 0
        return count

    def wants_partial(self):
        """True when a decode is due: enough new speech since the last one, or a pause began."""
        return self._vad.in_speech and self._voiced_open() and self._schedule.due(self._vad.pausing())

    def partial(self, catch_up=False):
        """Decode the open utterance: a partial, preceded by a final for any stable prefix.
        `catch_up`: as for `feed` (a decode in a pause may be the utterance's final)."""
        self._schedule.decoding()
        pausing = self._vad.pausing()  # a decode in a pause may be the utterance's last: it gets the beam
        with self._finals_as_partials(catch_up):
            reading = self._decode_checked(final=pausing)
        words = reading.words
        events = []
        if pausing and reading.ends_sentence(self._cfg.sentence_end_min_probability):
            # The voice stopped and Whisper reads a whole sentence: that is the utterance's end.
            # Should the speaker go on, the next utterance starts here with this as its context.
            # A full stop Whisper is unsure of is most often a reader's pause at a comma (the
            # audio ends there, so it guesses): that reading waits for the endpoint instead.
            events += self._commit(words, max(words[-1].end, self._vad.speech_end / RATE_HZ))
            words = []
        elif pausing:
            # Nothing but silence can follow before the endpoint: keep this decode for it.
            self._schedule.hold(words)
        elif min(len(self._audio.context), _CONTEXT_S * RATE_HZ) + self._audio.samples \
                >= self._cfg.commit_min_audio_s * RATE_HZ:
            stable = self._stable_prefix(words)
            if len(stable) >= self._cfg.commit_min_words:
                # Cut at the earlier of the two word boundaries: Whisper's word times are
                # approximate, and a sliver of the committed word left in (the next decode
                # forces that word as its prefix anyway) costs less than clipping the next one.
                cut = min(stable[-1].end, words[len(stable)].start) if len(words) > len(stable) else stable[-1].end
                events += self._commit(stable, cut)
                words = words[len(stable):]
        self._previous = words
        if words:
            events.append(PartialTranscript(
                partial_id=self._text.next_partial_id(), utterance_id=self._text.utterance_id,
                text=join(words), t_start=round(words[0].start, 3), speaker=self._speaker))
        return events

    def finish(self):
        """End of the stream: the open utterance becomes final."""
        events = []
        for frame, probability in self._frames.drain():
            events += self._on_frame(frame, probability)
        if self._vad.in_speech:
            events += self._endpoint()
        return events

    @contextlib.contextmanager
    def _finals_as_partials(self, catch_up):
        """Within it, if `catch_up`, a decode that becomes a final is made as a partial's is."""
        self._catching_up = catch_up
        try:
            yield
        finally:
            self._catching_up = False

    def _voiced_open(self):
        """True while voiced audio is left that no final holds yet."""
        return self._vad.speech_end > self._audio.start

    def _stable_prefix(self, words):
        """The words to commit now: those two consecutive decodes agree on (LocalAgreement-2),
        that end clear of the audio's end, with every word sure enough and the last one nearly
        sure (or heard long enough ago)."""
        cfg = self._cfg
        audio_end = self._audio.end / RATE_HZ
        agreed = before(agreement(self._previous, words), audio_end - cfg.commit_guard_s)
        return sure_prefix(agreed, cfg.commit_min_confidence, cfg.commit_last_min_confidence,
                           audio_end - cfg.commit_settled_s)

    # -- segmentation ------------------------------------------------------------------------

    def _on_frame(self, frame, probability):
        kind, opening = self._vad.take(frame, probability)
        if kind is Frame.IDLE:
            return []
        if kind is Frame.OPENED:
            self._open_utterance(*opening)
            return []
        self._audio.append(frame)
        if kind is Frame.VOICED:
            self._schedule.voiced(len(frame))
        if self._vad.ended():
            return self._endpoint()
        if self._audio.samples >= self._cfg.max_utterance_s * RATE_HZ:
            return self._commit_long()
        return []

    def _open_utterance(self, start, frames):
        """A VAD segment opens at session sample `start` with `frames` (pre-roll and the first voiced one)."""
        self._audio.open(start, self._text.open_turn(start / RATE_HZ))
        for frame in frames:
            self._audio.append(frame)
        self._schedule.opened(len(frames[-1]))
        self._previous, self._speaker = [], None
        self._text.next_utterance()

    # -- decoding and emitting ---------------------------------------------------------------

    def _decode_checked(self, final):
        """`_decode`, retried once the long way when its reading looks cut short.

        Audio that starts inside a word, or a prompt ending in a misrecognised word, can make
        Whisper stop after a word or two although the voice goes on; a forced prefix that holds
        a misreading can make it read on from that text instead of the audio. When the reading
        has far fewer words than the last partial, or ends over a second before the voice did,
        the audio is decoded again in a 10 s window without the prompt and without forcing the
        prefix (up to 1 s of its audio is still in front, and the words Whisper reads there are
        dropped as committed), and the fuller reading kept.
        """
        reading = self._decode(final)
        words = reading.words
        speech_end_s = self._vad.speech_end / RATE_HZ
        voiced_s = speech_end_s - self._audio.start / RATE_HZ
        cut_short = voiced_s > _RETRY_AFTER_S and (not words or words[-1].end < speech_end_s - _RETRY_AFTER_S)
        if cut_short or len(words) < len(self._previous) // 2:
            retry = self._decode(final, with_text=False, min_window_s=_RETRY_WINDOW_S)
            reading = retry if len(retry.words) > len(words) else reading
        return reading

    def _decode(self, final, with_text=True, min_window_s=MIN_WINDOW_S):
        """A `_Reading` of the uncommitted audio; `final`: its words become finals at once (decoded
        with the finals' beam, window and context unless the worker is catching up).

        The last committed words (up to 1 s of them, or `final_context_s` for a final) are
        decoded again in front of the open audio as a forced prefix, so Whisper never starts
        inside a word nor skips what it hears first; only the words after that prefix come
        back. The prompt holds the session's words before them. `with_text=False`: neither
        prompt nor forced prefix, the audio alone (with up to 1 s of the committed audio in
        front, so that it does not start inside a word).
        """
        cfg = self._cfg
        if final and self._catching_up:
            self._catch_up_decodes += 1
        beam_size, context_cap_s, window_floor_s = (cfg.final_beam_size, cfg.final_context_s, cfg.final_window_s) \
            if final and not self._catching_up else (1, _CONTEXT_S, MIN_WINDOW_S)
        context_cap_s = context_cap_s if with_text else min(context_cap_s, _CONTEXT_S)
        cut_s = self._audio.start / RATE_HZ
        prefix = self._text.committed_since(cut_s - min(len(self._audio.context) / RATE_HZ, context_cap_s))
        context = self._audio.context_from(prefix[0].start) if prefix else np.zeros(0, np.float32)
        prompt, forced = (" ".join(self._text.prompt(len(prefix))), join(prefix)) if with_text else ("", "")
        piece = self._audio.audio(self._vad.speech_end + int(_TRAILING_S * RATE_HZ))
        offset = cut_s - len(context) / RATE_HZ
        speech_end_s = self._vad.speech_end / RATE_HZ
        hypothesis = self._asr.recognize(
            np.concatenate([context, piece]), self._language, prompt, forced,
            max(min_window_s, window_floor_s), beam_size=beam_size, speech_end_s=speech_end_s - offset)
        words = unhyphened(heard_words(hypothesis.words, offset, cut_s, speech_end_s))
        spoken = self._vad.voice.spoken
        words = drop_replays(self._text.history(), drop_echo(words, spoken), spoken)
        last_kept = bool(words) and words[-1].word == hypothesis.words[-1].text.strip()
        return _Reading(words, hypothesis.end_probability if last_kept else None)

    def _endpoint(self):
        """Silence long enough: decode what is left of the utterance and close it."""
        events = []
        if self._vad.enough_speech() and self._voiced_open():
            words = self._schedule.held
            if words is None:
                words = self._decode_checked(final=True).words
            if words:
                events += self._commit(words, None)
        if self._speaker is not None and self._audio.has_segment():
            self._unlearned = (self._speaker, self._audio.segment_audio())
        self._vad.close()
        self._frames.forget()
        self._audio.close()
        self._text.close_turn()
        self._previous, self._speaker = [], None
        self._schedule.drop()
        return events

    def _commit_long(self):
        """The utterance reached its maximum length: commit all but its last second of words."""
        words = self._decode(final=True).words
        piece_end = self._audio.end / RATE_HZ
        keep = [w for w in words if w.end <= piece_end - _LONG_UTTERANCE_TAIL_S] or words[:-1]
        if keep:
            self._previous = []
            return self._commit(keep, words[len(keep)].start if len(words) > len(keep) else keep[-1].end)
        # No word to commit in a whole utterance's length: keep only the last second of it.
        self._audio.cut(piece_end - _LONG_UTTERANCE_TAIL_S)
        return []

    def _commit(self, words, cut_s):
        """Emit `words` as a final of the current utterance; drop the audio before `cut_s` (None: all)."""
        if self._speaker is None:
            self._speaker = self._speakers.assign(self._audio.segment_audio())
        final = self._text.final(words, self._speaker, self._audio.between(words[0].start, words[-1].end))
        self._schedule.drop()
        if cut_s is not None:
            self._audio.cut(cut_s)
            self._text.next_utterance()
        return [final]

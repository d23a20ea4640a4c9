"""One session's streaming recognition: VAD endpointing, partials, early commits of a stable prefix, finals.

Borrowed from whisper_streaming's shape (insert audio / process / finish) with two changes
that cut latency on a small CPU: utterances are cut by VAD, so Whisper only ever sees the
speech of the current utterance; and words on which two consecutive partial hypotheses
agree (LocalAgreement-2) are emitted at once as their own `final_transcript`, the audio
behind them is dropped, and the rest of the utterance goes on under a new utterance id.
A reading that ends a sentence once the voice has paused is final without waiting for the
endpoint. The finals of a session read, in order, as the whole of what was said: the next
decode, in the same turn or the next, starts on the last committed words again, forced as
the decoder's prefix, and returns only what follows them; a decode that reads committed
words again anyway (a replay) loses them. A decode whose words become finals at once sees
more than a partial: the turn's committed audio and a wider window, and it searches a beam.
"""
import functools
import re
from collections import deque
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from client.events import FinalTranscript, PartialTranscript, Word

from ..audio import TARGET_RATE_HZ as RATE_HZ
from .asr import MIN_WINDOW_S
from .vad import SileroFrames

# Words a decode reads again from what the session already emitted are a replay candidate:
# leading words that continue into the emitted tail (3 or more), or a leading or trailing run
# of 4 or more that repeats any run of the last 40 emitted words. A candidate is dropped only
# when the audio under it holds too little voice for its words (`_VOICED_S_PER_WORD`): a
# person who says the same thing again is heard saying it, a model that loops is not.
_REPLAY_HISTORY_WORDS = 40
_REPLAY_MIN_AT_TAIL = 3
_REPLAY_MIN_ANYWHERE = 4
# Voiced audio (VAD) a run of words needs under its time span, per word, to count as said.
# People say 2-4 words a second; a replayed run sits squeezed against the cut or over the
# trailing silence, with far less voice under it.
_VOICED_S_PER_WORD = 0.12
# How long the per-frame voice record reaches back.
_VOICE_LOG_S = 60.0
# How alike two spellings of a word ("thru", "through") and two readings of a run must be.
_SAME_WORD_SIMILARITY = 0.7
_SAME_RUN_SIMILARITY = 0.85
# The session's last words (the forced prefix aside) are the prompt of every decode, as
# Whisper conditions on the previous text offline.
_PROMPT_WORDS = 24


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    """How speech is cut into utterances and how often partials are decoded.

    Fields without a default are settings: app.speech.settings builds them from app.config.
    """

    vad_threshold: float
    end_silence_s: float
    min_speech_s: float
    max_utterance_s: float
    partial_interval_s: float
    pre_roll_s: float = 0.2
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
    # "laptops") and waits for the next decode. Chosen on the tuning sets (0.8, 0.9, 0.95
    # tried), checked on the held-out ones.
    commit_last_min_confidence: float = 0.95
    # After this much silence the open utterance is decoded ahead of its endpoint. A reading
    # that ends a sentence (. ? !) is final at once; any other is kept for the endpoint, so
    # its final goes out as soon as the endpoint is confirmed instead of a decode later.
    sentence_end_silence_s: float
    # Decodes whose words become finals at once (in a pause, at the endpoint, at the maximum
    # length) use a beam this wide; partials, whose agreed words are held to a second reading,
    # stay greedy.
    final_beam_size: int
    # Those decodes also see up to this much of the turn's committed audio (partials: 1 s) in a
    # window of at least this long (partials: 3 s): Whisper reads the end of a sentence better
    # with its start in view, and in a short window a beam search often ends the text early.
    # Measured: 45 % fewer live errors, 0.18 s slower finals at the utterance end (P50).
    final_context_s: float
    final_window_s: int


# Once speech has started, a frame a little under the threshold still counts as speech,
# so a soft syllable does not end the utterance (hysteresis).
_HYSTERESIS = 0.15
# Words ending this close to the end of a too-long utterance are left for the next piece.
_LONG_UTTERANCE_TAIL_S = 1.0
# Audio decoded past the last voiced frame: enough for a soft word ending, not so much
# trailing silence that Whisper starts the sentence over (a classic hallucination).
_TRAILING_S = 0.25
# Committed audio decoded again in front of the open audio, so a decode never starts mid-word.
_CONTEXT_S = 1.0
# A reading that ends this long before the voice did is retried in a window this long.
_RETRY_AFTER_S = 1.0
_RETRY_WINDOW_S = 10
# Carried context and the next turn are joined with this much silence between them.
_CARRY_GAP_S = 0.3
# Speaker embeddings use at most this much of the latest speech.
_SPEAKER_AUDIO_S = 10.0


class SessionRecognizer:
    """Streaming recognition of one session; synchronous, runs in a worker process."""

    def __init__(self, recognizer, speakers, language="en", *, settings):
        self._asr = recognizer
        self._speakers = speakers
        self._language = language
        self._cfg = settings
        self._final_audio = {}
        self._frames = SileroFrames()
        self._position = 0  # samples the VAD has consumed: session time of the next frame
        self._preroll = deque()
        self._in_speech = False
        self._piece = []  # frames of the utterance's audio not yet committed
        self._piece_start = 0
        self._context = np.zeros(0, np.float32)  # the committed audio just before the piece
        self._segment = deque()  # recent frames of this VAD segment, for the speaker
        self._speech_samples = 0
        self._silence_samples = 0
        self._speech_end = 0  # session sample just after the last voiced frame
        self._since_partial = 0
        self._previous = []  # the last partial's uncommitted words, session times
        self._committed = []  # words committed in this VAD segment
        self._said = deque(maxlen=_REPLAY_HISTORY_WORDS)  # the session's last emitted words
        self._voice_log = deque()  # (first sample, samples, voiced) of recent frames
        self._speaker = None
        self._carry = None  # (audio, words) of the last final's last second, context for the next turn
        self._unlearned = None  # (speaker, audio) of the last finished turn, for `learn_speaker`
        self._speculative = None  # words decoded during the current silence, reused at its endpoint
        self._utterances = 0
        self._utterance_id = None
        self._partials = 0

    @property
    def analysed_s(self):
        """Session audio consumed so far, in seconds."""
        return self._position / RATE_HZ

    def feed(self, samples):
        """Take the next samples; events for every utterance they complete (never partials)."""
        events = []
        for frame, probability in self._frames.push(samples):
            events += self._on_frame(frame, probability)
        return events

    def learn_speaker(self):
        """Fold the last finished turn into its speaker's voice print; called once its final is out."""
        if self._unlearned is not None:
            self._speakers.learn(*self._unlearned)
            self._unlearned = None

    def take_audio(self, utterance_id):
        """The samples behind a final this recognizer emitted, once (for the analytics stages)."""
        return self._final_audio.pop(utterance_id, np.zeros(0, np.float32))

    def wants_partial(self):
        """True when a decode is due: enough new speech since the last one, or a pause began."""
        if not self._in_speech or not self._voiced_open():
            return False
        if self._pausing() and self._speculative is None:
            return True
        return self._since_partial >= self._cfg.partial_interval_s * RATE_HZ

    def partial(self):
        """Decode the open utterance: a partial, preceded by a final for any stable prefix."""
        self._since_partial = 0
        pausing = self._pausing()  # a decode in a pause may be the utterance's last: it gets the beam
        words = self._decode_checked(final=pausing)
        events = []
        if pausing and _ends_sentence(words):
            # The voice stopped and Whisper reads a whole sentence: that is the utterance's end.
            # Should the speaker go on, the next utterance starts here with this as its context.
            events += self._commit(words, max(words[-1].end, self._speech_end / RATE_HZ))
            words = []
        elif pausing:
            # Nothing but silence can follow before the endpoint: keep this decode for it.
            self._speculative = words
        elif min(len(self._context), _CONTEXT_S * RATE_HZ) + self._piece_samples() \
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
            self._partials += 1
            events.append(PartialTranscript(
                partial_id=f"{self._utterance_id}_p{self._partials}", utterance_id=self._utterance_id,
                text=_join(words), t_start=round(words[0].start, 3), speaker=self._speaker))
        return events

    def _pausing(self):
        return self._silence_samples >= self._cfg.sentence_end_silence_s * RATE_HZ

    def _voiced_open(self):
        """True while voiced audio is left that no final holds yet."""
        return self._speech_end > self._piece_start

    def _stable_prefix(self, words):
        """The words to commit now: those two consecutive decodes agree on (LocalAgreement-2).

        Committing words after one decode when they end well before the audio's end was
        measured too: it cut word-to-final latency by about 0.2 s but tripled the WER on
        pitch-shifted and robotic voices, whose short first guesses are often wrong.
        """
        audio_end = (self._piece_start + self._piece_samples()) / RATE_HZ
        agreed = _before(_agreement(self._previous, words), audio_end - self._cfg.commit_guard_s)
        unsure = next((i for i, w in enumerate(agreed) if w.confidence < self._cfg.commit_min_confidence), None)
        agreed = agreed if unsure is None else agreed[:unsure]
        while agreed and agreed[-1].confidence < self._cfg.commit_last_min_confidence:
            agreed = agreed[:-1]
        return agreed

    def finish(self):
        """End of the stream: the open utterance becomes final."""
        events = []
        for frame, probability in self._frames.drain():
            events += self._on_frame(frame, probability)
        if self._in_speech:
            events += self._endpoint()
        return events

    # -- segmentation ------------------------------------------------------------------------

    def _on_frame(self, frame, probability):
        events = []
        n = len(frame)
        threshold = self._cfg.vad_threshold - (_HYSTERESIS if self._in_speech else 0.0)
        self._voice_log.append((self._position, n, probability >= threshold))
        while self._voice_log and self._voice_log[0][0] < self._position - _VOICE_LOG_S * RATE_HZ:
            self._voice_log.popleft()
        if not self._in_speech:
            if probability >= self._cfg.vad_threshold:
                self._open_utterance(frame)
            else:
                self._preroll.append(frame)
                while sum(len(f) for f in self._preroll) > self._cfg.pre_roll_s * RATE_HZ:
                    self._preroll.popleft()
        else:
            self._append(frame)
            if probability >= self._cfg.vad_threshold - _HYSTERESIS:
                self._silence_samples = 0
                self._speech_end = self._position + n
                self._speculative = None
                self._speech_samples += n
                self._since_partial += n
            else:
                self._silence_samples += n
            if self._silence_samples >= self._cfg.end_silence_s * RATE_HZ:
                events += self._endpoint()
            elif self._piece_samples() >= self._cfg.max_utterance_s * RATE_HZ:
                events += self._commit_long()
        self._position += n
        return events

    def _open_utterance(self, frame):
        preroll = list(self._preroll)
        self._preroll.clear()
        self._in_speech = True
        self._piece = []
        self._context = np.zeros(0, np.float32)
        self._piece_start = self._position - sum(len(f) for f in preroll)
        self._segment.clear()
        for f in preroll:
            self._append(f)
        self._append(frame)
        self._speech_samples = self._since_partial = len(frame)
        self._silence_samples = 0
        self._speech_end = self._position + len(frame)
        self._previous, self._committed, self._speaker = [], self._carried_words(), None
        self._next_utterance()

    def _carried_words(self):
        """The previous turn's last words and their audio, placed just before this turn as context.

        Whisper reads a voice better with some of it before the words in question; the carried
        words are the forced prefix of the turn's first decode, so they never come back.
        """
        if self._carry is None:
            return []
        audio, words = self._carry
        shift = self._piece_start / RATE_HZ - _CARRY_GAP_S - words[-1].end
        self._context = np.concatenate([audio, np.zeros(int(_CARRY_GAP_S * RATE_HZ), np.float32)])
        return [Word(w.word, w.start + shift, w.end + shift, w.confidence) for w in words]

    def _append(self, frame):
        self._piece.append(frame)
        self._segment.append(frame)
        while len(self._segment) > 1 and sum(len(f) for f in self._segment) > _SPEAKER_AUDIO_S * RATE_HZ:
            self._segment.popleft()

    def _piece_samples(self):
        return sum(len(f) for f in self._piece)

    def _next_utterance(self):
        self._utterances += 1
        self._utterance_id = f"utt_{self._utterances:04d}"
        self._partials = 0

    # -- decoding and emitting ---------------------------------------------------------------

    def _decode_checked(self, final):
        """`_decode`, retried once the long way when its reading looks cut short.

        Audio that starts inside a word, or a prompt ending in a misrecognised word, can make
        Whisper stop after a word or two although the voice goes on. When the reading has far
        fewer words than the last partial, or ends over a second before the voice did, the
        audio is decoded again in a 10 s window without the prompt, and the fuller reading kept.
        """
        words = self._decode(final)
        speech_end_s = self._speech_end / RATE_HZ
        voiced_s = speech_end_s - self._piece_start / RATE_HZ
        cut_short = voiced_s > _RETRY_AFTER_S and (not words or words[-1].end < speech_end_s - _RETRY_AFTER_S)
        if cut_short or len(words) < len(self._previous) // 2:
            retry = self._decode(final, with_prompt=False, min_window_s=_RETRY_WINDOW_S)
            words = retry if len(retry) > len(words) else words
        return words

    def _decode(self, final, with_prompt=True, min_window_s=MIN_WINDOW_S):
        """Words of the uncommitted audio, in session seconds; `final`: they become finals at once.

        The last committed words (up to 1 s of them, or `final_context_s` for a final) are
        decoded again in front of the open audio as a forced prefix, so Whisper never starts
        inside a word nor skips what it hears first; only the words after that prefix come
        back. The prompt holds the session's words before them.
        """
        cfg = self._cfg
        beam_size, context_cap_s, window_floor_s = (cfg.final_beam_size, cfg.final_context_s, cfg.final_window_s) \
            if final else (1, _CONTEXT_S, MIN_WINDOW_S)
        cut_s = self._piece_start / RATE_HZ
        context_s = min(len(self._context) / RATE_HZ, context_cap_s)
        recent = [w for w in self._committed if w.start >= cut_s - context_s]
        context = self._context[len(self._context) - int((cut_s - recent[0].start) * RATE_HZ):] \
            if recent else np.zeros(0, np.float32)
        said = list(self._said)[-_PROMPT_WORDS:]
        older = said[:max(0, len(said) - len(recent))] if with_prompt else []
        piece = np.concatenate(self._piece) if self._piece else np.zeros(0, np.float32)
        piece = piece[:max(0, self._speech_end - self._piece_start + int(_TRAILING_S * RATE_HZ))]
        offset = cut_s - len(context) / RATE_HZ
        speech_end_s = self._speech_end / RATE_HZ
        hypothesis = self._asr.recognize(
            np.concatenate([context, piece]), self._language, " ".join(older), _join(recent),
            max(min_window_s, window_floor_s), beam_size=beam_size, speech_end_s=speech_end_s - offset)
        words = _unhyphened(_heard_words(hypothesis.words, offset, cut_s, speech_end_s))
        return _drop_replays([_norm(word) for word in self._said], _drop_echo(words, self._spoken), self._spoken)

    def _spoken(self, run):
        """True when the audio under the words `run` holds voice enough for them to have been said."""
        start, end = int(run[0].start * RATE_HZ), int(run[-1].end * RATE_HZ)
        voiced = sum(max(0, min(end, first + n) - max(start, first))
                     for first, n, voice in self._voice_log if voice and first < end and first + n > start)
        return voiced >= _VOICED_S_PER_WORD * len(run) * RATE_HZ

    def _endpoint(self):
        """Silence long enough: decode what is left of the utterance and close it."""
        events = []
        if self._speech_samples >= self._cfg.min_speech_s * RATE_HZ and self._voiced_open():
            words = self._speculative
            if words is None:
                words = self._decode_checked(final=True)
            if words:
                events += self._commit(words, None)
        if self._speaker is not None and self._segment:
            self._unlearned = (self._speaker, np.concatenate(self._segment))
        self._in_speech = False
        self._piece, self._previous, self._committed, self._speaker = [], [], [], None
        self._speculative = None
        self._segment.clear()
        return events

    def _commit_long(self):
        """The utterance reached its maximum length: commit all but its last second of words."""
        words = self._decode(final=True)
        piece_end = (self._piece_start + self._piece_samples()) / RATE_HZ
        keep = [w for w in words if w.end <= piece_end - _LONG_UTTERANCE_TAIL_S] or words[:-1]
        if keep:
            self._previous = []
            return self._commit(keep, words[len(keep)].start if len(words) > len(keep) else keep[-1].end)
        # No word to commit in a whole utterance's length: keep only the last second of it.
        self._cut(piece_end - _LONG_UTTERANCE_TAIL_S)
        return []

    def _commit(self, words, cut_s):
        """Emit `words` as a final of the current utterance; drop the audio before `cut_s` (None: all)."""
        self._said.extend(w.word for w in words)
        if self._speaker is None:
            self._speaker = self._speakers.assign(np.concatenate(self._segment))
        audio = np.concatenate(self._piece) if self._piece else np.zeros(0, np.float32)
        start, end = words[0].start, words[-1].end
        offset = self._piece_start
        segment_audio = audio[max(0, int(start * RATE_HZ) - offset):max(0, int(end * RATE_HZ) - offset)]
        final = FinalTranscript(
            utterance_id=self._utterance_id, speaker=self._speaker, t_start=round(start, 3),
            t_end=round(end, 3), text=_join(words),
            confidence=round(float(np.mean([w.confidence for w in words])), 3),
            words=[Word(w.word, round(w.start, 3), round(w.end, 3), round(w.confidence, 3)) for w in words])
        self._committed += words
        self._speculative = None
        self._final_audio[final.utterance_id] = segment_audio
        tail = [w for w in words if w.start >= end - _CONTEXT_S] or words[-1:]
        self._carry = (segment_audio[max(0, int((tail[0].start - start) * RATE_HZ)):], tail)
        if cut_s is not None:
            self._cut(cut_s)
            self._next_utterance()
        return [final]

    def _cut(self, cut_s):
        """Drop the open utterance's audio before session time `cut_s`, keeping its end as context."""
        drop = int(cut_s * RATE_HZ) - self._piece_start
        if drop <= 0:
            return
        audio = np.concatenate(self._piece)
        keep_s = max(_CONTEXT_S, self._cfg.final_context_s)
        self._context = np.concatenate([self._context, audio[:drop]])[-int(keep_s * RATE_HZ):]
        self._piece = [audio[drop:]] if len(audio) > drop else []
        self._piece_start += drop


def _agreement(previous, current):
    """The longest common prefix of two hypotheses, compared word by word after normalising."""
    agreed = []
    for a, b in zip(previous, current):
        if _norm(a.word) != _norm(b.word):
            break
        agreed.append(b)
    return agreed


def _heard_words(hypothesis_words, offset_s, cut_s, speech_end_s):
    """The decoded words that belong to the open audio, as session `Word`s.

    A word that starts after the voice stopped was invented, not heard. One that ends by the
    cut lies wholly in the committed audio: Whisper read a committed word again ("by
    Wednesday." then "Wednesday, Wednesday, our website…"), too short a run for
    `_drop_replays` to call it a replay. A word across the cut keeps its text, starting at it.
    """
    return [Word(word=w.text.strip(), start=max(cut_s, w.start + offset_s), end=w.end + offset_s,
                 confidence=w.probability)
            for w in hypothesis_words
            if _norm(w.text) and cut_s < w.end + offset_s and w.start + offset_s < speech_end_s]


def _unhyphened(words):
    """The decode's first word without a leading hyphen: it continues a committed word
    ("ill" committed, then "-disposed"), and alone it is no word at all."""
    if words and words[0].word.startswith("-") and words[0].word.strip("-"):
        first = words[0]
        return [Word(first.word.lstrip("-"), first.start, first.end, first.confidence)] + words[1:]
    return words


def _drop_echo(words, spoken):
    """Drop a tail that repeats the hypothesis's own first words (Whisper restarting the sentence)
    unless `spoken(tail)` says the voice under it said them again."""
    norms = [_norm(w.word) for w in words]
    for k in range(len(words) // 2, 1, -1):
        if norms[-k:] == norms[:k] and not spoken(words[-k:]):
            return words[:-k]
    return words


def _drop_replays(said, words, spoken):
    """Drop the words a decode reads again from `said`, the session's last emitted words (normalised).

    Decoding behind a forced prefix of committed words, with older ones as the prompt, Whisper
    sometimes reads committed text once more (spelled a little differently: "thru" for
    "through"): at the start of a decode, continuing into what was just emitted, or as a loop
    at its end over the trailing silence. Such a run is dropped, so nothing is emitted twice,
    unless `spoken(run)` finds the voice to have said it: a speaker who repeats a sentence,
    or goes on with words of the last one ("he might have been made ..." then "he might even
    have been made ..."), is transcribed, since losing words is worse than a doubled run.
    """
    norms = [_norm(w.word) for w in words]
    lead = 0
    for k in range(min(len(norms), len(said)), _REPLAY_MIN_AT_TAIL - 1, -1):
        if _same_run(said[-k:], norms[:k]) or (k >= _REPLAY_MIN_ANYWHERE and _inside(norms[:k], said)):
            lead = 0 if spoken(words[:k]) else k
            break
    for j in range(lead, len(norms) - _REPLAY_MIN_ANYWHERE + 1):
        if _inside(norms[j:], said + norms[lead:j]) and not spoken(words[j:]):
            return words[lead:j]
    return words[lead:]


def _inside(run, history):
    """True when `run` nearly matches some stretch of `history`, give or take a word."""
    return any(_same_run(history[i:i + n], run)
               for n in (len(run) - 1, len(run), len(run) + 1) for i in range(len(history) - n + 1))


def _same_run(a, b):
    """Two word runs that say the same: same first and last word, text 85 % alike.

    Compared as text, so a re-reading that splits or joins words ("account aim" and
    "accounting") still matches.
    """
    if not a or not b or not (_same_word(a[0], b[0]) and _same_word(a[-1], b[-1])):
        return False
    return SequenceMatcher(None, " ".join(a), " ".join(b)).ratio() >= _SAME_RUN_SIMILARITY


@functools.lru_cache(maxsize=4096)
def _same_word(a, b):
    return a == b or SequenceMatcher(None, a, b).ratio() >= _SAME_WORD_SIMILARITY


def _ends_sentence(words):
    return bool(words) and words[-1].word.rstrip("\"')]”").endswith((".", "?", "!"))


def _before(words, limit_s):
    """The leading words that end by `limit_s`."""
    out = []
    for word in words:
        if word.end > limit_s:
            break
        out.append(word)
    return out


def _norm(text):
    return re.sub(r"[^\w']+", "", text.lower())


def _join(words):
    return " ".join(w.word for w in words).strip()

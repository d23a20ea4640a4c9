"""A recorded file analysed as one offline job inside a speech worker.

A whole file needs none of the live path's compromises. Silero VAD reads the whole file and
cuts it into utterances at pauses; each utterance is decoded once, whole, in a window that
holds all of it, by a beam search with the previous words as prompt; speakers are clustered
once every utterance has been heard (not online, turn by turn); then the analytics run over
the utterances in order, exactly as they do for live finals.

The job is a generator of steps, each a bounded piece of work (a minute of audio decoded, one
utterance recognised, a batch of utterances analysed), so the worker serves its live sessions
between two steps and a cancel takes effect at the next one.
"""
import dataclasses
from dataclasses import dataclass

import numpy as np

from client.events import FinalTranscript, Status, Word

from ..audio.recording import RecordingReader

from .asr import MAX_WINDOW_S
from .diarization import MAX_SPEAKERS, MIN_NEW_SPEAKER_S
from .vad import RATE_HZ, SileroFrames

# Utterances longer than this are split at their quietest pause so each fits one window.
MAX_UTTERANCE_S = MAX_WINDOW_S - 5
# Audio kept before the first and after the last voiced frame of an utterance.
PRE_ROLL_S = 0.2
TRAILING_S = 0.25
# Emotion and cognitive analysis of this many utterances make one step.
ANALYTICS_BATCH = 16
# The session's last words are the prompt of each decode, as Whisper conditions offline.
PROMPT_WORDS = 24
# Shares of the progress bar: decoding and VAD, recognition, then analytics.
_DECODE_SHARE, _ASR_SHARE = 0.1, 0.8


@dataclass
class Segment:
    """One utterance of the file: its place, then what recognition and the speaker encoder found."""

    start: int  # samples from the start of the file
    end: int
    words: tuple = ()
    embedding: object = None
    speaker: int = 0

    @property
    def duration_s(self):
        return (self.end - self.start) / RATE_HZ


class FileJob:
    """One file's analysis; `steps()` yields the events of each step, in the catalog's order."""

    def __init__(self, models, context, path, endpointing, speaker_similarity, max_audio_s):
        """`endpointing` is the worker's EndpointSettings: the VAD's threshold and pauses, and
        the beam and window of decodes whose words are final, serve a file as they serve a
        live session."""
        self.context = context
        self.analysed_s = 0.0
        self._models = models
        self._path = path
        self._cfg = endpointing
        self._speaker_similarity = speaker_similarity
        self._max_audio_s = max_audio_s

    def steps(self):
        """Decode and cut, recognise each utterance, cluster the speakers, analyse, summarise."""
        reader = RecordingReader(self._path, self._max_audio_s)
        frames = SileroFrames()
        pieces, probabilities = [], []
        for samples in reader.blocks():
            pieces.append(samples)
            probabilities.extend(p for _, p in frames.push(samples))
            yield [self._status(_DECODE_SHARE * reader.progress(), f"decoded {reader.decoded_s:.0f} s")]
        probabilities.extend(p for _, p in frames.drain())
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        del pieces
        self.duration_s = len(audio) / RATE_HZ
        segments = cut_utterances(np.asarray(probabilities, np.float32), frames.frame_samples,
                                  len(audio), self._cfg)
        yield [self._decoded_status(reader, len(segments))]

        said = []
        for index, segment in enumerate(segments):
            segment.words = self._recognise(audio, segment, said)
            said.extend(w.word for w in segment.words)
            if segment.words:
                segment.embedding = self._embed(audio, segment)
            self.analysed_s = segment.end / RATE_HZ
            share = _DECODE_SHARE + _ASR_SHARE * (index + 1) / len(segments)
            yield [self._status(share, f"recognised {index + 1} of {len(segments)} utterances")]

        heard = [s for s in segments if s.words]
        assign_speakers(heard, self._speaker_similarity)
        finals = [self._final(i, s) for i, s in enumerate(heard, start=1)]
        self.analysed_s = self.duration_s
        analytics = self._analytics()
        for batch_start in range(0, len(finals), ANALYTICS_BATCH):
            events = []
            for final in finals[batch_start:batch_start + ANALYTICS_BATCH]:
                events.append(final)
                if analytics is not None:
                    events.extend(analytics.on_final(_utterance(final, audio)))
            yield events
        self.closing = [analytics.summary(final=True)] if analytics is not None else []

    def _recognise(self, audio, segment, said):
        """The words of one utterance, in seconds from the start of the file."""
        hypothesis = self._models.asr.recognize(
            audio[segment.start:segment.end], language=self.context.language or "en",
            prompt=" ".join(said[-PROMPT_WORDS:]), min_window_s=self._cfg.final_window_s,
            beam_size=self._cfg.final_beam_size)
        offset = segment.start / RATE_HZ
        return tuple(Word(w.text.strip(), round(w.start + offset, 3), round(w.end + offset, 3),
                          round(w.probability, 3)) for w in hypothesis.words if w.text.strip())

    def _embed(self, audio, segment):
        if segment.duration_s < 0.3:
            return None
        return self._models.speakers.embed(audio[segment.start:segment.end])

    def _final(self, number, segment):
        words = list(segment.words)
        return FinalTranscript(
            utterance_id=f"utt_{number:04d}", speaker=f"Speaker_{segment.speaker}",
            t_start=words[0].start, t_end=words[-1].end, text=" ".join(w.word for w in words),
            confidence=round(float(np.mean([w.confidence for w in words])), 3), words=words)

    def _analytics(self):
        if self._models.analytics is None:
            return None
        from ..analytics import ConversationAnalytics
        return ConversationAnalytics(self.context, self._models.analytics)

    def _status(self, progress, detail):
        return Status(phase="processing", progress=round(min(progress, 1.0), 3),
                      audio_seconds=round(self.analysed_s, 3), detail=detail)

    def _decoded_status(self, reader, utterances):
        """The status that says how much of the file decoded, and whether it ended early."""
        status = self._status(_DECODE_SHARE, f"decoded {self.duration_s:.1f} s of audio; "
                                              f"{utterances} utterances to recognise")
        status.audio_seconds = round(self.duration_s, 3)
        status.extra = {"decoded_seconds": round(self.duration_s, 3), "truncated": reader.truncated}
        if reader.truncated:
            status.detail += f"; the file ends early ({reader.truncation}): analysed as far as it decodes"
        return status


def cut_utterances(probabilities, frame_samples, total_samples, settings):
    """Utterances from per-frame speech probabilities: voiced runs joined across short pauses.

    `settings` is an EndpointSettings (threshold, end silence, shortest speech).
    """
    voiced = probabilities >= settings.vad_threshold
    gap_frames = int(round(settings.end_silence_s * RATE_HZ / frame_samples))
    runs, start, last = [], None, None
    for index in np.flatnonzero(voiced).tolist():
        if start is None:
            start = last = index
        elif index - last > gap_frames:
            runs.append((start, last))
            start = last = index
        else:
            last = index
    if start is not None:
        runs.append((start, last))
    segments = []
    for first, final in runs:
        if (final - first + 1) * frame_samples < settings.min_speech_s * RATE_HZ:
            continue
        begin = max(0, first * frame_samples - int(PRE_ROLL_S * RATE_HZ))
        end = min(total_samples, (final + 1) * frame_samples + int(TRAILING_S * RATE_HZ))
        segments.extend(_split_long(begin, end, probabilities, frame_samples))
    return segments


def _split_long(begin, end, probabilities, frame_samples):
    """[Segment] covering [begin, end), cut at the quietest frame until each fits one window."""
    limit = int(MAX_UTTERANCE_S * RATE_HZ)
    if end - begin <= limit:
        return [Segment(begin, end)]
    # Look for the cut in the middle half, so neither side is left tiny.
    low = (begin + (end - begin) // 4) // frame_samples
    high = (end - (end - begin) // 4) // frame_samples
    cut = int(low + np.argmin(probabilities[low:high])) * frame_samples
    return (_split_long(begin, cut, probabilities, frame_samples)
            + _split_long(cut, end, probabilities, frame_samples))


def assign_speakers(segments, threshold):
    """Label every segment with a speaker index, clustering the voices of the whole file at once.

    Segments long enough to carry a voice print are clustered bottom-up: the two most alike
    clusters (cosine similarity of duration-weighted centroids) merge while they are alike
    beyond `threshold`, or while there are more than MAX_SPEAKERS. Shorter segments then join
    the nearest cluster. Indices follow the order in which speakers first talk.
    """
    anchors = [s for s in segments if s.embedding is not None and s.duration_s >= MIN_NEW_SPEAKER_S]
    if not anchors:
        for segment in segments:
            segment.speaker = 0
        return
    sums = np.stack([s.embedding * min(s.duration_s, 10.0) for s in anchors])
    members = [[i] for i in range(len(anchors))]
    alive = np.ones(len(anchors), bool)
    while alive.sum() > 1:
        units = sums / np.linalg.norm(sums, axis=1, keepdims=True)
        similarity = units @ units.T
        similarity[~alive, :] = -np.inf
        similarity[:, ~alive] = -np.inf
        np.fill_diagonal(similarity, -np.inf)
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < threshold and alive.sum() <= MAX_SPEAKERS:
            break
        sums[a] += sums[b]
        members[a] += members[b]
        alive[b] = False
    clusters = [i for i in np.flatnonzero(alive)]
    centroids = sums[clusters] / np.linalg.norm(sums[clusters], axis=1, keepdims=True)
    for position, index in enumerate(clusters):
        for member in members[index]:
            anchors[member].speaker = position
    for segment in segments:
        if segment.embedding is not None and segment.duration_s < MIN_NEW_SPEAKER_S:
            segment.speaker = int(np.argmax(centroids @ segment.embedding))
    # A stretch too short for any voice print belongs to whoever spoke just before (or after).
    known = [s.speaker for s in segments if s.embedding is not None]
    previous = known[0] if known else 0
    for segment in segments:
        if segment.embedding is None:
            segment.speaker = previous
        previous = segment.speaker
    first_heard = {}
    for segment in segments:
        first_heard.setdefault(segment.speaker, len(first_heard))
    for segment in segments:
        segment.speaker = first_heard[segment.speaker]


def _utterance(final, audio):
    from ..pipeline.base import Utterance
    fields = {f.name: getattr(final, f.name) for f in dataclasses.fields(Utterance) if f.name != "audio"}
    start, end = int(final.t_start * RATE_HZ), int(final.t_end * RATE_HZ)
    return Utterance(**fields, audio=audio[start:end])

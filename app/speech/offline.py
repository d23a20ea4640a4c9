"""A recorded file analysed as one job inside a speech worker.

The file is decoded from disk and fed, as fast as the worker reads it, to the same streaming
recognizer a live session uses (VAD endpointing, final decodes by a beam search over the
turn's audio with its committed words forced as the prefix), without partials: nobody is
waiting for them. Then what only a whole file allows: the speakers are clustered once every
utterance has been heard, instead of online turn by turn, and the analytics run over the
finals in order with the final labels. Measured on the bundled call repeated to a minute:
1.8–2.4 % WER, where each utterance decoded alone and whole read 3.5 % (docs/files.md has the
comparison, faster-whisper's whole-file `transcribe` included); on real held-out speech 5.5 %
clean, 7.8 % in the softphone band and 17.1 % in noise (docs/files.md, "On real human speech").

The job is a generator of steps, each a bounded piece of work (two seconds of audio
recognised, a batch of finals analysed), so the worker serves its live sessions between two
steps and a cancel takes effect at the next one.
"""
import dataclasses
from dataclasses import dataclass

import numpy as np

from client.events import FinalTranscript, Status

from ..audio import TARGET_RATE_HZ
from ..audio.recording import RecordingReader

from .analysis import FinalAnalysis
from .diarization import MAX_SPEAKERS, MIN_NEW_SPEAKER_S, OnlineSpeakers
from .streaming import SessionRecognizer

# Audio fed to the recognizer per step: a step then holds at most a couple of final decodes.
STEP_S = 2.0
# Emotion and cognitive analysis of this many finals make one step.
ANALYTICS_BATCH = 16
# Recognition is this share of the progress bar; the analytics are the rest.
_RECOGNITION_SHARE = 0.9
# A voice print needs this much speech.
MIN_VOICE_PRINT_S = 0.3
# Speakers are clustered on the longest finals, at most this many (the cost grows as the
# square); the others join the nearest speaker found.
MAX_ANCHORS = 600


@dataclass
class Segment:
    """One final's stretch of the file, its voice print, and the speaker it is given."""

    start: int  # samples from the start of the file
    end: int
    embedding: object = None
    speaker: int = 0

    @property
    def duration_s(self):
        return (self.end - self.start) / TARGET_RATE_HZ


class FileJob:
    """One file's analysis; `steps()` yields the events of each step, in the catalog's order."""

    def __init__(self, models, context, path, settings):
        """`settings` are the worker's WorkerSettings: a file is cut and decoded as a live session is."""
        self.context = context
        self.analysed_s = 0.0
        self.closing = []
        self._models = models
        self._path = path
        self._settings = settings

    def steps(self):
        """Recognise the file, cluster its speakers, analyse each final, summarise."""
        reader = RecordingReader(self._path, self._settings.max_file_audio_s)
        recognizer = SessionRecognizer(
            self._models.asr, OnlineSpeakers(self._models.speakers, self._settings.speaker_similarity),
            self.context.language or "en", settings=self._settings.endpointing)
        heard = []  # (final, its audio)
        step = int(STEP_S * TARGET_RATE_HZ)
        for block in reader.blocks():
            for start in range(0, len(block), step):
                self._take(recognizer, recognizer.feed(block[start:start + step]), heard)
                recognizer.learn_speaker()
                self.analysed_s = recognizer.analysed_s
                yield [self._status(_RECOGNITION_SHARE * reader.progress(),
                                    f"recognised {self.analysed_s:.0f} s")]
        self._take(recognizer, recognizer.finish(), heard)
        self.analysed_s = reader.decoded_s
        yield [self._decoded_status(reader, len(heard))]

        finals = self._relabel(heard)
        analysis = FinalAnalysis(self._models.analytics, self.context)
        for batch_start in range(0, len(finals), ANALYTICS_BATCH):
            events = []
            for final, audio in finals[batch_start:batch_start + ANALYTICS_BATCH]:
                events += [final, *analysis.after(final, audio)]
            yield events
        self.closing = analysis.closing()

    @staticmethod
    def _take(recognizer, events, heard):
        for event in events:
            if isinstance(event, FinalTranscript):
                heard.append((event, recognizer.take_audio(event.utterance_id)))

    def _relabel(self, heard):
        """The finals with their speakers clustered over the whole file."""
        segments = []
        for final, audio in heard:
            segment = Segment(int(final.t_start * TARGET_RATE_HZ), int(final.t_end * TARGET_RATE_HZ))
            if len(audio) >= MIN_VOICE_PRINT_S * TARGET_RATE_HZ:
                segment.embedding = self._models.speakers.embed(audio)
            segments.append(segment)
        assign_speakers(segments, self._settings.speaker_similarity)
        return [(dataclasses.replace(final, speaker=f"Speaker_{segment.speaker}"), audio)
                for (final, audio), segment in zip(heard, segments)]

    def _status(self, progress, detail):
        return Status(phase="processing", progress=round(min(progress, 1.0), 3),
                      audio_seconds=round(self.analysed_s, 3), detail=detail)

    def _decoded_status(self, reader, finals):
        """The status that says how much of the file decoded, and whether it ended early."""
        status = self._status(_RECOGNITION_SHARE, f"recognised {reader.decoded_s:.1f} s of audio "
                                                   f"in {finals} finals; analysing them")
        status.extra = {"decoded_seconds": round(reader.decoded_s, 3), "truncated": reader.truncated}
        if reader.truncated:
            status.detail += f"; the file ends early ({reader.truncation}): analysed as far as it decodes"
        return status


def assign_speakers(segments, threshold):
    """Label every segment with a speaker index, clustering the voices of the whole file at once.

    Segments long enough to carry a voice print (the longest MAX_ANCHORS of them) are
    clustered bottom-up by average linkage: the two clusters whose voice prints are most alike
    on average, pair by pair, merge while that average is above `threshold` (or while there
    are more than MAX_SPEAKERS). Average linkage, not centroids: two speakers' centroids grow
    more alike than any two of their turns as turns are averaged in, and similar voices
    merged over a long call. Shorter segments join the nearest cluster's centroid. Indices
    follow the order in which speakers first talk.
    """
    voiced = [s for s in segments if s.embedding is not None and s.duration_s >= MIN_NEW_SPEAKER_S]
    anchors = sorted(voiced, key=lambda s: -s.duration_s)[:MAX_ANCHORS]
    if not anchors:
        for segment in segments:
            segment.speaker = 0
        return
    prints = np.stack([s.embedding / np.linalg.norm(s.embedding) for s in anchors])
    pair_sums = prints @ prints.T  # summed similarity between the members of two clusters
    sizes = np.ones(len(anchors))
    members = [[i] for i in range(len(anchors))]
    alive = np.ones(len(anchors), bool)
    while alive.sum() > 1:
        average = pair_sums / np.outer(sizes, sizes)
        average[~alive, :] = -np.inf
        average[:, ~alive] = -np.inf
        np.fill_diagonal(average, -np.inf)
        a, b = np.unravel_index(int(np.argmax(average)), average.shape)
        if average[a, b] < threshold and alive.sum() <= MAX_SPEAKERS:
            break
        pair_sums[a, :] += pair_sums[b, :]
        pair_sums[:, a] += pair_sums[:, b]
        sizes[a] += sizes[b]
        members[a] += members[b]
        alive[b] = False
    clusters = [int(i) for i in np.flatnonzero(alive)]
    centroids = np.stack([prints[members[i]].sum(axis=0) for i in clusters])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    for position, index in enumerate(clusters):
        for member in members[index]:
            anchors[member].speaker = position
    anchored = {id(s) for s in anchors}
    for segment in segments:
        if segment.embedding is not None and id(segment) not in anchored:
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

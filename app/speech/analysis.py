"""The analytics that follow each final, in one place for live sessions and recorded files alike."""
from dataclasses import dataclass, field, fields

from client.events import FinalTranscript


@dataclass
class Utterance(FinalTranscript):
    """A final transcript with the samples under it: what the analytics stages read; never published."""

    audio: object = field(default=None, repr=False, compare=False)  # numpy float32, 16 kHz mono, [t_start, t_end]

    @classmethod
    def of(cls, final, audio):
        """`final` (a FinalTranscript) with its `audio`."""
        return cls(**{f.name: getattr(final, f.name) for f in fields(final)}, audio=audio)


class FinalAnalysis:
    """One session's or file's analytics: the events that follow each final, and the closing summary."""

    def __init__(self, models, context, summary_every_s=0.0):
        """`models` are app.analytics' (None where that extra is not installed: nothing follows a final);
        a running summary follows every `summary_every_s` seconds of audio (0: never)."""
        self._analytics = None
        if models is not None:
            from ..analytics import ConversationAnalytics
            self._analytics = ConversationAnalytics(context, models)
        self._summary_every_s = summary_every_s
        self._next_summary_s = summary_every_s

    def after(self, final, audio):
        """Emotion, cognitive, transition and moment events for `final`, then a running summary if one is due.

        They go out right behind their final, with nothing between (the catalog's order).
        """
        if self._analytics is None:
            return []
        events = list(self._analytics.on_final(Utterance.of(final, audio)))
        return events + self._running_summary(final.t_end)

    def closing(self):
        """The moments of a sentence the last final left unfinished, then the final summary, when analytics runs."""
        return [*self._analytics.finish(), self._analytics.summary(final=True)] if self._analytics is not None else []

    def _running_summary(self, audio_s):
        if not self._summary_every_s or audio_s < self._next_summary_s:
            return []
        while self._next_summary_s <= audio_s:
            self._next_summary_s += self._summary_every_s
        return [self._analytics.summary(final=False)]

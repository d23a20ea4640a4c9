"""What a speech worker needs of the server's settings, as one object that crosses the pipe.

Built from `app.config.Settings` alone, so every default is the one in app/config.py; the
worker gets it as the first frame on its stdin.
"""
from dataclasses import dataclass

from .endpointing import EndpointSettings


@dataclass(frozen=True)
class WorkerSettings:
    """A speech worker's settings: its models, speakers, analytics cadence and endpointing."""

    asr_model: str
    model_cache_dir: str
    asr_threads: int
    asr_compute_type: str
    speaker_similarity: float
    summary_every_s: float
    max_file_audio_s: float
    log_level: str
    catch_up_at: int
    endpointing: EndpointSettings

    @classmethod
    def from_settings(cls, settings):
        """The worker's part of `settings` (an app.config.Settings)."""
        return cls(asr_model=settings.asr_model, model_cache_dir=settings.model_cache_dir,
                   asr_threads=settings.asr_threads, asr_compute_type=settings.asr_compute_type,
                   speaker_similarity=settings.speaker_similarity,
                   summary_every_s=settings.summary_every_s, max_file_audio_s=settings.max_file_audio_s,
                   log_level=settings.log_level, catch_up_at=settings.asr_catch_up_at,
                   endpointing=endpoint_settings(settings))


def endpoint_settings(settings, **tuning):
    """The recognizer's EndpointSettings from `settings` (an app.config.Settings); `tuning` sets the
    fields that are no setting (pre-roll, commit rules), for tests and benches."""
    return EndpointSettings(
        vad_threshold=settings.vad_threshold, end_silence_s=settings.vad_end_silence_s,
        sentence_end_silence_s=settings.vad_sentence_end_silence_s,
        sentence_end_min_probability=settings.vad_sentence_end_min_probability,
        min_speech_s=settings.vad_min_speech_s,
        max_utterance_s=settings.max_utterance_s, partial_interval_s=settings.partial_interval_s,
        final_beam_size=settings.asr_final_beam_size, final_window_s=settings.asr_final_window_s,
        final_context_s=settings.asr_final_context_s, **tuning)

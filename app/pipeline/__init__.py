"""The analyser seam: how a live session hands decoded audio to analysis and gets events back."""
from .base import AnalysisSink, AnalysisStream, Pipeline, SessionContext
from .transport import TransportOnlyPipeline

__all__ = ["AnalysisSink", "AnalysisStream", "Pipeline", "SessionContext", "TransportOnlyPipeline",
           "create_pipeline"]


def create_pipeline(settings):
    """The pipeline named by HARKEN_PIPELINE: `speech` (the models) or `none` (transport only)."""
    if settings.pipeline == "none":
        return TransportOnlyPipeline()
    if settings.pipeline == "speech":
        from .speech import SpeechPipeline
        return SpeechPipeline(settings)
    raise ValueError(f"HARKEN_PIPELINE must be 'speech' or 'none', not {settings.pipeline!r}")

"""The pipeline for HARKEN_PIPELINE=none: audio is counted, nothing is recognised or invented."""
from .. import errors
from ..audio import TARGET_RATE_HZ


class TransportOnlyPipeline:
    """Accepts audio and reports it consumed; the API then emits `status` phases and `done` only."""

    name = "none"

    def start(self):
        pass

    def open(self, context, sink, resume=None):
        """Nothing here is ever checkpointed (no finals), so `resume` only says where the count starts."""
        return _CountingStream(sink, resume["samples"] if resume else 0)

    def analyze_file(self, context, path, sink):
        raise errors.PipelineUnavailable(
            "Whole-file analysis needs the speech models: this server runs with HARKEN_PIPELINE=none.")

    def health(self):
        return {"ready": True, "pipeline": self.name, "models": []}

    def stop(self):
        pass


class _CountingStream:
    def __init__(self, sink, resume_samples):
        self._sink = sink
        self.resume_samples = self._samples = resume_samples

    def feed(self, samples):
        self._samples += len(samples)
        self._sink.analysed(self._samples / TARGET_RATE_HZ)

    def finish(self):
        self._sink.completed()

    def cancel(self):
        pass

    def backlog_seconds(self):
        return 0.0

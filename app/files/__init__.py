"""Recorded files: `POST /analyze` and `POST /analyze/stream` run a whole file through the speech pipeline as one offline job."""
from .analysis import FileAnalyses

__all__ = ["FileAnalyses"]

"""Timestamps as the API writes them."""
from datetime import datetime, timezone


def iso_utc(epoch_s):
    """ISO-8601 UTC with milliseconds and a Z, e.g. 2025-11-08T18:12:04.991Z."""
    moment = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def mmss(seconds):
    """`mm:ss` for a time in seconds from the start of the audio."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
